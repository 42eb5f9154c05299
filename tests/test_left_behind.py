"""Nothing is left running by a process that ends (issue 9 item 11): `python wsgi.py` used to
build the app, start an embedded redis-server daemon for it and exit, leaving the server behind.
An embedded redis-server now always has an owner it dies with (app/redis_conn.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _redis_servers_in(folder: Path) -> list[int]:
    """redis-server processes (not zombies) whose command line names `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if "redis-server" in cmdline and str(folder) in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def instance(tmp_path):
    folder = tmp_path / "instance"
    yield folder
    for pid in _redis_servers_in(folder):  # whatever the code under test left behind
        os.kill(pid, signal.SIGKILL)


def _run(args: list[str], instance: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "APP_ENV")}
    env.update(APP_ENV="development", INSTANCE_PATH=str(instance),
               DATABASE_URL=f"sqlite:///{instance}/app.db")
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def _none_left(instance: Path) -> list[int]:
    deadline = time.monotonic() + 5  # an owner's SIGTERM takes a moment to be acted on
    while (left := _redis_servers_in(instance)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_python_wsgi_py_starts_nothing_and_leaves_no_redis_server_behind(instance):
    done = _run([sys.executable, "wsgi.py"], instance)
    assert done.returncode != 0
    assert "scripts/run" in done.stderr  # says how to run the service instead
    assert _none_left(instance) == []
    assert not (instance / "redis").exists()  # nothing was started, not even for a moment


def test_an_app_made_without_redis_url_takes_its_embedded_redis_with_it_when_it_exits(
        instance):
    script = ("from app import create_app; app = create_app(); "
              "print(app.extensions['redis'].ping())")
    done = _run([sys.executable, "-c", script], instance)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"  # it had a working embedded Redis
    assert _none_left(instance) == []


def test_an_embedded_redis_dies_with_its_owner_even_when_the_owner_is_killed(instance):
    script = ("import time; from app import create_app; app = create_app(); "
              "print('up', flush=True); time.sleep(60)")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "APP_ENV")}
    env.update(APP_ENV="development", INSTANCE_PATH=str(instance),
               DATABASE_URL=f"sqlite:///{instance}/app.db")
    owner = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "up"
        assert _redis_servers_in(instance), "no embedded redis-server was started"
        owner.send_signal(signal.SIGKILL)  # no atexit, no cleanup of its own
        owner.wait()
        assert _none_left(instance) == []
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()

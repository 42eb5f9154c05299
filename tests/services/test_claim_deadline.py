"""The deadline lives in the database: the sweeper and the per-claim job, run once or many times."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.claims.models import Claim
from app.extensions import db
from app.lifecycle import Transition
from app.notifications.models import InboxNotification, OutboxMessage
from tests.concurrency import run_together


@pytest.fixture
def claimed(client, actors):
    """Three active claims by three donors; returns their ids."""
    caseworker, moderator = actors.caseworker(), actors.moderator()
    ids = []
    for _ in range(3):
        wish = actors.open_wish(caseworker, moderator)
        res = client.post(f"/api/v1/wishes/{wish['id']}/claims",
                          headers={**actors.donor().headers, "Idempotency-Key": str(uuid.uuid4())})
        assert res.status_code == 201
        ids.append(res.get_json()["id"])
    return ids


def _later(days: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=days)


def _count(model, *where) -> int:
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_sweeper_expires_only_due_claims_and_reopens_their_wishes(app, claimed):
    from app.claims.service import sweep_due_claims

    with app.app_context():
        assert sweep_due_claims(now=_later(1)) == 0  # 48 h promise: not due after one day
        assert sweep_due_claims(now=_later(3)) == 3
        for claim in db.session.execute(select(Claim)).scalars():
            assert claim.status == "expired" and claim.ended_at is not None
            assert claim.wish.status == "open" and claim.wish.due_at is None
        assert _count(OutboxMessage, OutboxMessage.topic == "claim_expired") == 3
        assert _count(InboxNotification, InboxNotification.topic == "claim_expired") == 3


def test_expiring_twice_changes_nothing_the_second_time(app, claimed):
    from app.claims.service import expire_claim, sweep_due_claims

    with app.app_context():
        assert expire_claim(claimed[0], now=_later(3)) is True
        assert expire_claim(claimed[0], now=_later(3)) is False
        assert sweep_due_claims(now=_later(3)) == 2
        assert sweep_due_claims(now=_later(3)) == 0
        assert _count(Transition, Transition.entity_type == "claim",
                      Transition.action == "expire") == 3
        assert _count(OutboxMessage, OutboxMessage.topic == "claim_expired") == 3


def test_expire_job_before_the_deadline_does_nothing(app, claimed):
    from app.claims.service import expire_claim

    with app.app_context():
        assert expire_claim(claimed[0]) is False
        assert db.session.get(Claim, claimed[0]).status == "active"


def test_two_sweepers_at_once_expire_each_claim_once(app, claimed, needs_postgres):
    from app.claims.service import sweep_due_claims

    def run():
        with app.app_context():
            try:
                return sweep_due_claims(now=_later(3), batch_size=1)
            finally:
                db.session.remove()

    assert sum(run_together([run, run])) == 3
    with app.app_context():
        assert _count(Transition, Transition.entity_type == "claim",
                      Transition.action == "expire") == 3
        assert _count(OutboxMessage, OutboxMessage.topic == "claim_expired") == 3


def test_each_reminder_is_queued_once_at_its_offset(app, claimed):
    from app.claims.service import send_due_reminders

    with app.app_context():
        claim = db.session.get(Claim, claimed[0])
        due = claim.due_at
        assert send_due_reminders(now=due - timedelta(hours=25)) == 0
        at_24h = due - timedelta(hours=24) + timedelta(seconds=5)
        assert send_due_reminders(now=at_24h) == 3
        send_due_reminders(now=at_24h + timedelta(minutes=1))  # a rerun adds nothing
        assert _count(OutboxMessage, OutboxMessage.topic == "claim_reminder") == 3
        send_due_reminders(now=due - timedelta(hours=1))
        assert _count(OutboxMessage, OutboxMessage.topic == "claim_reminder") == 6
        offsets = sorted(m.payload["seconds_left"] for m in db.session.execute(
            select(OutboxMessage).where(OutboxMessage.topic == "claim_reminder")).scalars())
        assert offsets == [7200] * 3 + [86400] * 3


def test_two_reminder_runs_at_once_queue_each_reminder_once(app, claimed, needs_postgres):
    from app.claims.service import send_due_reminders

    with app.app_context():
        due = db.session.get(Claim, claimed[0]).due_at
    moment = due - timedelta(hours=1)

    def run():
        with app.app_context():
            try:
                return send_due_reminders(now=moment)
            finally:
                db.session.remove()

    run_together([run, run])
    with app.app_context():
        assert _count(OutboxMessage, OutboxMessage.topic == "claim_reminder") == 3


def test_a_sweep_rings_the_outbox_relay_once_not_once_per_message(app, claimed):
    from app.claims.service import sweep_due_claims
    from app.queue import get_queue

    with app.app_context():
        queue = get_queue("notifications")
        assert sweep_due_claims(now=_later(3)) == 3
        assert _count(OutboxMessage, OutboxMessage.topic == "claim_expired") == 3
        # One relay job waiting, whatever rang it (the claims' own messages did too).
        assert [job.func_name for job in queue.jobs] == ["workers.jobs.relay_outbox"]

"""Reconciliation against the fake WeChat Pay: lost notices settled, unpaid orders closed."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from app.fund.models import BookTransaction, Donation
from app.fund.reconcile import reconcile_pending
from app.ledger.models import LedgerEntry
from app.notifications.models import OutboxMessage
from app.types import utcnow
from tests.fund.conftest import NOTIFY, count, donate

SOON = timedelta(minutes=10)      # past DONATION_RECONCILE_AFTER_SECONDS, before time_expire
LATER = timedelta(hours=3)        # past time_expire (2 h)


def _run(app, after: timedelta) -> dict:
    with app.app_context():
        return reconcile_pending(now=utcnow() + after)


def _status(app, donation_id: str) -> str:
    from app.extensions import db

    with app.app_context():
        return db.session.get(Donation, donation_id).status


def test_a_payment_whose_notice_was_lost_is_settled_once(app, client, actors, fake_wechatpay):
    donation = donate(client, actors.donor(), 700).get_json()
    fake_wechatpay.mark(donation["id"], "SUCCESS")  # paid, but the notice never arrives

    assert _run(app, timedelta(0)) == {}  # too young to ask about yet
    assert _run(app, SOON) == {"paid": 1}
    assert _run(app, SOON) == {}  # nothing pending any more
    assert _status(app, donation["id"]) == "paid"
    # the late notice changes nothing
    notice = fake_wechatpay.notification(fake_wechatpay.transaction(donation["id"]))
    assert client.post(NOTIFY, data=notice[1], headers=notice[0]).status_code == 200
    assert count(app, BookTransaction) == 1 and count(app, LedgerEntry) == 1
    assert count(app, OutboxMessage, OutboxMessage.topic == "donation_thanks") == 1


@pytest.mark.parametrize("state", ["CLOSED", "REVOKED", "PAYERROR"])
def test_a_failed_or_closed_order_is_closed(app, client, actors, fake_wechatpay, state):
    donation = donate(client, actors.donor(), 700).get_json()
    fake_wechatpay.mark(donation["id"], state)
    assert _run(app, SOON) == {"closed": 1}
    assert _status(app, donation["id"]) == "closed"
    assert count(app, BookTransaction) == 0


def test_an_unpaid_order_waits_until_it_expires_then_closes(app, client, actors, fake_wechatpay):
    donor = actors.donor()
    donation = donate(client, donor, 700).get_json()
    assert _run(app, SOON) == {"pending": 1}
    assert _status(app, donation["id"]) == "pending_payment"
    assert _run(app, LATER) == {"closed": 1}
    seen = client.get(f"/api/v1/donations/{donation['id']}", headers=donor.headers).get_json()
    assert seen["status"] == "closed" and seen["closed_at"]


def test_an_order_never_placed_closes_after_expiry(app, client, actors, fake_wechatpay):
    fake_wechatpay.fail_next(500)
    assert donate(client, actors.donor(), 700).status_code == 503
    assert _run(app, SOON) == {"pending": 1}  # ORDER_NOT_EXIST: a retry may still place it
    assert _run(app, LATER) == {"closed": 1}
    assert count(app, Donation, Donation.status == "closed") == 1


def test_a_closed_donation_that_turns_out_paid_is_settled(app, client, actors, fake_wechatpay):
    donation = donate(client, actors.donor(), 700).get_json()
    assert _run(app, LATER) == {"closed": 1}
    headers, body = fake_wechatpay.pay(donation["id"])
    assert client.post(NOTIFY, data=body, headers=headers).status_code == 200
    assert _status(app, donation["id"]) == "paid"


def test_wechatpay_unavailable_stops_the_run_and_changes_nothing(app, client, actors,
                                                                 fake_wechatpay, caplog):
    donor = actors.donor()
    ids = [donate(client, donor, 100 + i).get_json()["id"] for i in range(3)]
    fake_wechatpay.fail_next(503)
    assert _run(app, LATER) == {"unavailable": 1}
    assert {_status(app, i) for i in ids} == {"pending_payment"}
    with caplog.at_level(logging.INFO, logger="app.fund.reconcile"):
        assert _run(app, LATER) == {"closed": 3}
    assert "3 pending donations checked" in caplog.text


def test_batches_cover_every_pending_donation(app, client, actors, fake_wechatpay):
    donor = actors.donor()
    ids = [donate(client, donor, 100 + i).get_json()["id"] for i in range(5)]
    for i in ids[:2]:
        fake_wechatpay.mark(i, "SUCCESS")
    with app.app_context():
        counts = reconcile_pending(now=utcnow() + LATER, batch_size=2)
    assert counts == {"paid": 2, "closed": 3}


def test_the_periodic_job_is_declared_on_the_maintenance_queue():
    from workers import PERIODIC

    job = next(p for p in PERIODIC if p.func_path == "workers.jobs.reconcile_donations")
    assert job.queue == "maintenance" and job.every == "FUND_RECONCILE_SECONDS"

"""POST /payments/wechatpay/notify: verified, matched against the order, settled exactly once."""
from __future__ import annotations

import json

import pytest

from app.fund.models import BookTransaction, Donation
from app.ledger.models import LedgerEntry
from app.lifecycle import Transition
from app.notifications.models import OutboxMessage
from tests.concurrency import run_together
from tests.fakes.wechatpay import new_rsa_key
from tests.fund.conftest import NOTIFY, balances, count, donate


def _effects(app, donation_id: str) -> dict:
    return {
        "paid": count(app, Donation, Donation.id == donation_id, Donation.status == "paid"),
        "books": count(app, BookTransaction, BookTransaction.source_id == donation_id),
        "ledger": count(app, LedgerEntry, LedgerEntry.source_id == donation_id),
        "thanks": count(app, OutboxMessage, OutboxMessage.topic == "donation_thanks"),
        "audit": count(app, Transition, Transition.entity_type == "donation",
                       Transition.entity_id == donation_id, Transition.action == "pay"),
    }


NOTHING = {"paid": 0, "books": 0, "ledger": 0, "thanks": 0, "audit": 0}
ONCE = {"paid": 1, "books": 1, "ledger": 1, "thanks": 1, "audit": 1}


def _ledger_entry(app, donation_id: str) -> dict:
    from app.extensions import db

    with app.app_context():
        row = db.session.execute(db.select(LedgerEntry).where(
            LedgerEntry.source_id == donation_id)).scalar_one()
        return json.loads(bytes(row.leaf))


def test_a_paid_notice_settles_the_donation_books_ledger_and_thanks(app, client, actors,
                                                                     fake_wechatpay):
    cw, mod = actors.caseworker(), actors.moderator()
    wish = actors.open_wish(cw, mod)
    donor = actors.donor("林晓")
    donation = donate(client, donor, 6600, wish_id=wish["id"]).get_json()
    headers, body = fake_wechatpay.pay(donation["id"])

    res = client.post(NOTIFY, data=body, headers=headers)

    assert res.status_code == 200 and res.get_json() == {"code": "SUCCESS", "message": "成功"}
    assert _effects(app, donation["id"]) == ONCE
    assert balances(app)["fund_cash"] == 6600
    seen = client.get(f"/api/v1/donations/{donation['id']}", headers=donor.headers).get_json()
    assert seen["status"] == "paid" and seen["paid_at"] and seen["transaction_id"].startswith("42")
    entry = _ledger_entry(app, donation["id"])
    assert entry["kind"] == "money_donation" and entry["value_fen"] == 6600
    assert entry["donor"] == "爱心人士" and entry["wish_id"] == wish["id"]
    assert "alias" not in entry and entry["town"] == wish["region_code"][:9]
    assert seen["ledger_index"] is not None
    public = client.get(f"/api/v1/ledger/entries/{seen['ledger_index']}").get_json()
    assert public["entry"] == entry


def test_a_named_donor_is_shown_masked_in_the_ledger(app, client, actors, fake_wechatpay):
    donation = donate(client, actors.donor("陈大文"), 100, anonymous=False).get_json()
    client.post(NOTIFY, data=(n := fake_wechatpay.pay(donation["id"]))[1], headers=n[0])
    assert _ledger_entry(app, donation["id"])["donor"] == "陈*"
    assert _ledger_entry(app, donation["id"])["item"] == "505公益基金"


def test_the_same_notice_five_times_two_at_once_settles_once(app, client, actors,
                                                             fake_wechatpay, needs_postgres):
    donation = donate(client, actors.donor(), 1234).get_json()
    headers, body = fake_wechatpay.pay(donation["id"])

    def deliver():
        return app.test_client().post(NOTIFY, data=body, headers=headers).status_code

    statuses = [deliver(), *run_together([deliver, deliver]), deliver(), deliver()]

    assert statuses == [200] * 5
    assert _effects(app, donation["id"]) == ONCE
    assert balances(app)["fund_cash"] == 1234


def test_repeated_notices_in_a_row_change_nothing(app, client, actors, fake_wechatpay):
    donation = donate(client, actors.donor(), 500).get_json()
    headers, body = fake_wechatpay.pay(donation["id"])
    for _ in range(5):
        assert client.post(NOTIFY, data=body, headers=headers).status_code == 200
    # a fresh notice of the same payment (WeChat Pay's own retry, new nonce and signature)
    again = fake_wechatpay.notification(fake_wechatpay.transaction(donation["id"]))
    assert client.post(NOTIFY, data=again[1], headers=again[0]).status_code == 200
    assert _effects(app, donation["id"]) == ONCE


def test_a_bad_signature_is_401_and_nothing_is_written(app, client, actors, fake_wechatpay):
    donation = donate(client, actors.donor(), 500).get_json()
    fake_wechatpay.mark(donation["id"], "SUCCESS")
    headers, body = fake_wechatpay.notification(fake_wechatpay.transaction(donation["id"]),
                                                sign_with=new_rsa_key())
    res = client.post(NOTIFY, data=body, headers=headers)

    assert res.status_code == 401 and res.get_json()["code"] == "payment_notification_invalid"
    assert res.mimetype == "application/problem+json"
    assert _effects(app, donation["id"]) == NOTHING


def test_a_wrong_amount_is_400_and_nothing_is_written(app, client, actors, fake_wechatpay):
    donation = donate(client, actors.donor(), 500).get_json()
    headers, body = fake_wechatpay.pay(donation["id"], amount_fen=1)
    res = client.post(NOTIFY, data=body, headers=headers)

    assert res.status_code == 400 and res.get_json()["code"] == "payment_mismatch"
    assert res.get_json()["problems"] == ["amount"]
    assert _effects(app, donation["id"]) == NOTHING
    assert count(app, Donation, Donation.status == "pending_payment") == 1


@pytest.mark.parametrize("change", [
    {"mchid": "1900000000"}, {"appid": "wx-other-app"}, {"trade_state": "NOTPAY"},
    {"out_trade_no": "don_nosuchorder"}, {"amount": {"total": 500, "currency": "USD"}},
])
def test_a_notice_that_does_not_match_its_order_is_refused(app, client, actors, fake_wechatpay,
                                                           change):
    donation = donate(client, actors.donor(), 500).get_json()
    fake_wechatpay.mark(donation["id"], "SUCCESS")
    tx = {**fake_wechatpay.transaction(donation["id"]), **change}
    headers, body = fake_wechatpay.notification(tx)
    res = client.post(NOTIFY, data=body, headers=headers)

    assert res.status_code == 400, res.get_json()
    assert res.get_json()["code"] in ("payment_mismatch", "payment_notification_malformed")
    assert _effects(app, donation["id"]) == NOTHING


def test_a_replayed_notice_with_changes_is_rejected(app, client, actors, fake_wechatpay):
    donation = donate(client, actors.donor(), 500).get_json()
    headers, body = fake_wechatpay.pay(donation["id"])
    assert client.post(NOTIFY, data=body, headers=headers).status_code == 200

    # The captured notice, edited: the signature no longer covers the body.
    forged = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESS ")
    assert client.post(NOTIFY, data=forged, headers=headers).status_code == 401
    # A correctly signed notice claiming another transaction for the paid order.
    tx = {**fake_wechatpay.transaction(donation["id"]), "transaction_id": "4200000000000000001"}
    other = fake_wechatpay.notification(tx)
    res = client.post(NOTIFY, data=other[1], headers=other[0])
    assert res.status_code == 400 and res.get_json()["code"] == "payment_mismatch"
    # Replayed from an hour ago.
    old = fake_wechatpay.notification(fake_wechatpay.transaction(donation["id"]),
                                      timestamp=int(__import__("time").time()) - 3600)
    assert client.post(NOTIFY, data=old[1], headers=old[0]).status_code == 401
    assert _effects(app, donation["id"]) == ONCE


def test_stats_count_paid_money_only(app, client, actors, fake_wechatpay, monkeypatch):
    monkeypatch.setitem(app.config, "STATS_CACHE_SECONDS", 0)
    donor = actors.donor()
    donate(client, donor, 999)  # never paid
    paid = donate(client, donor, 2500).get_json()
    client.post(NOTIFY, data=(n := fake_wechatpay.pay(paid["id"]))[1], headers=n[0])
    stats = client.get("/api/v1/stats").get_json()
    assert stats["money_donated_fen"] == 2500 and stats["money_disbursed_fen"] == 0

"""POST /ledger/reversals: a new entry names what it reverses; money moves back; once only."""
from __future__ import annotations

import json

from app.fund.models import BookTransaction
from app.ledger.models import LedgerEntry
from tests.fund.conftest import balances, count, paid_donation


def _reverse(client, mod, index: int, reason: str = "录入有误"):
    return client.post("/api/v1/ledger/reversals", headers=mod.headers,
                       json={"index": index, "reason": reason})


def _donation_index(client, donor, donation_id) -> int:
    return client.get(f"/api/v1/donations/{donation_id}",
                      headers=donor.headers).get_json()["ledger_index"]


def test_reversing_a_donation_is_a_refund_and_the_original_stays(app, client, actors,
                                                                 fake_wechatpay, monkeypatch):
    monkeypatch.setitem(app.config, "STATS_CACHE_SECONDS", 0)
    donor, mod = actors.donor(), actors.moderator()
    donation = paid_donation(client, fake_wechatpay, donor, 3000)
    index = _donation_index(client, donor, donation["id"])
    before = client.get(f"/api/v1/ledger/entries/{index}").get_json()

    res = _reverse(client, mod, index)

    assert res.status_code == 201, res.get_json()
    body = res.get_json()
    assert body["ledger_index"] == index and body["value_fen"] == 3000
    new = client.get(f"/api/v1/ledger/entries/{body['reversal_index']}").get_json()["entry"]
    with app.app_context():
        from app.extensions import db
        leaf_hash = bytes(db.session.get(LedgerEntry, index).leaf_hash).hex()
    assert new["kind"] == "reversal" and new["reverses_index"] == index
    assert new["reverses_leaf_hash"] == leaf_hash and new["value_fen"] == 3000
    assert "录入有误" not in json.dumps(new, ensure_ascii=False)  # the reason stays inside
    assert client.get(f"/api/v1/ledger/entries/{index}").get_json() == before
    assert balances(app) == {"fund_cash": 0, "donations_received": 0, "disbursements_paid": 0}
    stats = client.get("/api/v1/stats").get_json()
    assert stats["money_donated_fen"] == 0


def test_reversing_twice_or_reversing_a_reversal_is_409(client, actors, fake_wechatpay):
    donor, mod = actors.donor(), actors.moderator()
    donation = paid_donation(client, fake_wechatpay, donor, 3000)
    index = _donation_index(client, donor, donation["id"])
    reversal = _reverse(client, mod, index).get_json()

    twice = _reverse(client, mod, index)
    assert twice.status_code == 409 and twice.get_json()["code"] == "already_reversed"
    of_reversal = _reverse(client, mod, reversal["reversal_index"])
    assert of_reversal.status_code == 409
    assert of_reversal.get_json()["code"] == "cannot_reverse_reversal"
    missing = _reverse(client, mod, 999)
    assert missing.status_code == 404


def test_a_refund_the_fund_cannot_cover_is_409_and_writes_nothing(app, client, actors,
                                                                  fake_wechatpay):
    donor, a, b = actors.donor(), actors.moderator(), actors.moderator()
    donation = paid_donation(client, fake_wechatpay, donor, 3000)
    item = client.post("/api/v1/disbursements", headers=a.headers,
                       json={"amount_fen": 2500, "purpose": "购买冬衣"}).get_json()
    client.post(f"/api/v1/disbursements/{item['id']}/approve", headers=b.headers)
    entries_before = count(app, LedgerEntry)

    res = _reverse(client, a, _donation_index(client, donor, donation["id"]))

    assert res.status_code == 409 and res.get_json()["code"] == "insufficient_funds"
    assert count(app, LedgerEntry) == entries_before
    assert balances(app)["fund_cash"] == 500


def test_reversing_a_disbursement_puts_the_money_back(app, client, actors, fake_wechatpay):
    a, b = actors.moderator(), actors.moderator()
    paid_donation(client, fake_wechatpay, actors.donor(), 1000)
    item = client.post("/api/v1/disbursements", headers=a.headers,
                       json={"amount_fen": 400, "purpose": "购买书包"}).get_json()
    approved = client.post(f"/api/v1/disbursements/{item['id']}/approve",
                           headers=b.headers).get_json()

    res = _reverse(client, a, approved["ledger_index"])

    assert res.status_code == 201 and res.get_json()["value_fen"] == 400
    assert balances(app) == {"fund_cash": 1000, "donations_received": -1000,
                             "disbursements_paid": 0}


def test_reversing_an_in_kind_entry_moves_no_money(app, client, actors):
    cw, mod, donor = actors.caseworker(), actors.moderator(), actors.donor()
    wish = actors.open_wish(cw, mod)
    actors.fulfil(donor, cw, wish["id"])
    res = _reverse(client, mod, 0)
    assert res.status_code == 201 and res.get_json()["value_fen"] == 0
    assert count(app, BookTransaction) == 0

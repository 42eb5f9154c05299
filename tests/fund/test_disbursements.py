"""Disbursements: requested by one moderator, approved by another, never beyond the balance."""
from __future__ import annotations

import json

from app.fund.models import BookTransaction, Disbursement
from app.lifecycle import Transition
from app.ledger.models import LedgerEntry
from tests.concurrency import run_together
from tests.fund.conftest import balances, count, paid_donation

PURPOSE = "购买轮椅一台"  # never the alias: the ledger keeps a purpose for ever


def _request(client, mod, amount_fen: int, **fields):
    return client.post("/api/v1/disbursements", headers=mod.headers,
                       json={"amount_fen": amount_fen, "purpose": PURPOSE, **fields})


def _approve(client, mod, disbursement_id: str):
    return client.post(f"/api/v1/disbursements/{disbursement_id}/approve", headers=mod.headers)


def test_a_second_moderator_approves_and_the_money_moves_with_a_ledger_entry(
        app, client, actors, fake_wechatpay):
    cw, first, second = actors.caseworker(), actors.moderator(), actors.moderator()
    wish = actors.open_wish(cw, first)
    paid_donation(client, fake_wechatpay, actors.donor(), 100000)

    res = _request(client, first, 60000, wish_id=wish["id"], payee="泉港康复器材店")
    assert res.status_code == 201, res.get_json()
    item = res.get_json()
    assert item["status"] == "pending_approval" and item["payee"] == "泉港康复器材店"
    assert balances(app)["fund_cash"] == 100000  # nothing moves on request

    mine = _approve(client, first, item["id"])
    assert mine.status_code == 403 and mine.get_json()["code"] == "second_approver_required"

    approved = _approve(client, second, item["id"])
    assert approved.status_code == 200, approved.get_json()
    body = approved.get_json()
    assert body["status"] == "approved" and body["approved_by"] == second.id
    assert balances(app) == {"fund_cash": 40000, "donations_received": -100000,
                             "disbursements_paid": 60000}
    entry = client.get(f"/api/v1/ledger/entries/{body['ledger_index']}").get_json()["entry"]
    assert entry["kind"] == "disbursement" and entry["value_fen"] == 60000
    assert entry["item"] == PURPOSE and entry["wish_id"] == wish["id"]
    assert "泉港康复器材店" not in json.dumps(entry, ensure_ascii=False)  # the payee stays inside
    assert count(app, Transition, Transition.entity_type == "disbursement",
                 Transition.entity_id == item["id"]) == 2

    again = _approve(client, second, item["id"])
    assert again.status_code == 409 and again.get_json()["code"] == "invalid_transition"
    assert count(app, BookTransaction, BookTransaction.source_type == "disbursement") == 1


def test_a_request_above_the_balance_is_409(client, actors, fake_wechatpay):
    mod = actors.moderator()
    assert _request(client, mod, 1).get_json()["code"] == "insufficient_funds"
    paid_donation(client, fake_wechatpay, actors.donor(), 500)
    res = _request(client, mod, 501)
    assert res.status_code == 409 and res.get_json()["balance_fen"] == 500
    assert _request(client, mod, 500).status_code == 201


def test_an_approval_above_the_balance_at_that_moment_is_409_and_writes_nothing(
        app, client, actors, fake_wechatpay):
    a, b = actors.moderator(), actors.moderator()
    paid_donation(client, fake_wechatpay, actors.donor(), 1000)
    one = _request(client, a, 800).get_json()
    two = _request(client, a, 800).get_json()  # each fits alone; not both
    assert _approve(client, b, one["id"]).status_code == 200

    res = _approve(client, b, two["id"])
    assert res.status_code == 409 and res.get_json()["code"] == "insufficient_funds"
    assert client.get(f"/api/v1/disbursements/{two['id']}",
                      headers=a.headers).get_json()["status"] == "pending_approval"
    assert count(app, LedgerEntry, LedgerEntry.kind == "disbursement") == 1
    assert balances(app)["fund_cash"] == 200


def test_two_approvals_racing_for_one_balance_pay_at_most_what_the_fund_holds(
        app, client, actors, fake_wechatpay, needs_postgres):
    a, b, c = actors.moderator(), actors.moderator(), actors.moderator()
    for _ in range(5):
        paid_donation(client, fake_wechatpay, actors.donor(), 1000)
        items = [_request(client, a, 1000).get_json()["id"] for _ in range(2)]
        calls = [lambda i=i, m=m: app.test_client().post(
                     f"/api/v1/disbursements/{i}/approve", headers=m.headers).status_code
                 for i, m in zip(items, (b, c))]
        assert sorted(run_together(calls)) == [200, 409]
        assert balances(app)["fund_cash"] == 0
    assert count(app, Disbursement, Disbursement.status == "approved") == 5


def test_reject_and_list(client, actors, fake_wechatpay):
    a, b = actors.moderator(), actors.moderator()
    paid_donation(client, fake_wechatpay, actors.donor(), 1000)
    kept = _request(client, a, 100).get_json()
    dropped = _request(client, a, 200).get_json()

    res = client.post(f"/api/v1/disbursements/{dropped['id']}/reject", headers=a.headers,
                      json={"reason": "重复申请"})
    assert res.status_code == 200 and res.get_json()["status"] == "rejected"
    assert _approve(client, b, dropped["id"]).get_json()["code"] == "invalid_transition"

    everything = client.get("/api/v1/disbursements", headers=b.headers).get_json()
    assert [d["id"] for d in everything["items"]] == [dropped["id"], kept["id"]]
    pending = client.get("/api/v1/disbursements?status=pending_approval",
                         headers=b.headers).get_json()
    assert [d["id"] for d in pending["items"]] == [kept["id"]]
    assert client.get("/api/v1/disbursements/dsb_nothing", headers=b.headers).status_code == 404


def test_a_purpose_with_personal_data_is_refused(client, actors, fake_wechatpay):
    paid_donation(client, fake_wechatpay, actors.donor(), 1000)
    res = _request(client, actors.moderator(), 100, purpose="转账给13805951234的林阿婆")
    assert res.status_code == 422 and res.get_json()["code"] == "pii_in_text"

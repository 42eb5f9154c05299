"""POST /donations, GET /donations/{id}, GET /me/donations: a pending order placed at WeChat Pay."""
from __future__ import annotations

from datetime import datetime, timedelta

from app.fund.models import Donation
from tests.fund.conftest import count, donate


def test_donation_places_a_jsapi_order_and_returns_payment_parameters(app, client, actors,
                                                                       fake_wechatpay):
    donor = actors.donor("陈小明")
    res = donate(client, donor, 8800, anonymous=False, receipt_requested=True)

    assert res.status_code == 201, res.get_json()
    body = res.get_json()
    assert body["status"] == "pending_payment" and body["amount_fen"] == 8800
    assert body["anonymous"] is False and body["receipt_requested"] is True
    assert body["donor_display"] == "陈*"
    assert set(body["pay"]) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    order = fake_wechatpay.orders[body["id"]]
    assert body["pay"]["package"] == f"prepay_id={order['prepay_id']}"
    assert order["amount"] == {"total": 8800, "currency": "CNY"}
    assert order["appid"] == fake_wechatpay.app_id and order["mchid"] == fake_wechatpay.mch_id
    assert order["notify_url"].endswith("/payments/wechatpay/notify")
    # time_expire is two hours out by default, in China time as WeChat Pay wants
    expire = datetime.fromisoformat(order["time_expire"])
    created = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert order["time_expire"].endswith("+08:00")
    assert abs((expire - created).total_seconds() - 7200) < 2
    assert 6 <= len(body["id"]) <= 32


def test_orders_and_queries_of_a_donation_carry_the_public_key_id_so_its_answer_verifies(
        app, client, actors, fake_wechatpay):
    """Without Wechatpay-Serial, WeChat Pay signs with the merchant's platform certificate while it
    migrates, and the order came back `unknown_serial`: 503, the donation left pending."""
    from app.fund.reconcile import reconcile_pending
    from app.types import utcnow

    res = donate(client, actors.donor(), 300)
    assert res.status_code == 201, res.get_json()
    with app.app_context():
        assert reconcile_pending(now=utcnow() + timedelta(minutes=10)) == {"pending": 1}

    calls = fake_wechatpay.requests
    assert [c["method"] for c in calls] == ["POST", "GET"]
    assert all(c["headers"].get("Wechatpay-Serial") == fake_wechatpay.platform_key_id
               for c in calls)


def test_the_same_idempotency_key_replays_and_places_one_order(client, actors, fake_wechatpay):
    donor = actors.donor()
    first = donate(client, donor, 100, key="k-1")
    again = donate(client, donor, 100, key="k-1")

    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert len(fake_wechatpay.calls("/v3/pay/transactions/jsapi")) == 1
    assert donate(client, donor, 200, key="k-1").get_json()["code"] == "idempotency_key_reused"
    res = client.post("/api/v1/donations", json={"amount_fen": 100, "anonymous": True,
                                                 "receipt_requested": False},
                      headers=donor.headers)
    assert res.status_code == 400 and res.get_json()["code"] == "idempotency_key_required"


def test_wechatpay_down_keeps_the_donation_pending_and_a_retry_places_the_order(
        app, client, actors, fake_wechatpay):
    donor = actors.donor()
    fake_wechatpay.fail_next(500)
    res = donate(client, donor, 500, key="retry-me")

    assert res.status_code == 503 and res.get_json()["code"] == "wechatpay_unavailable"
    assert count(app, Donation, Donation.status == "pending_payment") == 1

    retry = donate(client, donor, 500, key="retry-me")
    assert retry.status_code == 201, retry.get_json()
    assert count(app, Donation) == 1  # the same donation, now with its order
    assert retry.get_json()["pay"]["package"].startswith("prepay_id=")
    assert list(fake_wechatpay.orders) == [retry.get_json()["id"]]


def test_amount_limits_and_shape_are_checked(app, client, actors, monkeypatch):
    donor = actors.donor()
    monkeypatch.setitem(app.config, "DONATION_MAX_FEN", 1000)
    assert donate(client, donor, 1001).get_json()["errors"].keys() == {"amount_fen"}
    for bad in (0, -5, 1.5, "100"):
        res = donate(client, donor, bad)
        assert res.status_code == 422 and "amount_fen" in res.get_json()["errors"], bad
    res = donate(client, donor, 100, status="paid")
    assert res.status_code == 422 and "status" in res.get_json()["errors"]
    assert count(app, Donation) == 0


def test_a_donation_may_name_an_open_wish_only(client, actors):
    cw, mod, donor = actors.caseworker(), actors.moderator(), actors.donor()
    wish = actors.open_wish(cw, mod)
    assert donate(client, donor, 100, wish_id=wish["id"]).status_code == 201
    draft = actors.draft_wish(cw)
    res = donate(client, donor, 100, wish_id=draft["id"])
    assert res.status_code == 422 and res.get_json()["errors"] == {"wish_id": ["未找到该心愿"]}
    actors.claim(donor, wish["id"])
    res = donate(client, donor, 100, wish_id=wish["id"])
    assert res.status_code == 409 and res.get_json()["code"] == "wish_not_open"


def test_a_donation_is_seen_by_its_donor_and_moderators_only(client, actors):
    donor, other, mod = actors.donor(), actors.donor(), actors.moderator()
    donation = donate(client, donor, 300, receipt_requested=True).get_json()
    url = f"/api/v1/donations/{donation['id']}"

    mine = client.get(url, headers=donor.headers).get_json()
    assert mine["receipt_requested"] is True and mine["anonymous"] is True
    assert mine["donor_display"] == "爱心人士" and "pay" not in mine
    assert client.get(url, headers=mod.headers).status_code == 200
    assert client.get(url, headers=other.headers).status_code == 404
    assert client.get(url + "x", headers=donor.headers).status_code == 404


def test_my_donations_are_paginated_newest_first(client, actors):
    donor, other = actors.donor(), actors.donor()
    ids = [donate(client, donor, 100 + i).get_json()["id"] for i in range(5)]
    donate(client, other, 999)

    page = client.get("/api/v1/me/donations?limit=3", headers=donor.headers).get_json()
    rest = client.get(f"/api/v1/me/donations?limit=3&cursor={page['next_cursor']}",
                      headers=donor.headers).get_json()
    assert [d["id"] for d in page["items"] + rest["items"]] == ids[::-1]
    assert rest["next_cursor"] is None


def test_the_document_states_the_configured_maximum(app_config):
    """Schema-valid means accepted (Schemathesis checks it): the OpenAPI document's maximum is
    the configured DONATION_MAX_FEN, not a number of its own."""
    from app import create_app

    other = create_app({**app_config, "DONATION_MAX_FEN": 1234})
    doc = other.test_client().get("/api/v1/openapi.json").get_json()
    amount = doc["components"]["schemas"]["DonationIn"]["properties"]["amount_fen"]
    assert (amount["minimum"], amount["maximum"]) == (1, 1234)

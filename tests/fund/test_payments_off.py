"""Money donations without WeChat Pay: not configured (development without merchant settings) or
switched off (PAYMENTS_ENABLED=false). POST /donations is 503 `payments_not_configured`, without
Retry-After (waiting does not help) and without writing anything; the notify endpoint and the
reconciliation job neither crash nor act, and say why in the log."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from app.fund.models import Donation
from app.fund.reconcile import reconcile_pending
from app.idempotency import IdempotencyRecord
from app.types import utcnow
from tests.fund.conftest import NOTIFY, count, donate

MERCHANT_SETTINGS = ("WECHATPAY_MCH_ID", "WECHATPAY_MCH_CERT_SERIAL",
                     "WECHATPAY_MCH_PRIVATE_KEY_FILE", "WECHATPAY_API_V3_KEY",
                     "WECHATPAY_PLATFORM_PUBLIC_KEY_ID", "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE",
                     "WECHATPAY_NOTIFY_URL")
WAYS = ["unconfigured", "disabled"]


def _switch_off(app, monkeypatch, way: str) -> None:
    if way == "unconfigured":  # development: no merchant settings at all
        for name in MERCHANT_SETTINGS:
            monkeypatch.setitem(app.config, name, None)
    else:  # every setting there, the fund switched off
        monkeypatch.setitem(app.config, "PAYMENTS_ENABLED", False)


def _assert_not_configured(res) -> None:
    assert res.status_code == 503, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"
    body = res.get_json()
    assert body["code"] == "payments_not_configured"
    assert body["title"] == "在线捐款暂未开通"
    assert "Retry-After" not in res.headers


@pytest.mark.parametrize("way", WAYS)
def test_a_donation_without_wechat_pay_is_503_payments_not_configured_and_writes_nothing(
        app, client, actors, fake_wechatpay, monkeypatch, way):
    donor = actors.donor()
    _switch_off(app, monkeypatch, way)

    for _ in range(3):  # a retry neither succeeds nor leaves a row per attempt
        _assert_not_configured(donate(client, donor, 500, key="k-off"))

    assert count(app, Donation) == 0
    assert count(app, IdempotencyRecord) == 0
    assert fake_wechatpay.requests == []


@pytest.mark.parametrize("way", WAYS)
def test_once_payments_are_on_the_same_idempotency_key_donates_for_real(
        app, client, actors, monkeypatch, way):
    donor = actors.donor()
    with monkeypatch.context() as off:
        _switch_off(app, off, way)
        _assert_not_configured(donate(client, donor, 500, key="k-later"))

    res = donate(client, donor, 500, key="k-later")

    assert res.status_code == 201, res.get_json()
    assert "Idempotent-Replayed" not in res.headers
    assert count(app, Donation) == 1


@pytest.mark.parametrize("way", WAYS)
def test_a_payment_notice_while_payments_are_off_is_503_and_settles_when_they_are_back(
        app, client, actors, fake_wechatpay, monkeypatch, caplog, way):
    donation = donate(client, actors.donor(), 700).get_json()
    headers, body = fake_wechatpay.pay(donation["id"])
    with monkeypatch.context() as off, caplog.at_level(logging.WARNING):
        _switch_off(app, off, way)
        res = client.post(NOTIFY, data=body, headers=headers)

        _assert_not_configured(res)  # not 2xx: WeChat Pay delivers the notice again later
        assert "payment notification received while payments are not configured" in caplog.text
        assert count(app, Donation, Donation.status == "paid") == 0

    assert client.post(NOTIFY, data=body, headers=headers).status_code == 200
    assert count(app, Donation, Donation.status == "paid") == 1


@pytest.mark.parametrize("way", WAYS)
def test_reconciliation_while_payments_are_off_asks_nothing_and_closes_nothing(
        app, client, actors, fake_wechatpay, monkeypatch, caplog, way):
    donation = donate(client, actors.donor(), 700).get_json()
    fake_wechatpay.requests.clear()
    _switch_off(app, monkeypatch, way)

    with app.app_context(), caplog.at_level(logging.WARNING, logger="app.fund.reconcile"):
        assert reconcile_pending(now=utcnow() + timedelta(hours=3)) == {"not_configured": 1}

    assert fake_wechatpay.requests == []
    assert count(app, Donation, Donation.id == donation["id"],
                 Donation.status == "pending_payment") == 1
    assert "payments are not configured: 1 pending donation(s) left unchecked" in caplog.text

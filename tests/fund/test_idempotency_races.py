"""One Idempotency-Key on many donation requests at once (a phone retrying on a flaky network
while its first attempt still waits for WeChat Pay): exactly one request does the work and
places the order; each other one gets 409 `idempotency_key_in_use` or, once the first is done,
its stored answer. Only an owner that is gone (its lease lapsed) may be taken over."""
from __future__ import annotations

import time
import uuid

import pytest

from app import create_app
from app.fund.models import Donation
from tests.concurrency import run_together
from tests.fund.conftest import count, donate

pytestmark = pytest.mark.usefixtures("needs_postgres")

REPLAYED = "Idempotent-Replayed"
JSAPI = "/v3/pay/transactions/jsapi"


@pytest.fixture
def slow_pay(app_config, fake_wechatpay, monkeypatch):
    """Build an app (same database and Redis) whose WeChat Pay answers each order only after
    `seconds`, well within the app's WECHATPAY_TIMEOUT_SECONDS."""
    def build(seconds: float, **settings):
        monkeypatch.setattr(fake_wechatpay, "slow", True)
        monkeypatch.setattr(fake_wechatpay, "slow_seconds", seconds)
        return create_app({**app_config, "WECHATPAY_TIMEOUT_SECONDS": seconds + 10,
                           "RATELIMIT_DONATIONS_USER": "1000/minute", **settings})
    return build


def _sorted_out(responses) -> tuple[list, list]:
    """(fresh 201s, the other answers); every answer is one of the three allowed kinds."""
    fresh, others = [], []
    for res in responses:
        if res.status_code == 201 and REPLAYED not in res.headers:
            fresh.append(res)
        elif res.status_code == 201:
            assert res.headers[REPLAYED] == "true"
            others.append(res)
        else:
            assert res.status_code == 409, res.get_data(as_text=True)
            assert res.get_json()["code"] == "idempotency_key_in_use"
            assert res.headers["Retry-After"]
            others.append(res)
    return fresh, others


def _at(delay: float, call):
    def run():
        time.sleep(delay)
        return call()
    return run


def test_eight_donations_with_one_key_at_once_place_one_order_and_answer_fresh_once(
        app, slow_pay, actors, fake_wechatpay):
    client = slow_pay(1.0).test_client()
    donor = actors.donor()
    key = str(uuid.uuid4())
    # Released together; the repeats follow 0.1 s apart, so that they land while the first
    # request has committed its pending donation and waits for WeChat Pay's answer.
    responses = run_together([_at(i * 0.1, lambda: donate(client, donor, 2000, key=key))
                              for i in range(8)])

    fresh, others = _sorted_out(responses)
    assert len(fresh) == 1, [(r.status_code, dict(r.headers)) for r in responses]
    assert len(fake_wechatpay.calls(JSAPI)) == 1
    assert count(app, Donation) == 1
    for res in others:
        if res.status_code == 201:
            assert res.get_json() == fresh[0].get_json()
    again = donate(client, donor, 2000, key=key)
    assert again.status_code == 201 and again.headers[REPLAYED] == "true"
    assert again.get_json() == fresh[0].get_json()
    assert len(fake_wechatpay.calls(JSAPI)) == 1


def test_the_lease_is_renewed_while_a_slow_order_placement_runs(slow_pay, actors,
                                                                 fake_wechatpay):
    """WeChat Pay takes 4 s; the lease is 2 s. A retry at 3 s finds the first request alive
    (its lease renewed while it waits) and gets 409, not the record."""
    client = slow_pay(4.0, IDEMPOTENCY_LEASE_SECONDS=2).test_client()
    donor = actors.donor()
    first, retry = run_together([
        lambda: donate(client, donor, 3000, key="slow-one"),
        _at(3.0, lambda: donate(client, donor, 3000, key="slow-one")),
    ])

    assert first.status_code == 201 and REPLAYED not in first.headers, first.get_json()
    assert retry.status_code == 409, retry.get_json()
    assert retry.get_json()["code"] == "idempotency_key_in_use"
    assert len(fake_wechatpay.calls(JSAPI)) == 1

"""Helpers for the 505 fund's tests: donations through the API, paid through the fake WeChat Pay."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

NOTIFY = "/api/v1/payments/wechatpay/notify"


@pytest.fixture(autouse=True)
def _generous_limits(app, monkeypatch):
    """These tests make many donations as one donor; the rate limits have their own tests."""
    limiter = app.extensions.get("ratelimit")
    if limiter is not None:
        monkeypatch.setattr(limiter, "enabled", False)


def donate(client, donor, amount_fen: int = 10000, key: str | None = None, **fields):
    body = {"amount_fen": amount_fen, "anonymous": True, "receipt_requested": False, **fields}
    return client.post("/api/v1/donations", json=body,
                       headers={**donor.headers, "Idempotency-Key": key or str(uuid.uuid4())})


def paid_donation(client, fake, donor, amount_fen: int = 10000, **fields) -> dict:
    res = donate(client, donor, amount_fen, **fields)
    assert res.status_code == 201, res.get_json()
    headers, body = fake.pay(res.get_json()["id"])
    notified = client.post(NOTIFY, data=body, headers=headers)
    assert notified.status_code == 200, notified.get_json()
    return res.get_json()


def count(app, model, *where) -> int:
    from app.extensions import db

    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model).where(*where)
                                  ).scalar_one()


def balances(app) -> dict[str, int]:
    from app.fund import books

    with app.app_context():
        return books.balances()

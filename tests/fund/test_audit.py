"""app.fund.audit.problems(): silent when the fund is in order, specific when it is not."""
from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.fund import audit, books
from app.fund.models import Donation
from tests.fund.conftest import paid_donation


def test_a_fund_in_order_has_no_problems(app, client, actors, fake_wechatpay):
    a, b, donor = actors.moderator(), actors.moderator(), actors.donor()
    donation = paid_donation(client, fake_wechatpay, donor, 2000)
    item = client.post("/api/v1/disbursements", headers=a.headers,
                       json={"amount_fen": 500, "purpose": "购买棉被"}).get_json()
    client.post(f"/api/v1/disbursements/{item['id']}/approve", headers=b.headers)
    index = client.get(f"/api/v1/donations/{donation['id']}",
                       headers=donor.headers).get_json()["ledger_index"]
    client.post("/api/v1/ledger/reversals", headers=a.headers,
                json={"index": index, "reason": "捐款人要求退款"})
    with app.app_context():
        assert audit.problems() == []


def test_breaches_are_named(app, client, actors, fake_wechatpay):
    donor = actors.donor()
    donation = paid_donation(client, fake_wechatpay, donor, 2000)
    with app.app_context():
        # a donation marked paid behind the service's back: no books, no ledger entry
        other = Donation(donor_id=donor.id, amount_fen=300, out_trade_no="don_forged0001",
                         status="paid", expires_at=sa.func.now(), anonymous=True,
                         receipt_requested=False)
        db.session.add(other)
        # money booked for a disbursement that does not exist
        books.post("disbursement", "disbursement", "dsb_ghost",
                   [("disbursements_paid", 100), ("fund_cash", -100)])
        db.session.commit()
        other_id = other.id
        found = audit.problems()
    text = "\n".join(found)
    assert f"donation {other_id} is paid but has no ledger entry and no book transaction" in text
    assert "book transaction" in text and "dsb_ghost, which does not exist" in text
    assert donation["id"] not in text
    assert all(line.isascii() for line in found)

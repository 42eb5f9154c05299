"""Money donations to the 505 fund: the donor's order, placed as a WeChat Pay JSAPI order.

The pending donation is committed before WeChat Pay is called, so nothing is lost if the call
(or this process) fails: the donation stays `pending_payment`, a retry with the same
Idempotency-Key places the order again (WeChat Pay answers the same prepay_id for the same
out_trade_no), and reconciliation closes what is never paid. Settling a paid order lives in
app.fund.payments.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app import wechatpay
from app.auth.models import MODERATOR, User
from app.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.extensions import db
from app.fund.lifecycle import DONATION
from app.fund.models import Donation
from app.ledger.entries import donor_display
from app.pagination import Page, keyset_page
from app.settings import settings
from app.types import new_id, utcnow
from app.uow import current, unit_of_work, use_case
from app.wishes.models import Wish

log = logging.getLogger(__name__)

FUND_NAME = "505公益基金"
ORDER_DESCRIPTION = "505公益基金-爱心捐款"


def _not_found() -> DomainError:
    return NotFound("未找到该捐款")


def _check_amount(amount: int) -> None:
    limit = settings()["DONATION_MAX_FEN"]
    if amount > limit:
        raise ValidationFailed(detail=f"单笔捐款不能超过 {limit / 100:.2f} 元",
                               errors={"amount_fen": [f"不能大于{limit}"]})


def _check_wish(wish_id: str | None) -> Wish | None:
    """A donation may name an open, visible wish it is meant for."""
    if wish_id is None:
        return None
    wish = db.session.get(Wish, wish_id)
    if wish is None or not wish.is_public:
        raise ValidationFailed(detail="指定的心愿不存在",
                               errors={"wish_id": ["未找到该心愿"]})
    if wish.status != "open":
        raise Conflict("wish_not_open", "这个心愿当前不接受捐款，可以直接捐给505公益基金")
    return wish


def display_for(donation: Donation, donor: User | None = None) -> str:
    """What the open ledger shows for this donor: `爱心人士`, or `陈*` if they chose to be named."""
    donor = donor or db.session.get(User, donation.donor_id)
    return donor_display(donor.display_name if donor else None, named=not donation.anonymous)


def create_donation(donor: User, data: dict[str, Any]) -> tuple[Donation, dict | None]:
    """Record the pending donation (committed), then place its WeChat Pay order.
    Returns the donation and the wx.requestPayment parameters. Without WeChat Pay (not
    configured, or PAYMENTS_ENABLED=false) nothing is written: a pending row could never be paid."""
    wechatpay.require_configured()
    donation = open_donation(donor, data)
    return donation, ensure_order(donation)


@use_case
def open_donation(donor: User, data: dict[str, Any]) -> Donation:
    """Check and commit the pending donation, before any call to WeChat Pay."""
    amount = data["amount_fen"]
    _check_amount(amount)
    wish = _check_wish(data.get("wish_id"))
    now = utcnow()
    donation_id = new_id("don")  # 30 characters of [a-z0-9_]: a valid out_trade_no as it is
    donation = Donation(
        id=donation_id, out_trade_no=donation_id, donor_id=donor.id,
        wish_id=wish.id if wish else None, amount_fen=amount,
        anonymous=data.get("anonymous", True), receipt_requested=data.get("receipt_requested",
                                                                          False),
        created_at=now,
        expires_at=now + timedelta(seconds=settings()["DONATION_ORDER_TTL_SECONDS"]))
    DONATION.move(donation, "create", donor.id, at=now)  # creates it: pending payment
    current().produced("donation", donation.id)
    log.info("donation %s of %d fen opened by %s", donation.id, amount, donor.id)
    return donation


def ensure_order(donation: Donation) -> dict | None:
    """The wx.requestPayment parameters of a pending donation, placing its order first if that
    has not succeeded yet. None once the donation is paid."""
    if donation.status == "paid":
        return None
    if donation.status == "closed" or donation.expires_at <= utcnow():
        raise Conflict("donation_closed", "这笔捐款的支付已超时关闭，请重新发起捐款")
    if donation.prepay_id is None:
        donor = db.session.get(User, donation.donor_id)
        prepay_id = wechatpay.place_jsapi_order(
            out_trade_no=donation.out_trade_no, description=ORDER_DESCRIPTION,
            amount_fen=donation.amount_fen, payer_openid=donor.wechat_openid,
            expires_at=donation.expires_at)
        # Only this request holds the Idempotency-Key, so nobody else places this order now.
        with unit_of_work():
            donation.prepay_id = prepay_id
    return wechatpay.request_payment_params(donation.prepay_id)


def get_donation_for(user: User, donation_id: str) -> Donation:
    """Its donor or a moderator; anyone else gets 404, as if it did not exist."""
    donation = db.session.get(Donation, donation_id)
    if donation is None or (donation.donor_id != user.id and user.role != MODERATOR):
        raise _not_found()
    return donation


def list_donations_of(donor: User, *, limit: int, cursor: str | None) -> Page:
    query = select(Donation).where(Donation.donor_id == donor.id)
    return keyset_page(query, (Donation.created_at, Donation.id), ("desc", "desc"), limit=limit,
                       cursor=cursor, cursor_kind="my-donations")

"""Settling a paid WeChat Pay order: one function for the notification and for reconciliation.

In one transaction, with the donation's row locked: the order must exist and belong to our
merchant and app, the trade must have succeeded, and the amount must be the donation's. Any
mismatch is 400 `payment_mismatch` and nothing is written (it is logged). The first success marks
the donation paid, posts it to the books, appends its `money_donation` ledger entry and queues one
thank-you to the donor; every later delivery of the same payment is acknowledged and changes
nothing (the row lock orders simultaneous deliveries; the books, the ledger and the outbox are
each unique on the donation as well).
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select

from app import wechatpay
from app.errors import BadRequest
from app.events import DonationPaid
from app.fund.donations import FUND_NAME
from app.fund.lifecycle import DONATION
from app.fund.models import Donation
from app.notifications.service import notify_donor
from app.settings import settings
from app.types import isoformat, utcnow
from app.uow import current, use_case

log = logging.getLogger(__name__)

SUCCESS_EVENT = "TRANSACTION.SUCCESS"


def handle_notification(headers: Mapping[str, str], body: bytes) -> Donation | None:
    """POST /payments/wechatpay/notify: verify, decrypt, settle. Raises a DomainError to refuse."""
    if not wechatpay.is_configured():
        # Orders placed before the fund was switched off may still be paid. Without the keys the
        # notice cannot be verified; a 503 makes WeChat Pay deliver it again later (it retries
        # for about a day), and reconciliation settles it once payments are back.
        log.warning("payment notification received while payments are not configured (%s); "
                    "answered 503 so WeChat Pay delivers it again", wechatpay.why_not_configured())
        raise wechatpay.not_configured_error()
    parsed = wechatpay.parse_notification(headers, body)
    event_type = parsed["event"].get("event_type")
    if event_type != SUCCESS_EVENT:
        log.info("wechatpay notification of type %s acknowledged, nothing to do",
                 str(event_type)[:64])
        return None
    return settle(parsed["transaction"], via="notification")


def _mismatch(donation_id: str | None, out_trade_no: Any, via: str, problems: list[str]):
    """The error to raise: raising it rolls the unit of work back, so nothing is written."""
    log.warning("payment mismatch via %s for order %s (donation %s): %s; nothing written",
                via, str(out_trade_no)[:64], donation_id, ", ".join(problems))
    return BadRequest("payment_mismatch", "支付结果与订单不符，未做任何处理",
                      extra={"problems": problems})


def _problems(donation: Donation, tx: Mapping[str, Any]) -> list[str]:
    config = settings()
    found = []
    if tx.get("mchid") != config.get("WECHATPAY_MCH_ID"):
        found.append("mchid")
    if tx.get("appid") != config.get("WECHATPAY_APP_ID"):
        found.append("appid")
    if tx.get("trade_state") != "SUCCESS":
        found.append("trade_state")
    amount = tx.get("amount") if isinstance(tx.get("amount"), dict) else {}
    total = amount.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total != donation.amount_fen:
        found.append("amount")
    if amount.get("currency", "CNY") != "CNY":
        found.append("currency")
    tid = tx.get("transaction_id")
    if not isinstance(tid, str) or not tid or len(tid) > 64:
        found.append("transaction_id")
    return found


def _paid_at(tx: Mapping[str, Any]) -> datetime:
    value = tx.get("success_time")
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return utcnow()
    return moment if moment.tzinfo else utcnow()


def thank_donor(donation: Donation) -> None:
    """Queue the donor's thank-you (an outbox row in the settling transaction)."""
    wish = donation.wish
    notify_donor(donation.donor_id, "donation_thanks", {
        "donation_id": donation.id, "amount_fen": donation.amount_fen,
        "paid_at": isoformat(donation.paid_at),
        "wish_title": wish.title if wish else FUND_NAME,
    }, f"donation-thanks:{donation.id}")


@use_case
def settle(tx: Mapping[str, Any], *, via: str) -> Donation:
    """Apply a successful transaction to its donation, exactly once."""
    out_trade_no = tx.get("out_trade_no")
    donation = None
    if isinstance(out_trade_no, str):
        donation = current().lock("donation", select(Donation)
                                  .where(Donation.out_trade_no == out_trade_no)
                                  .with_for_update(of=Donation)).scalar_one_or_none()
    if donation is None:
        raise _mismatch(None, out_trade_no, via, ["out_trade_no"])
    problems = _problems(donation, tx)
    if problems:
        raise _mismatch(donation.id, out_trade_no, via, problems)
    if donation.status == "paid":
        if donation.transaction_id != tx["transaction_id"]:
            raise _mismatch(donation.id, out_trade_no, via, ["transaction_id"])
        # A repeat delivery: acknowledged, nothing changes (the unit of work writes nothing).
        log.info("donation %s: repeated payment notice via %s acknowledged", donation.id, via)
        return donation
    if donation.status == "closed":  # the money arrived after all: it counts
        log.warning("donation %s was closed but WeChat Pay reports it paid; settling", donation.id)
    DONATION.move(donation, "pay", None, reason=f"via {via}")
    donation.transaction_id = tx["transaction_id"]
    donation.paid_at = _paid_at(tx)
    current().emit(DonationPaid(donation.id))  # the books, the ledger, the thank-you
    log.info("donation %s paid: %d fen via %s (ledger %d)", donation.id, donation.amount_fen,
             via, donation.ledger_index)
    return donation


@use_case
def close_donation(donation_id: str, reason: str) -> bool:
    """Close a pending donation that will not be paid. False if it is no longer pending."""
    donation = current().lock("donation", select(Donation).where(Donation.id == donation_id)
                              .with_for_update(of=Donation)).scalar_one_or_none()
    if donation is None or donation.status != "pending_payment":
        return False
    donation.closed_at = DONATION.move(donation, "close", None, reason=reason).at
    log.info("donation %s closed (%s)", donation.id, reason)
    return True

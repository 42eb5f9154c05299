"""Reconciliation: ask WeChat Pay about every donation still pending after a few minutes.

A lost notification must not lose a payment, and an order nobody pays must not stay pending
forever. Periodically (FUND_RECONCILE_SECONDS, on the maintenance queue) each pending donation
older than DONATION_RECONCILE_AFTER_SECONDS is queried, outside any database transaction:
  SUCCESS                              → settled by the same function as the notification
  CLOSED / REVOKED / PAYERROR          → closed
  NOTPAY, USERPAYING past time_expire  → closed (WeChat Pay closes the order at time_expire)
  ORDER_NOT_EXIST past time_expire     → closed (the order was never placed)
Anything else waits for the next run. Safe to run twice at once: settling and closing each lock
the row and re-check its status. If WeChat Pay is unavailable the run stops early.
"""
from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_

from app import wechatpay
from app.errors import DomainError
from app.extensions import db
from app.fund.models import Donation
from app.fund.payments import close_donation, settle
from app.settings import settings
from app.types import utcnow
from app.uow import unit_of_work

log = logging.getLogger(__name__)

CLOSED_STATES = ("CLOSED", "REVOKED", "PAYERROR")
UNPAID_STATES = ("NOTPAY", "USERPAYING")
EXPIRY_GRACE = timedelta(seconds=60)  # a payment started just before time_expire may finish


def _check(donation_id: str, out_trade_no: str, expires_at: datetime, now: datetime) -> str:
    try:
        tx = wechatpay.query_order(out_trade_no)
    except DomainError as exc:
        if exc.code == "wechatpay_unavailable":
            return "unavailable"
        log.warning("reconcile: query of donation %s refused: %s", donation_id, exc.code)
        return "error"
    state = tx.get("trade_state") if tx is not None else "ORDER_NOT_EXIST"
    if state == "SUCCESS":
        try:
            settle(tx, via="reconciliation")
        except DomainError as exc:
            log.error("reconcile: donation %s paid but not settled: %s", donation_id, exc.code)
            return "error"
        return "paid"
    expired = now >= expires_at + EXPIRY_GRACE
    if state in CLOSED_STATES or (expired and state in (*UNPAID_STATES, "ORDER_NOT_EXIST")):
        return "closed" if close_donation(donation_id, f"微信支付订单状态 {state}") else "unchanged"
    if state not in UNPAID_STATES and state != "ORDER_NOT_EXIST":
        # REFUND and the like on an order we never saw paid: a person has to look at it.
        log.error("reconcile: donation %s is pending but WeChat Pay says %s", donation_id,
                  str(state)[:32])
        return "attention"
    return "pending"


def _not_configured(cutoff: datetime) -> dict[str, int]:
    """Payments off: nothing can be asked, and nothing is closed blind (an order placed before
    the switch may have been paid); the donations wait for payments to be back."""
    with unit_of_work(read_only=True):
        waiting = db.session.execute(
            select(func.count()).select_from(Donation)
            .where(Donation.status == "pending_payment", Donation.created_at <= cutoff)
        ).scalar_one()
    if not waiting:
        return {}
    log.warning("reconcile: payments are not configured: %d pending donation(s) left unchecked "
                "(%s)", waiting, wechatpay.why_not_configured())
    return {"not_configured": waiting}


def reconcile_pending(now: datetime | None = None, batch_size: int = 100) -> dict[str, int]:
    """Check every pending donation old enough; returns counts by outcome."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings()["DONATION_RECONCILE_AFTER_SECONDS"])
    if not wechatpay.is_configured():
        return _not_configured(cutoff)
    counts: Counter[str] = Counter()
    after = None
    while True:
        query = (select(Donation.id, Donation.out_trade_no, Donation.expires_at,
                        Donation.created_at)
                 .where(Donation.status == "pending_payment", Donation.created_at <= cutoff))
        if after is not None:
            query = query.where(tuple_(Donation.created_at, Donation.id) > after)
        with unit_of_work(read_only=True):  # and then hold nothing while WeChat Pay is asked
            rows = db.session.execute(query.order_by(Donation.created_at, Donation.id)
                                      .limit(batch_size)).all()
        stop = False
        for donation_id, out_trade_no, expires_at, _ in rows:
            outcome = _check(donation_id, out_trade_no, expires_at, now)
            counts[outcome] += 1
            if outcome == "unavailable":
                stop = True
                break
        if stop or len(rows) < batch_size:
            break
        after = (rows[-1].created_at, rows[-1].id)
    checked = sum(counts.values())
    if checked:
        log.info("reconcile: %d pending donations checked: %d paid, %d closed, %d still pending,"
                 " %d need attention, %d errors%s", checked, counts["paid"], counts["closed"],
                 counts["pending"], counts["attention"], counts["error"],
                 "; stopped: WeChat Pay unavailable" if counts["unavailable"] else "")
    return dict(counts)

"""Disbursements: money out of the 505 fund, requested by one moderator and approved by another.

Approval is where money moves: in one transaction the fund is locked and its derived balance
checked (app.fund.books.take_out), the books record cash out, and a `disbursement` entry joins
the open ledger. Two approvals racing for the same balance are serialized by that lock, so the
fund never pays out more than it holds.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from app.auth.models import MODERATOR, User
from app.beneficiaries.service import identity_of
from app.errors import DomainError, Forbidden, Invalid, NotFound, ValidationFailed
from app.events import DisbursementApproved
from app.extensions import db
from app.fund import books
from app.fund.errors import insufficient
from app.fund.lifecycle import DISBURSEMENT
from app.fund.models import Disbursement
from app.notifications.service import notify_staff
from app.pagination import Page, keyset_page
from app.pii_scan import normalise, refuse_pii
from app.types import utcnow
from app.uow import current, lock as lock_, use_case
from app.wishes.models import Wish

log = logging.getLogger(__name__)

FUND_NAME = "505公益基金"


def _not_found() -> DomainError:
    return NotFound("未找到该拨付申请")


def _move(item: Disbursement, action: str, actor_id: str, reason: str | None = None) -> None:
    moved = DISBURSEMENT.move(item, action, actor_id, reason)
    item.decided_at = moved.at


def _check_wish(wish_id: str | None) -> Wish | None:
    if wish_id is None:
        return None
    wish = db.session.get(Wish, wish_id)
    if wish is None or wish.status in ("draft", "pending_review", "rejected"):
        raise ValidationFailed(detail="关联的心愿不存在或尚未发布",
                               errors={"wish_id": ["未找到该心愿"]})
    return wish


def _check_public_text(purpose: str, wish: Wish | None) -> None:
    """The purpose is published in the open ledger: no phone, ID or card numbers in it, nor
    (for a wish) its beneficiary's name, numbers or address."""
    identity = identity_of(wish.beneficiary) if wish is not None else None
    refuse_pii({"purpose": purpose}, identity, what="拨付用途（会公开显示在账本中）")
    # Nor the alias: a card can drop it when consent is withdrawn; an append-only log cannot.
    alias = wish.beneficiary.alias if wish is not None else None
    if alias and normalise(alias)[0] in normalise(purpose)[0]:
        raise Invalid("pii_in_text", "拨付用途会永久公开在账本中，不能写受助人的化名；"
                      "请只写物品或用途（账本会自动关联心愿编号）",
                      errors={"purpose": [{"kind": "alias", "text": alias}]})


@use_case
def request_disbursement(moderator: User, data: dict[str, Any]) -> Disbursement:
    """A moderator asks to pay out of the fund; 409 insufficient_funds above today's balance."""
    amount = data["amount_fen"]
    wish = _check_wish(data.get("wish_id"))
    _check_public_text(data["purpose"], wish)
    current = books.balance()
    if amount > current:
        raise insufficient(current, amount)
    item = Disbursement(amount_fen=amount, purpose=data["purpose"],
                        wish_id=wish.id if wish else None, payee=data.get("payee"),
                        note=data.get("note"), requested_by=moderator.id, requested_at=utcnow())
    DISBURSEMENT.move(item, "request", moderator.id)  # creates it: pending approval
    others = db.session.execute(select(User.id).where(
        User.role == MODERATOR, User.active.is_(True), User.id != moderator.id)).scalars()
    notify_staff(list(others), "disbursement_requested", "拨付待审批",
                 f"{moderator.display_name} 申请从505公益基金拨付 {amount / 100:.2f} 元"
                 f"（{data['purpose'][:40]}），请另一位审核员审批。",
                 {"disbursement_id": item.id}, f"disbursement-requested:{item.id}")
    log.info("disbursement %s of %d fen requested by %s", item.id, amount, moderator.id)
    return item


def get_disbursement(disbursement_id: str, *, lock: bool = False) -> Disbursement:
    query = select(Disbursement).where(Disbursement.id == disbursement_id)
    if lock:
        item = lock_("disbursement", query.with_for_update(of=Disbursement)).scalar_one_or_none()
    else:
        item = db.session.execute(query).scalar_one_or_none()
    if item is None:
        raise _not_found()
    return item


@use_case
def approve_disbursement(moderator: User, disbursement_id: str) -> Disbursement:
    """A second moderator approves: books, ledger and status in one transaction."""
    item = get_disbursement(disbursement_id, lock=True)
    if item.requested_by == moderator.id:
        raise Forbidden("second_approver_required",
                        "拨付须由申请人以外的另一位审核员批准")
    DISBURSEMENT.step(item.status, "approve")  # invalid_transition before the fund is locked
    books.take_out(item.amount_fen)  # locks the fund; 409 if it no longer holds the amount
    _move(item, "approve", moderator.id)
    item.approved_by = moderator.id
    current().emit(DisbursementApproved(item.id))  # the books and the ledger, in this transaction
    log.info("disbursement %s of %d fen approved by %s (ledger %d)", item.id, item.amount_fen,
             moderator.id, item.ledger_index)
    return item


@use_case
def reject_disbursement(moderator: User, disbursement_id: str, reason: str) -> Disbursement:
    """Any moderator (the requester too, to withdraw it) may turn a request down."""
    item = get_disbursement(disbursement_id, lock=True)
    _move(item, "reject", moderator.id, reason)
    item.reject_reason = reason
    log.info("disbursement %s rejected by %s", item.id, moderator.id)
    return item


def list_disbursements(*, status: str | None, limit: int, cursor: str | None) -> Page:
    query = select(Disbursement)
    if status:
        query = query.where(Disbursement.status == status)
    return keyset_page(query, (Disbursement.requested_at, Disbursement.id), ("desc", "desc"),
                       limit=limit, cursor=cursor, cursor_kind=f"disbursements:{status or ''}")

"""Wish use cases: write, submit, moderate, withdraw, read and the public feed."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import defaultload

from app.auth.models import CASEWORKER, User
from app.auth.scope import in_scope, scope_prefixes
from app.beneficiaries.models import LEVEL_RANK, Beneficiary, CATEGORIES, category_mask
from app.beneficiaries.service import get_beneficiary_for, identity_of
from app.errors import (
    DomainError, Forbidden, Invalid, InvalidTransition, NotFound, ValidationFailed,
)
from app.extensions import db
from app.lifecycle import Transition, history
from app.pagination import Page, decode_cursor, keyset_page, page_of
from app.pii_scan import refuse_pii
from app.regions import validate_region_code
from app.uow import lock, use_case
from app.wishes.lifecycle import WISH, transition
from app.wishes.models import Wish
from app.wishes.public import FEED_KEYS, PublicCard, read_public_card, read_public_feed

log = logging.getLogger(__name__)

EDITABLE_STATES = ("draft", "rejected")
EDITABLE_FIELDS = ("title", "story", "kind", "item", "estimated_value_fen")


def _not_found() -> DomainError:
    return NotFound("未找到该心愿")


def _lock(wish_id: str) -> Wish | None:
    """Load a wish with a row lock (PostgreSQL), so two moves on one wish happen one at a time."""
    return lock("wish", select(Wish).where(Wish.id == wish_id).with_for_update(of=Wish)
                ).scalar_one_or_none()


def get_wish_for(user: User | None, wish_id: str) -> tuple[Wish, bool]:
    """(wish, full): staff in scope get the full record; anyone gets a published wish's card;
    everything else is 404 as if it did not exist."""
    # Neither view of a wish reads consents: keep them (a second query) out of this read.
    wish = db.session.get(Wish, wish_id,
                          options=[defaultload(Wish.beneficiary).lazyload(Beneficiary.consents)])
    if wish is None:
        raise _not_found()
    if user is not None and user.is_staff and in_scope(user, wish.region_code):
        return wish, True
    if wish.is_public:
        return wish, False
    raise _not_found()


def get_public_card(wish_id: str) -> PublicCard:
    """The public card of a published wish; 404 for anything else, as if it did not exist."""
    card = read_public_card(wish_id)
    if card is None:
        raise _not_found()
    return card


def get_wish_for_staff(user: User, wish_id: str, *, lock: bool = False) -> Wish:
    wish = _lock(wish_id) if lock else db.session.get(Wish, wish_id)
    if wish is None or not in_scope(user, wish.region_code):
        raise _not_found()
    return wish


def _check_author(user: User, wish: Wish) -> None:
    if wish.author_id != user.id:
        raise Forbidden("forbidden", "只有发布该心愿的协理员可以修改或提交")


@use_case
def create_wish(user: User, data: dict[str, Any]) -> Wish:
    try:
        ben = get_beneficiary_for(user, data["beneficiary_id"])
    except DomainError:
        raise ValidationFailed(detail="受助人不存在或不在您的负责范围内",
                               errors={"beneficiary_id": ["受助人不存在"]}) from None
    if ben.consent_withdrawn_at is not None:
        raise Invalid("consent_missing", "该受助人已撤回同意，不能发布心愿")
    _check_public_text(ben, data)
    wish = Wish(beneficiary=ben, author_id=user.id, region_code=ben.region_code,
                **{f: data.get(f) for f in EDITABLE_FIELDS})
    _copy_assessment(wish, ben)
    transition(wish, "create", user.id)  # creation is a move from no status to draft
    log.info("wish %s drafted by %s", wish.id, user.id)
    return wish


PUBLIC_TEXT_FIELDS = ("title", "story", "item")


def _check_public_text(ben: Beneficiary, texts: dict[str, Any]) -> None:
    """The wish's public text holds no personal data, generic or the beneficiary's own: checked
    when it is written (a draft, an edit) and again at submission."""
    refuse_pii({f: texts.get(f) for f in PUBLIC_TEXT_FIELDS if texts.get(f)},
               identity_of(ben), what="心愿内容")


def _check_reason(wish: Wish, reason: str | None) -> None:
    """A reason is shown to others (the wish's author, the transitions' readers)."""
    if reason:
        refuse_pii({"reason": reason}, identity_of(wish.beneficiary), what="理由")


def _copy_assessment(wish: Wish, ben: Beneficiary) -> None:
    wish.level = ben.level
    wish.level_rank = LEVEL_RANK[ben.level]
    wish.category_mask = category_mask(ben.categories)


@use_case
def update_wish(user: User, wish_id: str, changes: dict[str, Any]) -> Wish:
    wish = get_wish_for_staff(user, wish_id, lock=True)
    _check_author(user, wish)
    if wish.status not in EDITABLE_STATES:
        raise InvalidTransition("只有草稿或被驳回的心愿可以修改", current_status=wish.status,
                                action="edit")
    _check_public_text(wish.beneficiary, changes)
    for field in EDITABLE_FIELDS:
        if field in changes:
            setattr(wish, field, changes[field])
    return wish


@use_case
def submit_wish(user: User, wish_id: str) -> Wish:
    wish = get_wish_for_staff(user, wish_id, lock=True)
    _check_author(user, wish)
    ben = wish.beneficiary
    if not ben.has_consent("publication"):
        raise Invalid("consent_missing", "受助人尚未同意公开发布（publication），不能提交")
    # Again at submission: a draft saved before these rules, or under an older identity.
    _check_public_text(ben, {f: getattr(wish, f) for f in PUBLIC_TEXT_FIELDS})
    _copy_assessment(wish, ben)
    transition(wish, "submit", user.id)
    return wish


@use_case
def approve_wish(user: User, wish_id: str) -> Wish:
    wish = get_wish_for_staff(user, wish_id, lock=True)
    if wish.author_id == user.id:
        raise Forbidden("self_approval", "不能审核自己提交的心愿")
    transition(wish, "approve", user.id)
    wish.approved_by = user.id
    wish.reject_reason = None
    log.info("wish %s approved by %s", wish.id, user.id)
    return wish


@use_case
def reject_wish(user: User, wish_id: str, reason: str) -> Wish:
    wish = get_wish_for_staff(user, wish_id, lock=True)
    if wish.author_id == user.id:
        raise Forbidden("self_approval", "不能审核自己提交的心愿")
    _check_reason(wish, reason)
    transition(wish, "reject", user.id, reason)
    wish.reject_reason = reason
    return wish


@use_case
def withdraw_wish(user: User, wish_id: str, reason: str | None = None) -> Wish:
    wish = get_wish_for_staff(user, wish_id, lock=True)
    if user.role == CASEWORKER:
        _check_author(user, wish)
    _check_reason(wish, reason)
    transition(wish, "withdraw", user.id, reason)
    return wish


def hide_wishes_of_beneficiary(ben: Beneficiary, actor: User) -> None:
    """Consent withdrawn: every wish leaves the public views; open ones are withdrawn, and
    pending ones rejected so they leave the review queue and can never be approved.
    Runs inside the caller's unit of work."""
    wishes = lock("wish", select(Wish).where(Wish.beneficiary_id == ben.id)
                  .with_for_update(of=Wish).order_by(Wish.id)).scalars()
    for wish in wishes:
        if wish.status == "open":
            transition(wish, "withdraw", actor.id, "受助人撤回同意")
        elif wish.status == "pending_review":
            transition(wish, "reject", actor.id, "受助人撤回同意")
            wish.reject_reason = "受助人撤回同意"
        wish.hidden = True  # the feed shows only open wishes: transition() rang its bell


def transitions_of(user: User, wish_id: str) -> list[Transition]:
    wish = get_wish_for_staff(user, wish_id)
    return history(WISH.name, wish.id)


def review_queue(*, limit: int, cursor: str | None) -> Page:
    query = select(Wish).where(Wish.status == "pending_review")
    return keyset_page(query, (Wish.submitted_at, Wish.id), ("asc", "asc"), limit=limit,
                       cursor=cursor, cursor_kind="review-queue")


def staff_wishes(user: User, *, status: str | None, limit: int, cursor: str | None) -> Page:
    """Wishes in the staff member's scope, newest first (drafts included)."""
    query = select(Wish)
    prefixes = scope_prefixes(user)
    if prefixes is not None:
        query = query.where(db.or_(*[Wish.region_code.startswith(p) for p in prefixes]))
    if status:
        query = query.where(Wish.status == status)
    return keyset_page(query, (Wish.created_at, Wish.id), ("desc", "desc"), limit=limit,
                       cursor=cursor, cursor_kind=f"staff-wishes:{status or ''}")


def public_feed(*, kind: str | None = None, level: str | None = None,
                category: str | None = None, region: str | None = None,
                sort: str = "urgency", limit: int = 20, cursor: str | None = None) -> Page:
    """Open, visible wishes as public cards: red first and then the oldest (urgency), or newest
    first; keyset pages (app.pagination's cursors, bound to the sort)."""
    if region:
        validate_region_code(region, "region")
    cursor_kind = f"feed:{sort}"
    after = (decode_cursor(cursor_kind, cursor, len(FEED_KEYS[sort][0]))
             if cursor else None)
    rows = read_public_feed(
        sort=sort, kind=kind or None, level_rank=LEVEL_RANK[level] if level else None,
        category_bit=1 << CATEGORIES.index(category) if category else None,
        region=region or None, after=after, limit=limit + 1)
    page = page_of(rows, limit, cursor_kind, lambda last: last[1])  # (card, its sort key)
    return Page(items=[card for card, _ in page.items], next_cursor=page.next_cursor)

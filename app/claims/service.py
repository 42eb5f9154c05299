"""Claim use cases: claim, release, confirm, dispute, and the deadline that needs no one.

The deadline lives in the database (`claims.due_at`). An RQ job is scheduled for it as a
doorbell, and a periodic sweeper finds every due claim through a partial index with
`FOR UPDATE SKIP LOCKED`, so claims expire on time even if Redis lost every job, and two
sweepers never expire one claim twice.
"""
from __future__ import annotations

import functools
import logging
import math
from datetime import datetime, timedelta, timezone

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import defaultload
from sqlalchemy.exc import IntegrityError

from app.auth.models import MODERATOR, User
from app.auth.scope import in_scope
from app.beneficiaries.models import Beneficiary
from app.beneficiaries.service import identity_of
from app.claims import notices
from app.claims.lifecycle import move
from app.claims.models import Claim, Proof
from app.errors import Conflict, DomainError, Forbidden, NotFound
from app.events import ClaimConfirmed
from app.extensions import db
from app.pagination import Page, keyset_page
from app.pii_scan import refuse_pii
from app.queue import schedule_after_commit
from app.settings import settings
from app.types import new_id, utcnow
from app.uow import current, lock as lock_, unit_of_work, use_case
from app.wishes.models import Wish

log = logging.getLogger(__name__)

def _cfg(name: str):
    return settings()[name]


def _not_found() -> DomainError:
    return NotFound("未找到该认领")


@functools.cache
def _statements():
    """The claim's statements, built once (building a statement and its cache key cost as much
    CPU as running it), their values as bind parameters."""
    expired = (Claim.status == "expired") & (Claim.ended_at >= bindparam("window_start"))
    return {
        "lock_donor": select(User.id).where(User.id == bindparam("donor_id")).with_for_update(),
        # Not the beneficiary's consents (a selectin load the claim never reads).
        "lock_wish": select(Wish).where(Wish.id == bindparam("wish_id"))
        .with_for_update(of=Wish)
        .options(defaultload(Wish.beneficiary).lazyload(Beneficiary.consents)),
        # One statement: the active claims, and the expiries in the strike window with the latest.
        "donor_claims": select(func.count().filter(Claim.status == "active"),
                               func.count().filter(expired),
                               func.max(Claim.ended_at).filter(expired))
        .where(Claim.donor_id == bindparam("donor_id")),
    }


_NO_CONSENTS_OF_WISH = defaultload(Wish.beneficiary).lazyload(Beneficiary.consents)
_NO_CONSENTS_OF_CLAIM = defaultload(Claim.wish).defaultload(Wish.beneficiary).lazyload(
    Beneficiary.consents)


def _check_donor_may_claim(donor: User, now: datetime) -> None:
    window_start = now - timedelta(seconds=_cfg("CLAIM_STRIKE_WINDOW_SECONDS"))
    active, strikes, latest = db.session.execute(
        _statements()["donor_claims"], {"donor_id": donor.id, "window_start": window_start}).one()
    if active >= _cfg("CLAIM_ACTIVE_LIMIT"):
        raise Conflict("claim_limit_reached",
                       f"您已有 {active} 个进行中的认领，请先完成后再认领新的心愿")
    if strikes >= _cfg("CLAIM_COOLDOWN_STRIKES"):
        if latest.tzinfo is None:  # SQLite hands back naive UTC
            latest = latest.replace(tzinfo=timezone.utc)
        until = latest + timedelta(seconds=_cfg("CLAIM_COOLDOWN_SECONDS"))
        if now < until:
            retry = int((until - now).total_seconds()) + 1
            raise Forbidden("donor_cooldown",
                            "您近期有多次认领超时未完成，暂时不能认领，请稍后再来",
                            retry_after=retry,
                            extra={"cooldown_until": until.isoformat().replace("+00:00", "Z")})


def claim_wish(donor: User, wish_id: str, *, anonymous: bool = True) -> Claim:
    """One donor claims one open wish. Of any number of simultaneous claims, one succeeds.
    `anonymous=False`: the ledger entry of its fulfilment shows the donor masked (陈*)."""
    try:
        # keep_loaded: the claim and its wish are answered as this transaction wrote them
        # (every column is set in Python), without reading them back after the commit.
        with unit_of_work(keep_loaded=True) as uow:
            claim = _claim(uow, donor, wish_id, anonymous)
    except IntegrityError:  # the partial unique index: another claim got there first
        raise Conflict("wish_already_claimed", "这个心愿刚刚已被其他爱心人士认领") from None
    log.info("wish %s claimed by %s (claim %s, due %s)", claim.wish_id, donor.id, claim.id,
             claim.due_at)
    return claim


def _claim(uow, donor: User, wish_id: str, anonymous: bool) -> Claim:
    now = utcnow()
    # Serialize a donor's own claims (the active-claim limit) and then the wish itself.
    uow.lock("user", _statements()["lock_donor"], {"donor_id": donor.id})
    wish = uow.lock("wish", _statements()["lock_wish"], {"wish_id": wish_id}).scalar_one_or_none()
    if wish is None or not wish.is_public:
        raise NotFound("未找到该心愿")
    if wish.status in ("claimed", "delivered"):
        raise Conflict("wish_already_claimed", "这个心愿刚刚已被其他爱心人士认领")
    if wish.status != "open":
        raise Conflict("wish_not_open", "这个心愿当前不可认领")
    _check_donor_may_claim(donor, now)
    due = now + timedelta(seconds=_cfg("CLAIM_SLA_SECONDS"))
    # Its id is given here, so the move needs no flush of its own: the claim, its wish and both
    # audit rows are written by one flush (the audit rows in one INSERT).
    claim = Claim(id=new_id("clm"), wish=wish, donor_id=donor.id, claimed_at=now, due_at=due,
                  anonymous=anonymous)
    # Creates the claim and claims the wish; the partial unique index refuses a second active
    # claim with an IntegrityError (at the flush), which claim_wish answers as
    # wish_already_claimed.
    move(claim, "claim", donor.id, at=now)
    uow.produced("claim", claim.id)
    notices.claimed(claim)
    _schedule(claim)
    return claim


def _schedule(claim: Claim) -> None:
    """Doorbells for the claim's reminders and deadline (the sweeper is the safety net).
    Stable job ids: one deadline job per claim and deadline (an extension gets its own); one
    reminder run per second, whatever the number of claims whose reminder falls in it."""
    schedule_after_commit(db.session, claim.due_at, "default", "workers.jobs.expire_claim",
                          claim.id, job_id=f"expire-{claim.id}-{_second(claim.due_at)}")
    for offset in _cfg("CLAIM_REMINDER_OFFSETS"):
        at = claim.due_at - timedelta(seconds=offset)
        if at > claim.claimed_at:
            schedule_after_commit(db.session, at, "default", "workers.jobs.send_reminders",
                                  job_id=f"reminders-{_second(at)}")


def _second(at: datetime) -> int:
    """The whole second (rounded up, as the scheduler does) of a UTC time, naive or aware."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return math.ceil(at.timestamp())


def get_claim_for(user: User, claim_id: str, *, lock: bool = False) -> Claim:
    """Its donor, a caseworker in scope of its wish, or a moderator; everyone else gets 404."""
    # Not the beneficiary's consents (a selectin load on every read of a claim; none of the
    # claim's moves reads them, and one that does loads them then).
    query = select(Claim).where(Claim.id == claim_id).options(_NO_CONSENTS_OF_CLAIM)
    if lock:
        # populate_existing: a claim this transaction read before the lock (submit_proof's checks)
        # takes the row as it is now, under the lock, not as it was then.
        claim = lock_("claim", query.with_for_update(of=Claim)
                      .execution_options(populate_existing=True)).scalar_one_or_none()
    else:
        claim = db.session.execute(query).scalar_one_or_none()
    if claim is None:
        raise _not_found()
    if claim.donor_id == user.id or user.role == MODERATOR or (
            user.role == "caseworker" and in_scope(user, claim.wish.region_code)):
        return claim
    raise _not_found()


def lock_claim_for(user: User, claim_id: str) -> Claim:
    """get_claim_for with row locks on the claim and then its wish (always in that order), and
    the wish re-read under its lock: every move of a claim starts here."""
    claim = get_claim_for(user, claim_id, lock=True)
    # The lock and the re-read in one statement (populate_existing: the wish as it is under the
    # lock, not as an earlier read of this transaction left it).
    lock_("wish", select(Wish).where(Wish.id == claim.wish_id).with_for_update(of=Wish)
          .options(_NO_CONSENTS_OF_WISH).execution_options(populate_existing=True)).scalar_one()
    return claim


def list_claims_of(donor: User, *, limit: int, cursor: str | None) -> Page:
    query = select(Claim).where(Claim.donor_id == donor.id)
    return keyset_page(query, (Claim.claimed_at, Claim.id), ("desc", "desc"), limit=limit,
                       cursor=cursor, cursor_kind="my-claims")


@use_case
def release_claim(donor: User, claim_id: str) -> Claim:
    claim = lock_claim_for(donor, claim_id)
    if claim.donor_id != donor.id:
        raise Forbidden("forbidden", "只有认领人可以放弃认领")
    move(claim, "release", donor.id)
    log.info("claim %s released by its donor", claim.id)
    return claim


def _check_caseworker(user: User, claim: Claim) -> None:
    if user.role != "caseworker" or not in_scope(user, claim.wish.region_code):
        raise Forbidden("forbidden", "只有负责该区划的协理员可以确认或提出异议")


# What the caseworker is told while the photo of a delivery cannot be looked at.
_PHOTO_NOT_READY = {
    None: "该认领还没有送达照片，不能确认",
    "processing": "送达照片还在处理中，处理完成后才能确认，请稍后再试",
    "failed": "送达照片处理失败，无法查看；请提出异议，让认领人重新上传",
}


def _check_photo_ready(claim: Claim) -> None:
    """A caseworker confirms what the photo of this delivery shows, so it must be there to see:
    the claim's latest proof (an earlier one belongs to a delivery disputed since) must be
    processed. 409 `proof_not_ready` while it is processing, or if it failed (the caseworker
    then disputes and the donor uploads again). A photo deleted because consent was withdrawn
    is not waited for: it will never come back."""
    status = db.session.execute(
        select(Proof.status).where(Proof.claim_id == claim.id)
        .order_by(Proof.created_at.desc(), Proof.id.desc()).limit(1)).scalar_one_or_none()
    if status in _PHOTO_NOT_READY:
        raise Conflict("proof_not_ready", _PHOTO_NOT_READY[status],
                       extra={"proof_status": status})


@use_case
def confirm_claim(user: User, claim_id: str) -> Claim:
    claim = lock_claim_for(user, claim_id)
    _check_caseworker(user, claim)
    if claim.status == "delivered":  # any other state is refused by move() as it stands
        _check_photo_ready(claim)
    move(claim, "confirm", user.id)
    claim.confirmed_by = user.id
    current().emit(ClaimConfirmed(claim.id))  # the ledger's entry, in this transaction
    notices.fulfilled(claim)
    log.info("claim %s confirmed by %s; wish %s fulfilled", claim.id, user.id, claim.wish_id)
    return claim


@use_case
def dispute_claim(user: User, claim_id: str, reason: str) -> Claim:
    claim = lock_claim_for(user, claim_id)
    _check_caseworker(user, claim)
    check_text_for_donor(claim, {"reason": reason}, what="异议理由")
    now = utcnow()
    claim.due_at = now + timedelta(seconds=_cfg("DISPUTE_EXTENSION_SECONDS"))
    claim.dispute_count += 1
    claim.last_dispute_reason = reason
    move(claim, "dispute", user.id, reason)
    notices.disputed(claim, reason)
    _schedule(claim)
    log.info("claim %s disputed by %s; new due %s", claim.id, user.id, claim.due_at)
    return claim


def check_text_for_donor(claim: Claim, texts: dict[str, str | None], *, what: str) -> None:
    """Text passed between a claim's donor and its caseworker (a dispute reason, in the donor's
    WeChat message too; a proof's note) carries no personal data, generic or the beneficiary's."""
    refuse_pii(texts, identity_of(claim.wish.beneficiary), what=what)


def mark_delivered(claim: Claim, actor_id: str) -> None:
    """The donor proved delivery: the clock stops. Inside the caller's unit of work, which holds
    the claim's lock."""
    if claim.status == "expired" or (claim.status == "active" and claim.due_at <= utcnow()):
        raise Conflict("claim_expired", "认领已超过截止时间，不能再提交送达凭证")
    move(claim, "deliver", actor_id)


# --- the deadline ------------------------------------------------------------------------------

def _expire_locked(claim: Claim, now: datetime) -> bool:
    if claim.status != "active" or claim.due_at > now:
        return False
    move(claim, "expire", None, "超过截止时间未送达")
    notices.expired(claim)
    return True


def expire_claim(claim_id: str, now: datetime | None = None) -> bool:
    """The per-claim job: expire it if it is still active and due. Safe to run any number of
    times, by any number of workers."""
    now = now or utcnow()
    with unit_of_work() as uow:
        claim = uow.lock("claim", select(Claim).where(Claim.id == claim_id,
                                                      Claim.status == "active",
                                                      Claim.due_at <= now)
                         .with_for_update(of=Claim, skip_locked=True)).scalar_one_or_none()
        if claim is None:
            return False
        uow.lock("wish", select(Wish.id).where(Wish.id == claim.wish_id).with_for_update())
        expired = _expire_locked(claim, now)
    if expired:
        log.info("claim %s expired; wish %s open again", claim.id, claim.wish_id)
    return expired


def sweep_due_claims(now: datetime | None = None, batch_size: int = 200) -> int:
    """Expire every due active claim, a batch per transaction. Returns how many expired."""
    total = 0
    while True:
        now_ = now or utcnow()
        with unit_of_work() as uow:
            claims = list(uow.lock("claim", select(Claim)
                                   .where(Claim.status == "active", Claim.due_at <= now_)
                                   .order_by(Claim.due_at).limit(batch_size)
                                   .with_for_update(of=Claim, skip_locked=True)).scalars())
            if not claims:
                return total
            uow.lock("wish", select(Wish.id).where(Wish.id.in_([c.wish_id for c in claims]))
                     .order_by(Wish.id).with_for_update())
            for claim in claims:
                total += _expire_locked(claim, now_)
        log.info("sweeper expired %d claims", len(claims))
        if len(claims) < batch_size:
            return total


@use_case
def send_due_reminders(now: datetime | None = None) -> int:
    """Queue each reminder whose time has come, once (the outbox dedupes on claim, offset and
    deadline, so a rerun or a second sweeper adds nothing)."""
    now = now or utcnow()
    offsets = sorted(_cfg("CLAIM_REMINDER_OFFSETS"), reverse=True)
    if not offsets:
        return 0
    horizon = now + timedelta(seconds=offsets[0])
    claims = db.session.execute(
        select(Claim).where(Claim.status == "active", Claim.due_at > now,
                            Claim.due_at <= horizon)).scalars()
    queued = 0
    for claim in claims:
        # Only the latest reminder whose time has come: after an outage the donor gets one
        # message, not a burst of stale ones.
        due = [o for o in offsets if claim.claimed_at < claim.due_at - timedelta(seconds=o) <= now]
        if due:
            queued += notices.reminder(claim, min(due))
    return queued

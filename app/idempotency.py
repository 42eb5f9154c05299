"""Idempotency keys for writes a donor may retry from a flaky phone network.

Records live in the database, per user and key, for at least IDEMPOTENCY_TTL (24 h):
  - the first request inserts an `in_flight` record in its own short transaction, holding it
    under a lease: a random owner token and `lease_until`. The request renews the lease while it
    runs (the HTTP edge does, from a heartbeat thread), so a slow request, e.g. a WeChat Pay
    order placement, is never mistaken for a dead one;
  - another request with the same key while the lease runs gets 409 `idempotency_key_in_use`,
    whatever the first has committed so far: exactly one request does the work;
  - the business use case names its resource (e.g. the claim) with `uow.produced(...)`, which
    attaches it to the record inside *its own* unit of work, and only while it still owns the record (the owner token is a fencing token),
    so the effect and the record cannot part and a request that lost its record commits nothing;
  - after the view answers, the response is stored and the record is `done`; a retry gets the
    stored response with `Idempotent-Replayed: true`;
  - a different request with the same key is 422 `idempotency_key_reused`;
  - a 5xx or an exception gives the record up: deleted if nothing was committed under it (the
    retry runs anew), else released at once (the retry carries on from the committed resource,
    e.g. places the order of a pending donation whose WeChat Pay call failed);
  - only a record whose owner is provably gone may be taken over: one that was released, or
    whose lease lapsed unrenewed because its process died. If it had committed its resource
    but not stored its response, the retry renders that resource (the effect still happened
    once).
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (JSON, ColumnElement, ForeignKey, Integer, LargeBinary, String,
                        UniqueConstraint, bindparam, delete, exists, insert, select, update)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.errors import BadRequest, Conflict, DomainError, Invalid, ValidationFailed
from app.extensions import db
from app.types import UTCDateTime, utcnow
from app.uow import reset, unit_of_work, use_case

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=48)
# How long a request holds its record without renewing it (IDEMPOTENCY_LEASE_SECONDS at the edge).
DEFAULT_LEASE = timedelta(seconds=30)
MAX_KEY_LENGTH = 200
OWNER_LENGTH = 32


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="in_flight")
    resource_type: Mapped[str | None] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict | None] = mapped_column(JSON)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The request holding an in-flight record, and until when; NULL once done or released.
    owner: Mapped[str | None] = mapped_column(String(OWNER_LENGTH))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


@dataclass
class Replay:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Hold:
    """One request's hold on a record. `owner` is kept here, not read back from the row: a row
    refreshed after a takeover would name the new owner."""
    record_id: int
    owner: str
    resource_id: str | None


# Core statements on the table, not ORM units of work: the request never reads the record as an
# object (a Hold carries what it needs, a Replay what it answers), and SQLAlchemy's ORM flush and
# its bulk UPDATE path (session synchronisation, ORM compile state) cost more CPU than the
# statements themselves. Each runs in the caller's unit of work, which commits it. The ones of
# every request are built once, with their values as parameters (building a statement and its
# cache key cost as much CPU as sending it).
_T = IdempotencyRecord.__table__
_HELD = (_T.c.id == bindparam("held_id"), _T.c.owner == bindparam("held_owner"))
_BEGIN = insert(_T).returning(_T.c.id)
_ATTACH = update(_T).where(*_HELD, _T.c.resource_id.is_(None)).values(
    resource_type=bindparam("r_type"), resource_id=bindparam("r_id"))
_FINISH = update(_T).where(*_HELD).values(
    state="done", response_status=bindparam("r_status"), response_headers=bindparam("r_headers"),
    response_body=bindparam("r_body"), owner=None, lease_until=None)


def _held(hold: Hold):
    return _T.c.id == hold.record_id, _T.c.owner == hold.owner


def _held_params(hold: Hold) -> dict[str, Any]:
    return {"held_id": hold.record_id, "held_owner": hold.owner}


def _in_use() -> DomainError:
    return Conflict("idempotency_key_in_use", "相同 Idempotency-Key 的请求正在处理中，请稍后重试",
                    retry_after=1)


def fingerprint(method: str, path: str, parts: list[bytes]) -> str:
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def validate_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise BadRequest("idempotency_key_required",
                         "此操作需要 Idempotency-Key 请求头，以便网络重试时不会重复执行")
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(detail="Idempotency-Key 过长或含有不可见字符",
                               errors={"Idempotency-Key": ["格式不正确"]})
    return key


def begin(user_id: str, key: str, fp: str, lease: timedelta = DEFAULT_LEASE) -> Hold | Replay:
    """Hold the key for this request, or return what a retry must answer."""
    owner = secrets.token_hex(OWNER_LENGTH // 2)
    now = utcnow()
    try:
        with unit_of_work(keep_loaded=True):  # the request's user stays loaded for its work
            record_id = db.session.execute(_BEGIN, {
                "user_id": user_id, "key": key, "fingerprint": fp, "state": "in_flight",
                "created_at": now, "expires_at": now + IDEMPOTENCY_TTL, "owner": owner,
                "lease_until": now + lease}).scalar_one()
        return Hold(record_id, owner, None)
    except IntegrityError:
        pass
    with unit_of_work() as uow:
        existing = uow.lock("idempotency_key", select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
            .with_for_update()).scalar_one_or_none()
        if existing is not None:
            outcome = _existing(existing, fp, owner, lease)
    if existing is None:  # deleted by a failed first attempt in between: try once more
        return begin(user_id, key, fp, lease)
    return outcome


def _existing(existing: IdempotencyRecord, fp: str, owner: str,
              lease: timedelta) -> Hold | Replay:
    """Inside begin's unit of work, with the record locked: raising writes nothing."""
    if existing.fingerprint != fp:
        raise Invalid("idempotency_key_reused",
                      "该 Idempotency-Key 已用于另一个不同的请求，请换一个新的")
    if existing.state == "done":
        return Replay(existing.response_status, existing.response_headers or {},
                      existing.response_body or b"")
    now = utcnow()  # after the row lock: the holder may have renewed while this one waited
    if existing.lease_until is not None and existing.lease_until > now:
        # Its owner is alive (it renews the lease while it runs), even if it has committed its
        # resource already: answering for it now would run its work a second time.
        raise _in_use()
    # The owner is gone: it released the record after a failure, or its process died and the
    # lease lapsed. This retry takes the record over, with what the owner committed under it.
    existing.owner, existing.lease_until = owner, now + lease
    return Hold(existing.id, owner, existing.resource_id)


def is_answered(user_id: str, key: str) -> bool:
    """Whether this user's key already has its answer stored. A request with it is answered from
    the record (the stored answer, or 422 `idempotency_key_reused`) without doing any work."""
    return db.session.execute(select(answered(user_id, key))).scalar_one()


def answered(user_id: str | ColumnElement, key: str) -> ColumnElement[bool]:
    """`is_answered` as an SQL expression, for a caller that folds it into a statement of its
    own (the token check reads it with the user: `answered(User.id, key)`)."""
    return exists().where(_T.c.user_id == user_id, _T.c.key == key, _T.c.state == "done")


@use_case
def renew(hold: Hold, lease: timedelta = DEFAULT_LEASE) -> bool:
    """Extend the lease of a record this request still holds. False once it no longer does
    (done, released or taken over): there is nothing left to renew."""
    result = db.session.execute(
        update(_T).where(*_held(hold), _T.c.state == "in_flight")
        .values(lease_until=utcnow() + lease))
    return result.rowcount == 1


def attach(hold: Hold | None, resource_type: str, resource_id: str) -> None:
    """Inside the business use case's unit of work (through `uow.produced`, which the HTTP edge
    binds to this request's hold): the resource is committed with the record, and only while
    this request still holds it (otherwise 409, and the unit of work commits nothing)."""
    if hold is None:
        return
    result = db.session.execute(_ATTACH, {**_held_params(hold), "r_type": resource_type,
                                          "r_id": resource_id})
    if result.rowcount != 1:
        log.warning("idempotency record %s was taken over; its late owner commits nothing",
                    hold.record_id)
        raise _in_use()
    hold.resource_id = resource_id


def finish(hold: Hold, status: int, headers: dict[str, str], body: bytes) -> None:
    """Store the answer and let the record go. A request that lost its record stores nothing:
    the record's new owner answers for it."""
    with unit_of_work(keep_loaded=True):  # the request is answered: nothing is read after this
        db.session.execute(_FINISH, {**_held_params(hold), "r_status": status,
                                     "r_headers": headers, "r_body": body})


def abandon(hold: Hold) -> None:
    """The request failed: free the key for a retry at once. Without an effect the record goes
    (the retry runs anew); with one it stays, released (the retry carries on from it)."""
    reset()  # whatever the failed request left in the session goes first
    with unit_of_work():
        db.session.execute(delete(_T).where(*_held(hold), _T.c.resource_id.is_(None)))
        db.session.execute(update(_T).where(*_held(hold))
                           .values(owner=None, lease_until=None))


@use_case
def purge_expired(now: datetime | None = None) -> int:
    result = db.session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < (now or utcnow())))
    return result.rowcount or 0


def json_body(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()

"""Idempotency keys for writes a donor may retry from a flaky phone network.

Records live in the database, per user and key, for at least IDEMPOTENCY_TTL (24 h):
  - the first request inserts an `in_flight` record in its own short transaction, so a second
    request with the same key at the same moment sees it and gets 409 `idempotency_key_in_use`;
  - the business write attaches its resource (e.g. the claim) to the record inside *its own*
    transaction, so the effect and the record cannot part;
  - after the view answers, the response is stored and the record is `done`; a retry gets the
    stored response with `Idempotent-Replayed: true`;
  - a different request with the same key is 422 `idempotency_key_reused`;
  - a 5xx or an exception deletes the record so the client may simply retry;
  - if the process died between the business commit and storing the response, the record has a
    resource but no response: the retry renders that resource (the effect still happened once).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from app.errors import BadRequest, Conflict, Invalid, ValidationFailed
from app.extensions import db
from app.types import UTCDateTime, utcnow

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=48)
# An in-flight record older than this belongs to a request whose process died before committing.
STALE_IN_FLIGHT = timedelta(seconds=120)
MAX_KEY_LENGTH = 200


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


@dataclass
class Replay:
    status: int
    headers: dict[str, str]
    body: bytes


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


def begin(user_id: str, key: str, fp: str) -> IdempotencyRecord | Replay:
    """Claim the key for this request, or return what a retry must answer."""
    now = utcnow()
    record = IdempotencyRecord(user_id=user_id, key=key, fingerprint=fp, state="in_flight",
                               created_at=now, expires_at=now + IDEMPOTENCY_TTL)
    db.session.add(record)
    try:
        db.session.commit()
        return record
    except IntegrityError:
        db.session.rollback()
    existing = db.session.execute(
        select(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id,
                                        IdempotencyRecord.key == key)
        .with_for_update()
    ).scalar_one_or_none()
    if existing is None:  # deleted by a failed first attempt in between: try once more
        return begin(user_id, key, fp)
    if existing.fingerprint != fp:
        db.session.rollback()
        raise Invalid("idempotency_key_reused",
                      "该 Idempotency-Key 已用于另一个不同的请求，请换一个新的")
    if existing.state == "done":
        replay = Replay(existing.response_status, existing.response_headers or {},
                        existing.response_body or b"")
        db.session.rollback()
        return replay
    if existing.resource_id is not None or now - existing.created_at > STALE_IN_FLIGHT:
        # The first attempt committed its effect but died before storing the response, or died
        # before committing anything: this retry takes the record over.
        existing.created_at = now
        db.session.commit()
        return existing
    db.session.rollback()
    raise Conflict("idempotency_key_in_use", "相同 Idempotency-Key 的请求正在处理中，请稍后重试",
                   retry_after=1)


def attach(record: IdempotencyRecord | None, resource_type: str, resource_id: str) -> None:
    """Called by a service inside its business transaction."""
    if record is not None:
        record.resource_type = resource_type
        record.resource_id = resource_id
        db.session.add(record)


def finish(record: IdempotencyRecord, status: int, headers: dict[str, str], body: bytes) -> None:
    record = db.session.merge(record)
    record.state = "done"
    record.response_status = status
    record.response_headers = headers
    record.response_body = body
    db.session.commit()


def abandon(record: IdempotencyRecord) -> None:
    """The request failed without an effect: free the key for a retry."""
    db.session.rollback()
    db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id,
                                                       IdempotencyRecord.resource_id.is_(None)))
    db.session.commit()


def purge_expired(now: datetime | None = None) -> int:
    result = db.session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < (now or utcnow())))
    db.session.commit()
    return result.rowcount or 0


def json_body(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()

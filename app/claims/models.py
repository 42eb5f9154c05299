"""Claims, their proofs, and the index that lets the sweeper find due claims cheaply."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON, BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, text, true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.claims.lifecycle import ClaimStatus
from app.extensions import db
from app.types import ID_LENGTH, UTCDateTime, new_id, utcnow
from app.wishes.models import Wish

CLAIM_STATUSES = tuple(status.value for status in ClaimStatus)
# A claim in one of these holds its wish: at most one per wish, enforced by a partial unique index.
HOLDING = ("active", "delivered")
_HOLDING_SQL = "status IN ('active', 'delivered')"


class Claim(db.Model):
    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint(f"status IN {CLAIM_STATUSES!r}", name="status_known"),
        Index("uq_claims_one_holding_per_wish", "wish_id", unique=True,
              postgresql_where=text(_HOLDING_SQL), sqlite_where=text(_HOLDING_SQL)),
        # The sweeper's path: only active claims, in deadline order.
        Index("ix_claims_due", "due_at", postgresql_where=text("status = 'active'"),
              sqlite_where=text("status = 'active'")),
        Index("ix_claims_donor_status", "donor_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("clm"))
    wish_id: Mapped[str] = mapped_column(ForeignKey("wishes.id"), index=True)
    donor_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # released/expired/confirmed
    confirmed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    dispute_count: Mapped[int] = mapped_column(Integer, default=0)
    last_dispute_reason: Mapped[str | None] = mapped_column(String(500))
    # False: the open ledger shows the donor's surname and * (陈*) once the claim is confirmed.
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    wish: Mapped[Wish] = relationship(lazy="joined", innerjoin=True)


class Proof(db.Model):
    """A delivery photo. The upload waits in quarantine (never served) until a worker has
    re-encoded it; only the clean re-encode and its thumbnail are ever served."""

    __tablename__ = "proofs"
    __table_args__ = (
        CheckConstraint("status IN ('processing', 'ready', 'failed', 'deleted')",
                        name="status_known"),
        Index("ix_proofs_processing", "created_at",
              postgresql_where=text("status = 'processing'"),
              sqlite_where=text("status = 'processing'")),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("prf"))
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), index=True)
    wish_id: Mapped[str] = mapped_column(ForeignKey("wishes.id"), index=True)
    uploaded_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="processing")
    upload_key: Mapped[str | None] = mapped_column(String(200))
    image_key: Mapped[str | None] = mapped_column(String(200))
    thumb_key: Mapped[str | None] = mapped_column(String(200))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    dhash: Mapped[int | None] = mapped_column(BigInteger)  # signed view of the 64-bit hash
    similar_to: Mapped[list | None] = mapped_column(JSON)  # earlier proofs it looks like
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

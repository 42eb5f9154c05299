"""The outbox (messages to send, written in the business transaction) and the staff inbox."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.types import ID_LENGTH, UTCDateTime, new_id, utcnow

OUTBOX_STATES = ("pending", "sent", "refused", "no_credit", "failed")


class OutboxMessage(db.Model):
    """One message to one donor, sent at most once: `dedupe_key` is unique."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "next_attempt_at", postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    topic: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InboxNotification(db.Model):
    """An in-app message for a caseworker or moderator (GET /me/notifications)."""

    __tablename__ = "inbox_notifications"

    # Opaque like every id the API shows (api-contract: not sequential integers).
    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("ntf"))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    topic: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SubscriptionCredit(db.Model):
    """How many subscribe messages a donor may still receive with one template.

    Each "accept" in wx.requestSubscribeMessage allows WeChat to deliver exactly one message
    (errcode 43101 once it is used), so the relay spends one credit per message sent and sends
    nothing without one.
    """

    __tablename__ = "subscription_credits"
    __table_args__ = (CheckConstraint("credits >= 0", name="credits_not_negative"),)

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    template_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    credits: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

"""Wishes (the audit trail of their moves is `app.lifecycle.Transition`)."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    Boolean, CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text, text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.beneficiaries.models import Beneficiary, categories_of
from app.extensions import db
from app.types import ID_LENGTH, UTCDateTime, new_id, utcnow
from app.wishes.status import WishStatus

KINDS = ("goods", "service", "education")
STATUSES = tuple(status.value for status in WishStatus)
# States in which a wish has been published and its public card may be shown.
PUBLISHED = ("open", "claimed", "delivered", "fulfilled")

_OPEN_VISIBLE = "status = 'open' AND hidden = false"


def age_band(birth_year: int | None, year: int | None = None) -> str | None:
    """The band the public sees instead of a birth year (app.wishes.public's card)."""
    if birth_year is None:
        return None
    age = (year or datetime.now(timezone.utc).year) - birth_year
    if age < 6:
        return "0-5岁"
    if age < 12:
        return "6-11岁"
    if age < 18:
        return "12-17岁"
    if age >= 80:
        return "80岁以上"
    low = age // 10 * 10
    return f"{low}-{low + 9}岁"


class Wish(db.Model):
    __tablename__ = "wishes"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
        CheckConstraint(f"kind IN {KINDS!r}", name="kind_known"),
        CheckConstraint("estimated_value_fen >= 0", name="value_not_negative"),
        # The public feed walks these in order; partial, so they hold only what the feed can show.
        Index("ix_wishes_feed_urgency", "level_rank", "published_at", "id",
              postgresql_where=text(_OPEN_VISIBLE), sqlite_where=text(_OPEN_VISIBLE)),
        Index("ix_wishes_feed_newest", "published_at", "id",
              postgresql_where=text(_OPEN_VISIBLE), sqlite_where=text(_OPEN_VISIBLE)),
        Index("ix_wishes_review_queue", "submitted_at", "id",
              postgresql_where=text("status = 'pending_review'"),
              sqlite_where=text("status = 'pending_review'")),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("wsh"))
    beneficiary_id: Mapped[str] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    title: Mapped[str] = mapped_column(String(60))
    story: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    item: Mapped[str | None] = mapped_column(String(120))
    estimated_value_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # Copied from the beneficiary's assessment so the feed can sort and filter on one table.
    level: Mapped[str] = mapped_column(String(8))
    level_rank: Mapped[int] = mapped_column(SmallInteger)
    category_mask: Mapped[int] = mapped_column(Integer)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)  # consent withdrawn
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    approved_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # of the active claim
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    beneficiary: Mapped[Beneficiary] = relationship(lazy="joined", innerjoin=True)

    @property
    def categories(self) -> list[str]:
        return categories_of(self.category_mask)

    @property
    def alias(self) -> str:
        return self.beneficiary.alias

    @property
    def age_band(self) -> str | None:
        return age_band(self.beneficiary.birth_year)

    @property
    def is_public(self) -> bool:
        return self.status in PUBLISHED and not self.hidden


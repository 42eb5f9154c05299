"""Accounts: donors (WeChat openid) and staff (username + password), with region bindings."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.types import ID_LENGTH, UTCDateTime, new_id, utcnow

DONOR, CASEWORKER, MODERATOR, ADMIN = "donor", "caseworker", "moderator", "admin"
ROLES = (DONOR, CASEWORKER, MODERATOR, ADMIN)
STAFF_ROLES = (CASEWORKER, MODERATOR, ADMIN)


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES!r}", name="role_known"),
        # A donor has an openid and no username; staff the other way round.
        CheckConstraint(
            "(role = 'donor' AND wechat_openid IS NOT NULL AND username IS NULL)"
            " OR (role <> 'donor' AND username IS NOT NULL AND wechat_openid IS NULL)",
            name="login_matches_role",
        ),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("usr"))
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(64))
    username: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    wechat_openid: Mapped[str | None] = mapped_column(String(128), unique=True)
    wechat_unionid: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on disable, role change or "log out everywhere": older tokens stop working at once.
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    regions: Mapped[list["StaffRegion"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="StaffRegion.region_code",
        lazy="selectin",
    )

    @property
    def region_codes(self) -> list[str]:
        return [r.region_code for r in self.regions]

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


class StaffRegion(db.Model):
    """A caseworker acts on every record whose region code starts with one of these."""

    __tablename__ = "staff_regions"
    __table_args__ = (UniqueConstraint("user_id", "region_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    region_code: Mapped[str] = mapped_column(String(12))

    user: Mapped[User] = relationship(back_populates="regions")

"""Beneficiaries, their consents and the audit of every reveal of their identity."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.types import ID_LENGTH, UTCDateTime, new_id, utcnow

CATEGORIES = ("illness", "disability", "education", "elderly", "child", "housing",
              "livelihood", "accident")
CATEGORY_LABELS = {"illness": "疾病", "disability": "残疾", "education": "教育",
                   "elderly": "高龄独居", "child": "困境儿童", "housing": "住房",
                   "livelihood": "就业生计", "accident": "意外急难"}
LEVELS = ("red", "orange", "yellow", "blue")  # most urgent first
LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}
CONSENT_KINDS = ("sensitive_data", "publication", "guardian")
GUARDIAN_AGE = 14
MAX_AGE = 130  # a birth year more than this many years ago is a typing error
IDENTITY_FIELDS = ("real_name", "id_number", "phone", "address")


def category_mask(categories: list[str]) -> int:
    mask = 0
    for name in categories:
        mask |= 1 << CATEGORIES.index(name)
    return mask


def categories_of(mask: int) -> list[str]:
    return [name for bit, name in enumerate(CATEGORIES) if mask & (1 << bit)]


class Beneficiary(db.Model):
    __tablename__ = "beneficiaries"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("ben"))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    alias: Mapped[str] = mapped_column(String(32))
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    # Identity, encrypted (app.pii); NULL once erased.
    real_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Keyed hash of the ID number (app.pii.id_number_hash): how a partner's signal finds them.
    id_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    # dibao | tekun | dibao_edge | temporary, from a visit's outcome or an approved application.
    assistance_type: Mapped[str | None] = mapped_column(String(16))
    categories: Mapped[list] = mapped_column(JSON)
    level: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    consent_withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased: Mapped[bool] = mapped_column(Boolean, default=False)

    consents: Mapped[list["Consent"]] = relationship(
        back_populates="beneficiary", cascade="all, delete-orphan", order_by="Consent.id",
        lazy="selectin",
    )

    def has_consent(self, kind: str) -> bool:
        return any(c.kind == kind and c.withdrawn_at is None for c in self.consents)

    def age(self, year: int) -> int | None:
        return None if self.birth_year is None else year - self.birth_year


class Consent(db.Model):
    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    beneficiary_id: Mapped[str] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    given_by: Mapped[str] = mapped_column(String(16))
    relation: Mapped[str | None] = mapped_column(String(32))
    notice_version: Mapped[str] = mapped_column(String(32))
    collected_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    beneficiary: Mapped[Beneficiary] = relationship(back_populates="consents")


class PiiAccess(db.Model):
    """One row for every time a staff member saw a beneficiary's identity in clear."""

    __tablename__ = "pii_access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    beneficiary_id: Mapped[str] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    actor_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    fields: Mapped[list] = mapped_column(JSON)
    purpose: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

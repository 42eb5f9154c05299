"""A partner client: one department's system, limited to a region (None = every region)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.types import ID_LENGTH, UTCDateTime, new_id, utcnow


class PartnerClient(db.Model):
    __tablename__ = "partner_clients"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("ptn"))
    # Public: the username of HTTP Basic at the token endpoint; random, so it reveals nothing.
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    # Argon2id of the secret (app/auth/passwords.py); the secret itself is shown once, never kept.
    client_secret_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(32))
    # Subjects must lie inside this region prefix; None = everywhere (a city-wide system).
    region_code: Mapped[str | None] = mapped_column(String(12))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Every token carries the version of the secret it was issued under (claim `sv`); rotating
    # the secret bumps it, so the tokens got with the old secret stop working at once.
    secret_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

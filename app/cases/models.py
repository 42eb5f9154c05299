"""Persons found by signals, the signals, alerts, tasks, applications and the alert rules."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.types import ID_LENGTH, UTCDateTime, new_id, utcnow

DEPARTMENT_LENGTH = 32
ASSISTANCE_TYPES = {"dibao": "低保", "tekun": "特困", "dibao_edge": "低保边缘", "temporary": "临时救助"}


class Person(db.Model):
    """Someone a signal or an application names, one row per ID number (by its keyed hash).
    The identity is encrypted (app.pii) under the context `persons.<field>.<id>`."""

    __tablename__ = "persons"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("per"))
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    beneficiary_id: Mapped[str | None] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    assistance_type: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Signal(db.Model):
    """One fact a partner department reported about a person. Unique per (client, external id):
    a replayed item is a duplicate and changes nothing."""

    __tablename__ = "signals"
    __table_args__ = (
        UniqueConstraint("client_id", "external_id", name="uq_signals_client_external"),
        # The spike rule reads one person's earlier signals of one kind in a time window.
        Index("ix_signals_person_kind_observed", "person_id", "kind", "observed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    department: Mapped[str] = mapped_column(String(DEPARTMENT_LENGTH))
    kind: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict] = mapped_column(JSON)
    alert_id: Mapped[str | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alert(db.Model):
    """A person the rules say someone should visit: one open alert per person."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("uq_alerts_open_person", "person_id", unique=True,
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("alr"))
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    status: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list] = mapped_column(JSON)  # the rules that fired, e.g. ["medical_spend.spike"]
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Task(db.Model):
    """Work for the caseworkers of a region: visit an alerted person or verify an application."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_status_due", "status", "due_at"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("tsk"))
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    alert_id: Mapped[str | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    application_id: Mapped[str | None] = mapped_column(ForeignKey("applications.id"), index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A caseworker has it in hand (POST /tasks/{id}/start): who, since when. Still `open`.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str | None] = mapped_column(String(24))
    assistance_type: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(1000))
    wish_id: Mapped[str | None] = mapped_column(ForeignKey("wishes.id"))
    # The person's beneficiary when the task was made, or the one an `enrolled` outcome
    # recorded or found (set on every enrolment since migration 0012).
    beneficiary_id: Mapped[str | None] = mapped_column(ForeignKey("beneficiaries.id"))


class Application(db.Model):
    """One application for 低保, 特困, 低保边缘 or 临时救助 (莆田 极简申请), identity encrypted
    under `applications.<field>.<id>`. One open application per ID number."""

    __tablename__ = "applications"
    __table_args__ = (
        Index("uq_applications_open_id_hash", "id_hash", unique=True,
              postgresql_where=text("status IN ('received', 'visiting', 'reviewing')"),
              sqlite_where=text("status IN ('received', 'visiting', 'reviewing')")),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("apl"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    id_hash: Mapped[str] = mapped_column(String(64))
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    description_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    for_self: Mapped[bool] = mapped_column(Boolean)
    categories: Mapped[list] = mapped_column(JSON)
    consents: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    assistance_type: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))


class AlertRuleVersion(db.Model):
    """The alert rules as data: every PUT writes a new version, naming who, when, before, after.
    The latest version is in force; none yet means the defaults (app.cases.rules)."""

    __tablename__ = "alert_rule_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rules: Mapped[dict] = mapped_column(JSON)
    before: Mapped[dict | None] = mapped_column(JSON)
    changed_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

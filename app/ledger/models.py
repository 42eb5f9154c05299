"""The ledger's tables: entries (leaves), perfect-subtree nodes, and signed checkpoints.

Entries and nodes are append-only: a database trigger (migration 0005) refuses UPDATE and DELETE,
so not even a bug in this code, or a hand-typed SQL statement, can rewrite published history.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.types import UTCDateTime, utcnow


class LedgerEntry(db.Model):
    __tablename__ = "ledger_entries"
    __table_args__ = (UniqueConstraint("source_type", "source_id"),)

    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)        # the exact canonical JSON hashed
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    kind: Mapped[str] = mapped_column(String(24))
    source_type: Mapped[str] = mapped_column(String(24))    # the business event, exactly once
    source_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerNode(db.Model):
    """node(level, index): the hash of a complete perfect subtree (level >= 1)."""

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerCheckpoint(db.Model):
    __tablename__ = "ledger_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

"""Reading the open ledger for pages: newest entries first, and the latest entries of some kinds.

Entries are returned as stored (index, kind, the canonical leaf bytes); what a page shows of them
is decided by the page, from the leaf, the same bytes the verifier hashes.
"""
from __future__ import annotations

from typing import Sequence

from sqlalchemy import select

from app.extensions import db
from app.ledger.models import LedgerEntry


def newest(before: int, limit: int) -> list[LedgerEntry]:
    """Up to `limit` entries with index < `before`, newest first."""
    return list(db.session.execute(
        select(LedgerEntry).where(LedgerEntry.index < before)
        .order_by(LedgerEntry.index.desc()).limit(limit)).scalars())


def latest_of(kinds: Sequence[str], limit: int) -> list[LedgerEntry]:
    """The latest `limit` entries of the given kinds, newest first."""
    return list(db.session.execute(
        select(LedgerEntry).where(LedgerEntry.kind.in_(tuple(kinds)))
        .order_by(LedgerEntry.index.desc()).limit(limit)).scalars())

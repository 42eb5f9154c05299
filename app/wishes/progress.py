"""A published wish's progress as the public sees it: when it was published, claimed, delivered
and fulfilled, and (once fulfilled) the index of its open-ledger entry."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select


@dataclass(frozen=True)
class Progress:
    claimed_at: datetime | None
    delivered_at: datetime | None
    ledger_index: int | None


NONE = Progress(None, None, None)


def read_progress(wish_id: str) -> Progress:
    """The current (or confirming) claim's dates and the ledger entry it made, in one query.

    Only a claim that holds the wish (active, delivered) or fulfilled it (confirmed) counts:
    released and expired claims are not progress, and nothing about their donors is read.
    """
    from app.claims.models import Claim
    from app.extensions import db
    from app.ledger.models import LedgerEntry

    row = db.session.execute(
        select(Claim.claimed_at, Claim.delivered_at, LedgerEntry.index)
        .outerjoin(LedgerEntry, and_(LedgerEntry.source_type == "claim",
                                     LedgerEntry.source_id == Claim.id))
        .where(Claim.wish_id == wish_id, Claim.status.in_(("active", "delivered", "confirmed")))
        .order_by(Claim.claimed_at.desc()).limit(1)).first()
    return NONE if row is None else Progress(*row)

"""Reversals: a correction is a new `reversal` entry naming the index and leaf hash it reverses.

Nothing is rewritten: the original ledger entry and its book transaction stay as they are. When
the reversed entry moved money, the reversal also posts the exact negation of its book
transaction: a reversed donation is a refund (cash out, so the fund must hold it), a reversed
disbursement puts the money back. Each entry can be reversed once, and a reversal never.
"""
from __future__ import annotations

import json
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth.models import User
from app.errors import Conflict, DomainError, NotFound
from app.extensions import db
from app.fund import books
from app.fund.errors import insufficient
from app.fund.models import FundReversal
from app.ledger import entries, log as ledger
from app.ledger.models import LedgerEntry
from app.types import utcnow
from app.uow import unit_of_work
from app.wishes.models import Wish

log = logging.getLogger(__name__)


def _already(index: int) -> DomainError:
    return Conflict("already_reversed", f"账目 #{index} 已经被冲正过，不能重复冲正")


def reverse_entry(moderator: User, index: int, reason: str) -> FundReversal:
    """Append the reversal of ledger entry `index` (and of its money, if it moved any)."""
    try:
        with unit_of_work() as uow:
            row, kind = _reverse(uow, moderator, index, reason)
    except IntegrityError:  # SQLite without the advisory lock: the other reversal won
        raise _already(index) from None
    log.info("ledger entry %d (%s) reversed by %s as entry %d; %d fen moved back", index,
             kind, moderator.id, row.reversal_index, row.value_fen)
    return row


def _reverse(uow, moderator: User, index: int, reason: str) -> tuple[FundReversal, str]:
    books.lock_fund()  # before the ledger's lock: serializes money-out writers and reversals
    original = db.session.execute(
        select(LedgerEntry).where(LedgerEntry.index == index)).scalar_one_or_none()
    if original is None:
        raise NotFound(f"账本中没有编号为 {index} 的账目")
    if original.kind == "reversal":
        raise Conflict("cannot_reverse_reversal",
                       "冲正账目不能再被冲正；如需更正，请联系管理员核查")
    if db.session.execute(select(FundReversal.id).where(
            FundReversal.ledger_index == index)).scalar() is not None:
        raise _already(index)

    money = books.find(original.source_type, original.source_id)
    postings = books.reversal_of(money) if money is not None else []
    cash_out = -books.cash_change(postings)
    if cash_out > 0:
        current = books.balance()
        if cash_out > current:
            raise insufficient(current, cash_out)

    body = json.loads(bytes(original.leaf).decode("utf-8"))
    now = utcnow()
    town = body.get("town")
    if town is None and body.get("wish_id"):  # an entry from before entries named their town
        town = entries.town_of_wish(db.session.get(Wish, body["wish_id"]))
    reversal = entries.reversal(index, bytes(original.leaf_hash), wish_id=body.get("wish_id"),
                                town=town, item=body.get("item"),
                                value_fen=body.get("value_fen") or 0, at=now)
    source_id = str(index)
    if postings:
        books.post("reversal", "reversal", source_id, postings, memo=f"冲正账目 #{index}")
    new_index = ledger.append("reversal", reversal, "reversal", source_id)
    row = FundReversal(ledger_index=index, reversal_index=new_index,
                       value_fen=abs(books.cash_change(postings)), reason=reason,
                       requested_by=moderator.id, created_at=now)
    db.session.add(row)
    return row, original.kind

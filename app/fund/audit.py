"""The fund's invariants, checked against the database: `problems()` lists every breach.

Read-only. Each line is plain English for an operator and names the rows involved:
  - every book transaction has at least two postings and they sum to zero;
  - the fund's cash is not below zero;
  - every paid donation and approved disbursement has exactly one ledger entry and one book
    transaction, of its amount; nothing else (pending, closed, rejected) has either;
  - every money entry in the ledger (and every book transaction) points at a business row.
"""
from __future__ import annotations

from sqlalchemy import String, and_, cast, func, select

from app.extensions import db
from app.fund import books
from app.fund.models import (DISBURSEMENTS_PAID, DONATIONS_RECEIVED, FUND_CASH, BookPosting,
                             BookTransaction, Disbursement, Donation, FundReversal)
from app.ledger.models import LedgerEntry
from app.uow import unit_of_work

MAX_LISTED = 20


def _unbalanced() -> list[str]:
    sums = (select(BookPosting.transaction_id, func.sum(BookPosting.amount_fen).label("total"),
                   func.count().label("n")).group_by(BookPosting.transaction_id).subquery())
    rows = db.session.execute(
        select(BookTransaction.id, BookTransaction.source_type, BookTransaction.source_id,
               sums.c.total, sums.c.n)
        .outerjoin(sums, sums.c.transaction_id == BookTransaction.id)
        .where((sums.c.n.is_(None)) | (sums.c.n < 2) | (sums.c.total != 0))
        .limit(MAX_LISTED)).all()
    return [f"book transaction {tid} ({st} {sid}) is unbalanced: {n or 0} postings summing to "
            f"{total or 0} fen" for tid, st, sid, total, n in rows]


def _money_rows(model, kind: str, account: str, done_status: str) -> list[str]:
    """Each business row in `done_status` has one ledger entry and one book transaction of its
    amount on `account`; rows in any other status have neither."""
    found = []
    entry = (select(LedgerEntry.source_id).where(LedgerEntry.source_type == kind).subquery())
    amounts = (select(BookTransaction.source_id,
                      func.sum(BookPosting.amount_fen).label("amount"))
               .join(BookPosting, BookPosting.transaction_id == BookTransaction.id)
               .where(BookTransaction.source_type == kind, BookPosting.account == account)
               .group_by(BookTransaction.source_id).subquery())
    rows = db.session.execute(
        select(model.id, model.status, model.amount_fen, entry.c.source_id, amounts.c.amount)
        .outerjoin(entry, entry.c.source_id == model.id)
        .outerjoin(amounts, amounts.c.source_id == model.id)
        .where(((model.status == done_status) & (entry.c.source_id.is_(None)
                                                 | amounts.c.amount.is_(None)))
               | ((model.status != done_status) & (entry.c.source_id.is_not(None)
                                                   | amounts.c.amount.is_not(None))))
        .limit(MAX_LISTED)).all()
    for row_id, status, amount, has_entry, booked in rows:
        if status == done_status:
            missing = [name for name, value in (("ledger entry", has_entry),
                                                ("book transaction", booked)) if value is None]
            found.append(f"{kind} {row_id} is {status} but has no {' and no '.join(missing)}")
        else:
            found.append(f"{kind} {row_id} is {status} but has a ledger entry or book transaction")
    sign = -1 if account == DONATIONS_RECEIVED else 1
    wrong = db.session.execute(
        select(model.id, model.amount_fen, amounts.c.amount)
        .join(amounts, amounts.c.source_id == model.id)
        .where(amounts.c.amount != sign * model.amount_fen).limit(MAX_LISTED)).all()
    found += [f"{kind} {row_id} of {amount} fen is booked as {sign * booked} fen"
              for row_id, amount, booked in wrong]
    return found


def _orphans() -> list[str]:
    found = []
    for kind, model in (("donation", Donation), ("disbursement", Disbursement)):
        ledger_kind = "money_donation" if kind == "donation" else "disbursement"
        rows = db.session.execute(
            select(LedgerEntry.index, LedgerEntry.source_type, LedgerEntry.source_id)
            .outerjoin(model, and_(LedgerEntry.source_type == kind,
                                   model.id == LedgerEntry.source_id))
            .where(LedgerEntry.kind == ledger_kind, model.id.is_(None)).limit(MAX_LISTED)).all()
        found += [f"ledger entry {index} ({ledger_kind}) names {st} {sid}, which does not exist"
                  for index, st, sid in rows]
        rows = db.session.execute(
            select(BookTransaction.id, BookTransaction.source_id)
            .outerjoin(model, model.id == BookTransaction.source_id)
            .where(BookTransaction.source_type == kind, model.id.is_(None))
            .limit(MAX_LISTED)).all()
        found += [f"book transaction {tid} names {kind} {sid}, which does not exist"
                  for tid, sid in rows]
    rows = db.session.execute(
        select(BookTransaction.id, BookTransaction.source_id)
        .outerjoin(FundReversal,
                   cast(FundReversal.ledger_index, String) == BookTransaction.source_id)
        .where(BookTransaction.source_type == "reversal", FundReversal.id.is_(None))
        .limit(MAX_LISTED)).all()
    found += [f"book transaction {tid} reverses ledger entry {sid}, but no reversal is recorded"
              for tid, sid in rows]
    rows = db.session.execute(
        select(LedgerEntry.index).outerjoin(FundReversal,
                                            FundReversal.reversal_index == LedgerEntry.index)
        .where(LedgerEntry.kind == "reversal", FundReversal.id.is_(None)).limit(MAX_LISTED)
    ).scalars().all()
    found += [f"ledger entry {index} is a reversal with no reversal record" for index in rows]
    return found


def problems() -> list[str]:
    """Every breach of the fund's invariants, one line each (empty: all is well)."""
    with unit_of_work(read_only=True):
        return _problems()


def _problems() -> list[str]:
    found = _unbalanced()
    cash = books.balance(FUND_CASH)
    if cash < 0:
        found.append(f"the fund's cash balance is negative: {cash} fen")
    found += _money_rows(Donation, "donation", DONATIONS_RECEIVED, "paid")
    found += _money_rows(Disbursement, "disbursement", DISBURSEMENTS_PAID, "approved")
    found += _orphans()
    return found

"""The fund's double-entry books: post balanced transactions, derive balances by SUM.

The rules themselves (the postings of each event, what may be posted, when money may leave) are
pure functions in app.fund.rules; this module applies them to the stored books.

Every business event that moves money is one book transaction, unique on (source_type,
source_id), so posting the same event twice returns the first one. Amounts are integer fen,
debit positive and credit negative:

  donation paid       fund_cash +X   donations_received -X
  disbursement        fund_cash -X   disbursements_paid +X
  reversal            the exact negation of the transaction it reverses

Writers that take money out call `take_out(amount)` first: it serializes them (a
transaction-scoped advisory lock on PostgreSQL; SQLite has one writer anyway) and checks the
derived balance, so two payouts racing for the same money never both pass.
"""
from __future__ import annotations

from sqlalchemy import func, select, text

from app.extensions import db
from app.fund import rules
from app.fund.models import BookPosting, BookTransaction
from app.fund.rules import ACCOUNTS, DISBURSEMENTS_PAID, DONATIONS_RECEIVED, FUND_CASH
from app.uow import lock

FUND_LOCK_KEY = 0x505F0D  # the advisory lock every writer taking money out shares


def lock_fund() -> None:
    """Serialize money-out writers until the current transaction ends. Take it before the
    ledger's lock (app.ledger.log), never after, so the two locks cannot deadlock."""
    advisory = None
    if db.session.get_bind().dialect.name == "postgresql":
        advisory = text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=FUND_LOCK_KEY)
    lock("fund", advisory)  # LOCK_ORDER (app.uow) puts it before the ledger's


def balance(account: str = FUND_CASH) -> int:
    """The signed sum of an account's postings (the fund's cash by default)."""
    if account not in ACCOUNTS:
        raise ValueError(f"unknown account {account!r}")
    return int(db.session.execute(select(func.coalesce(func.sum(BookPosting.amount_fen), 0))
                                  .where(BookPosting.account == account)).scalar_one())


def balances() -> dict[str, int]:
    """Every account's balance in one query."""
    rows = db.session.execute(select(BookPosting.account, func.sum(BookPosting.amount_fen))
                              .group_by(BookPosting.account)).all()
    found = {account: int(total) for account, total in rows}
    return {account: found.get(account, 0) for account in ACCOUNTS}


def totals() -> dict[str, int]:
    """Money donated and disbursed, net of reversals (for GET /stats)."""
    b = balances()
    return {"money_donated_fen": -b[DONATIONS_RECEIVED],
            "money_disbursed_fen": b[DISBURSEMENTS_PAID],
            "fund_balance_fen": b[FUND_CASH]}


def take_out(amount_fen: int) -> int:
    """Lock the fund and check it holds `amount_fen`; 409 insufficient_funds otherwise.
    Returns the balance before. The caller posts the withdrawal in the same transaction."""
    lock_fund()
    current = balance(FUND_CASH)
    rules.check_take_out(current, amount_fen)
    return current


def find(source_type: str, source_id: str) -> BookTransaction | None:
    return db.session.execute(select(BookTransaction).where(
        BookTransaction.source_type == source_type,
        BookTransaction.source_id == source_id)).scalar_one_or_none()


def post(kind: str, source_type: str, source_id: str, postings: list[tuple[str, int]],
         memo: str | None = None) -> BookTransaction:
    """Record one balanced transaction inside the caller's unit of work, exactly once per source."""
    existing = find(source_type, source_id)
    if existing is not None:
        return existing
    try:
        rules.check(postings)
    except ValueError as exc:
        raise ValueError(f"{source_type} {source_id}: {exc}") from None
    txn = BookTransaction(kind=kind, source_type=source_type, source_id=source_id, memo=memo)
    db.session.add(txn)
    db.session.flush()
    db.session.add_all(BookPosting(transaction_id=txn.id, account=account, amount_fen=amount)
                       for account, amount in postings)
    db.session.flush()
    return txn


def record_donation(donation_id: str, amount_fen: int) -> BookTransaction:
    return post("donation", "donation", donation_id, rules.donation(amount_fen), memo="捐款到账")


def record_disbursement(disbursement_id: str, amount_fen: int) -> BookTransaction:
    """The caller has called take_out(amount_fen) in this transaction."""
    return post("disbursement", "disbursement", disbursement_id, rules.disbursement(amount_fen),
                memo="基金拨付")


def reversal_of(original: BookTransaction) -> list[tuple[str, int]]:
    return rules.reversal([(p.account, p.amount_fen) for p in original.postings])


cash_change = rules.cash_change

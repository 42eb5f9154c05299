"""The books' rules as data and pure functions: the chart of accounts, the postings each event
makes, what a transaction must be to be posted, and when money may leave the fund.

No session, no database: `app.fund.books` applies these rules to the stored books, and the unit
tier (tests/unit) checks them on their own. Amounts are integer fen, debit positive and credit
negative; a balance is the sum of an account's postings.
"""
from __future__ import annotations

from typing import Iterable

from app.fund.errors import insufficient

# The chart of accounts, fixed. Debit-normal: cash and disbursements; credit-normal: donations.
FUND_CASH = "fund_cash"                      # money the fund holds (资金余额)
DONATIONS_RECEIVED = "donations_received"    # money given to the fund (捐款收入)
DISBURSEMENTS_PAID = "disbursements_paid"    # money paid out by the fund (拨付支出)
ACCOUNTS = (FUND_CASH, DONATIONS_RECEIVED, DISBURSEMENTS_PAID)

Postings = list[tuple[str, int]]


def check(postings: Postings) -> None:
    """A transaction may be posted only if it has two postings or more, on known accounts, none
    of them zero, and they sum to zero (double entry). ValueError otherwise: that is our bug."""
    if len(postings) < 2 or sum(amount for _, amount in postings) != 0:
        raise ValueError(f"unbalanced book transaction: {postings}")
    if any(account not in ACCOUNTS or amount == 0 for account, amount in postings):
        raise ValueError(f"bad posting in {postings}")


def donation(amount_fen: int) -> Postings:
    """A donation paid: cash in, donations received."""
    return [(FUND_CASH, amount_fen), (DONATIONS_RECEIVED, -amount_fen)]


def disbursement(amount_fen: int) -> Postings:
    """A disbursement approved: paid out, cash out."""
    return [(DISBURSEMENTS_PAID, amount_fen), (FUND_CASH, -amount_fen)]


def reversal(postings: Postings) -> Postings:
    """The exact negation of a transaction's postings."""
    return [(account, -amount) for account, amount in postings]


def cash_change(postings: Postings) -> int:
    return sum(amount for account, amount in postings if account == FUND_CASH)


def balances(transactions: Iterable[Postings]) -> dict[str, int]:
    """Every account's balance over some transactions (the books derive the same by SUM)."""
    totals = dict.fromkeys(ACCOUNTS, 0)
    for postings in transactions:
        for account, amount in postings:
            totals[account] += amount
    return totals


def check_take_out(balance_fen: int, amount_fen: int) -> None:
    """Money may leave the fund only if it holds it: 409 `insufficient_funds` otherwise."""
    if amount_fen > balance_fen:
        raise insufficient(balance_fen, amount_fen)

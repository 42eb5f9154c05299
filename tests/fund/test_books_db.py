"""The books on the real database: balanced, append-only, derived balances, never below zero."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.fund import books
from app.fund.models import (DISBURSEMENTS_PAID, DONATIONS_RECEIVED, FUND_CASH, BookPosting,
                             BookTransaction)


def test_posting_is_exactly_once_per_source_and_balances_are_sums(app):
    with app.app_context():
        first = books.record_donation("don_a", 5000)
        again = books.record_donation("don_a", 5000)
        books.record_donation("don_b", 700)
        books.take_out(3000)
        books.record_disbursement("dsb_a", 3000)
        db.session.commit()
        assert again.id == first.id
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BookTransaction)) == 3
        assert books.balances() == {FUND_CASH: 2700, DONATIONS_RECEIVED: -5700,
                                    DISBURSEMENTS_PAID: 3000}
        assert books.totals() == {"money_donated_fen": 5700, "money_disbursed_fen": 3000,
                                  "fund_balance_fen": 2700}


def test_an_unbalanced_transaction_is_refused_before_it_reaches_the_database(app):
    with app.app_context():
        with pytest.raises(ValueError):
            books.post("donation", "test", "x", [(FUND_CASH, 100), (DONATIONS_RECEIVED, -99)])
        with pytest.raises(ValueError):
            books.post("donation", "test", "y", [(FUND_CASH, 100)])


def test_taking_out_more_than_the_fund_holds_is_409(app):
    from app.errors import DomainError
    from miniprogram_api.problems import status_of

    with app.app_context():
        books.record_donation("don_a", 100)
        db.session.commit()
        with pytest.raises(DomainError) as refused:
            books.take_out(101)
        assert refused.value.code == "insufficient_funds" and status_of(refused.value) == 409
        db.session.rollback()


@pytest.mark.parametrize("statement", [
    "UPDATE book_postings SET amount_fen = amount_fen * 2",
    "DELETE FROM book_postings",
    "UPDATE book_transactions SET source_id = 'other'",
    "DELETE FROM book_transactions",
])
def test_the_database_refuses_to_rewrite_the_books(app, statement):
    with app.app_context():
        books.record_donation("don_a", 100)
        db.session.commit()
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(sa.text(statement))
            db.session.flush()
        db.session.rollback()
        assert books.balance() == 100


def _insert_raw(postings: list[tuple[str, int]]) -> None:
    txn = db.session.execute(sa.insert(BookTransaction).values(
        kind="donation", source_type="raw", source_id="1", created_at=sa.func.now())
        .returning(BookTransaction.id)).scalar_one()
    for account, amount in postings:
        db.session.execute(sa.insert(BookPosting).values(transaction_id=txn, account=account,
                                                         amount_fen=amount))


@pytest.mark.parametrize("postings", [
    [(FUND_CASH, 100), (DONATIONS_RECEIVED, -90)],     # does not sum to zero
    [],                                                # no postings at all
    [(DISBURSEMENTS_PAID, 100), (FUND_CASH, -100)],    # balanced, but the fund holds nothing
])
def test_postgres_refuses_at_commit_what_breaks_the_books(app, needs_postgres, postings):
    """Written straight in SQL, past the code's own checks: the deferred trigger still says no."""
    with app.app_context():
        _insert_raw(postings)
        db.session.flush()  # each row is fine alone; the check runs at commit
        with pytest.raises(DBAPIError, match="does not balance|below zero"):
            db.session.commit()
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BookTransaction)) == 0


def test_postgres_accepts_a_balanced_transaction_written_in_sql(app, needs_postgres):
    with app.app_context():
        _insert_raw([(FUND_CASH, 100), (DONATIONS_RECEIVED, -100)])
        db.session.commit()
        assert books.balance() == 100

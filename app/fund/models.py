"""The fund's tables: the books (transactions and postings), donations, disbursements, reversals.

Books: one `book_transactions` row per business event (unique on its source), and its postings,
signed amounts in fen (debit positive, credit negative) that sum to zero. Balances are never
stored: they are SUMs over postings. Migration 0006 makes both tables append-only (a trigger
refuses UPDATE and DELETE) and, on PostgreSQL, refuses at commit a transaction whose postings do
not balance or that would leave the fund's cash below zero.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer,
                        String, UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.fund.lifecycle import DisbursementStatus, DonationStatus
from app.fund.rules import (  # noqa: F401 - the chart of accounts, re-exported for readers
    ACCOUNTS, DISBURSEMENTS_PAID, DONATIONS_RECEIVED, FUND_CASH,
)
from app.types import ID_LENGTH, UTCDateTime, new_id, utcnow
from app.wishes.models import Wish


DONATION_STATUSES = tuple(status.value for status in DonationStatus)
DISBURSEMENT_STATUSES = tuple(status.value for status in DisbursementStatus)


class BookTransaction(db.Model):
    __tablename__ = "book_transactions"
    __table_args__ = (UniqueConstraint("source_type", "source_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(24))          # donation, disbursement, reversal
    source_type: Mapped[str] = mapped_column(String(24))   # the business event, exactly once
    source_id: Mapped[str] = mapped_column(String(64))
    memo: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    postings: Mapped[list["BookPosting"]] = relationship(lazy="selectin",
                                                         order_by="BookPosting.id")


class BookPosting(db.Model):
    __tablename__ = "book_postings"
    __table_args__ = (
        CheckConstraint(f"account IN {ACCOUNTS!r}", name="account_known"),
        CheckConstraint("amount_fen <> 0", name="amount_not_zero"),
        Index("ix_book_postings_account", "account"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("book_transactions.id"), index=True)
    account: Mapped[str] = mapped_column(String(32))
    amount_fen: Mapped[int] = mapped_column(BigInteger)


class Donation(db.Model):
    """A money donation to the fund, paid through a WeChat Pay JSAPI order."""

    __tablename__ = "donations"
    __table_args__ = (
        CheckConstraint(f"status IN {DONATION_STATUSES!r}", name="status_known"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        Index("ix_donations_donor", "donor_id", "created_at", "id"),
        # Reconciliation walks only the pending orders, oldest first.
        Index("ix_donations_pending", "created_at", "id",
              postgresql_where=text("status = 'pending_payment'"),
              sqlite_where=text("status = 'pending_payment'")),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("don"))
    donor_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    wish_id: Mapped[str | None] = mapped_column(ForeignKey("wishes.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=True)
    receipt_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending_payment")
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ledger_index: Mapped[int | None] = mapped_column(BigInteger)

    wish: Mapped[Wish | None] = relationship(lazy="joined")


class Disbursement(db.Model):
    """Money out of the fund: requested by one moderator, approved by another."""

    __tablename__ = "disbursements"
    __table_args__ = (
        CheckConstraint(f"status IN {DISBURSEMENT_STATUSES!r}", name="status_known"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("approved_by IS NULL OR approved_by <> requested_by",
                        name="two_people"),
        Index("ix_disbursements_requested", "requested_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("dsb"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(200))      # public: it goes into the ledger
    wish_id: Mapped[str | None] = mapped_column(ForeignKey("wishes.id"))
    payee: Mapped[str | None] = mapped_column(String(100))  # internal only
    note: Mapped[str | None] = mapped_column(String(500))   # internal only
    status: Mapped[str] = mapped_column(String(16), default="pending_approval")
    requested_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    ledger_index: Mapped[int | None] = mapped_column(BigInteger)

    wish: Mapped[Wish | None] = relationship(lazy="joined")


class FundReversal(db.Model):
    """Who reversed which ledger entry, and why (the reason stays internal)."""

    __tablename__ = "fund_reversals"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True,
                                    default=lambda: new_id("rev"))
    ledger_index: Mapped[int] = mapped_column(BigInteger, unique=True)   # the entry reversed
    reversal_index: Mapped[int] = mapped_column(BigInteger, unique=True)  # the new entry
    value_fen: Mapped[int] = mapped_column(BigInteger)       # money moved back (0: none)
    reason: Mapped[str] = mapped_column(String(500))
    requested_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

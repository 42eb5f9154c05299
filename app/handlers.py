"""Who handles each domain event (app.events): the one table, and the handlers that translate
one domain's event into another domain's records.

`SAME_TRANSACTION` handlers run inside the emitting unit of work, at the moment of the emit, so
their rows commit or roll back with the event's cause: the books, the open ledger, the outbox.
`AFTER_COMMIT` handlers run once that unit of work has committed (a message, a job) and open
their own unit of work if they write.

The composition roots (the app factory, which the worker uses too) install this table in the
unit of work with `install()`; no domain registers itself by being imported.

What goes into the open ledger for a claim, a donation or a disbursement is decided here, not in
app.ledger: the ledger only stores entries and proves them. An entry never names a beneficiary,
not even by alias (the wish's town instead), nor an openid, a phone or an address; the donor is
`爱心人士` unless the donor chose to be named (`"anonymous": false`), and then only `陈*`.
"""
from __future__ import annotations

from typing import Callable

from app import uow
from app.auth.models import User
from app.beneficiaries.models import Beneficiary
from app.claims.models import Claim
from app.claims.proofs import delete_photos_of
from app.events import (AFTER_COMMIT, SAME_TRANSACTION, ClaimConfirmed, ConsentWithdrawn,
                        DisbursementApproved, DonationPaid)
from app.extensions import db
from app.fund import books
from app.fund.donations import FUND_NAME, display_for
from app.fund.models import Disbursement, Donation
from app.fund.payments import thank_donor
from app.ledger import entries, log as ledger
from app.types import utcnow
from app.wishes.service import hide_wishes_of_beneficiary

__all__ = ["HANDLERS", "install", "SAME_TRANSACTION", "AFTER_COMMIT"]


# --- ledger entries of other domains' records --------------------------------------------------

def fulfilment_entry(claim: Claim) -> dict:
    wish = claim.wish
    donor = None if claim.anonymous else db.session.get(User, claim.donor_id)
    return entries.entry("in_kind_fulfilment", wish_id=wish.id, town=entries.town_of_wish(wish),
                         item=wish.item or wish.title, value_fen=wish.estimated_value_fen,
                         at=claim.ended_at or utcnow(),
                         donor=entries.donor_display(donor.display_name if donor else None,
                                                     named=not claim.anonymous))


def donation_entry(donation: Donation) -> dict:
    wish = donation.wish
    return entries.entry(
        "money_donation", wish_id=wish.id if wish else None,
        town=entries.town_of_wish(wish),
        item=(wish.item or wish.title) if wish else FUND_NAME, value_fen=donation.amount_fen,
        at=donation.paid_at, donor=display_for(donation))


def disbursement_entry(item: Disbursement) -> dict:
    wish = item.wish
    return entries.entry("disbursement", wish_id=wish.id if wish else None,
                         town=entries.town_of_wish(wish), item=item.purpose,
                         value_fen=item.amount_fen, at=item.decided_at or utcnow(),
                         donor=FUND_NAME)


# --- handlers ----------------------------------------------------------------------------------

def _ledger_fulfilment(event: ClaimConfirmed) -> None:
    claim = db.session.get(Claim, event.claim_id)
    ledger.append("in_kind_fulfilment", fulfilment_entry(claim), "claim", claim.id)


def _book_donation(event: DonationPaid) -> None:
    donation = db.session.get(Donation, event.donation_id)
    books.record_donation(donation.id, donation.amount_fen)


def _ledger_donation(event: DonationPaid) -> None:
    donation = db.session.get(Donation, event.donation_id)
    donation.ledger_index = ledger.append("money_donation", donation_entry(donation), "donation",
                                          donation.id)


def _thank_donor(event: DonationPaid) -> None:
    thank_donor(db.session.get(Donation, event.donation_id))


def _book_disbursement(event: DisbursementApproved) -> None:
    item = db.session.get(Disbursement, event.disbursement_id)
    books.record_disbursement(item.id, item.amount_fen)  # the fund was locked by take_out


def _ledger_disbursement(event: DisbursementApproved) -> None:
    item = db.session.get(Disbursement, event.disbursement_id)
    item.ledger_index = ledger.append("disbursement", disbursement_entry(item), "disbursement",
                                      item.id)


def _hide_wishes(event: ConsentWithdrawn) -> None:
    hide_wishes_of_beneficiary(db.session.get(Beneficiary, event.beneficiary_id),
                               db.session.get(User, event.actor_id))


def _delete_photos(event: ConsentWithdrawn) -> None:
    delete_photos_of(db.session.get(Beneficiary, event.beneficiary_id))


# --- the table ---------------------------------------------------------------------------------
# Handlers of one event run in this order. Locks: the books' and the ledger's come last in
# app.uow.LOCK_ORDER, so a same-transaction handler may take them after the emitter's row locks.

HANDLERS: dict[type, tuple[tuple[str, Callable], ...]] = {
    ClaimConfirmed: (
        (SAME_TRANSACTION, _ledger_fulfilment),       # the open ledger's in-kind entry
    ),
    DonationPaid: (
        (SAME_TRANSACTION, _book_donation),           # the fund's books: cash in
        (SAME_TRANSACTION, _ledger_donation),         # the open ledger's money entry
        (SAME_TRANSACTION, _thank_donor),             # an outbox row; its relay after commit
    ),
    DisbursementApproved: (
        (SAME_TRANSACTION, _book_disbursement),       # the fund's books: cash out
        (SAME_TRANSACTION, _ledger_disbursement),     # the open ledger's payout entry
    ),
    ConsentWithdrawn: (
        (SAME_TRANSACTION, _hide_wishes),             # every wish leaves the public views
        (SAME_TRANSACTION, _delete_photos),           # proof photos: rows now, files on commit
    ),
}


def install() -> None:
    """Give the unit of work this table (called by the app factory)."""
    uow.install_handlers(HANDLERS)

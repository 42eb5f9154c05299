"""Domain events: what happened, as plain data, for other domains to react to.

A use case emits one with `uow.emit(Event(...))`; app.handlers holds the one table saying who
handles each, in the same transaction (the books, the ledger, the outbox) or after the commit.
Events carry IDs, not objects: an after-commit handler reads what was committed.
"""
from __future__ import annotations

from dataclasses import dataclass

# When a handler runs (app.handlers says which for each one).
SAME_TRANSACTION = "same_transaction"
AFTER_COMMIT = "after_commit"


@dataclass(frozen=True)
class ClaimConfirmed:
    """A caseworker confirmed a delivered claim: its wish is fulfilled."""
    claim_id: str


@dataclass(frozen=True)
class DonationPaid:
    """WeChat Pay reported a donation paid and it was settled (once)."""
    donation_id: str


@dataclass(frozen=True)
class DisbursementApproved:
    """A second moderator approved a payout; the fund has been locked and checked."""
    disbursement_id: str


@dataclass(frozen=True)
class ConsentWithdrawn:
    """A beneficiary withdrew consent (PIPL art. 15); the identity is erased after the handlers."""
    beneficiary_id: str
    actor_id: str

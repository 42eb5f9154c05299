"""What goes into the ledger: the contract's entry as canonical JSON, and the hooks that append it.

An entry never names a beneficiary, not even by the public alias: an append-only log cannot
forget a name after consent is withdrawn. It names the wish by its opaque id, its kind, the item
and the amount, the town (9-digit region code) and the donor. Entries written before the alias
left the ledger still carry an `alias` key and verify as they are; nothing is rewritten. No
openid, phone or address either; the donor is `爱心人士` unless the donor chose to be named when
claiming or donating (`"anonymous": false`), and then only the first character of their display
name and `*` (`陈*`).
Importing this module registers the claim-confirmation hook, so a confirmed claim and its entry
commit in one transaction, exactly once.
"""
from __future__ import annotations

import json
from datetime import datetime

from app.auth.models import User
from app.claims.service import on_claim_confirmed
from app.extensions import db
from app.regions import town_of
from app.types import isoformat, utcnow

KINDS = ("in_kind_fulfilment", "money_donation", "disbursement", "reversal")
ANONYMOUS_DONOR = "爱心人士"


def canonical(entry: dict) -> bytes:
    """Sorted keys, no spaces, UTF-8 without escapes: the exact bytes that are hashed."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def _at(value: datetime) -> str:
    """RFC 3339 UTC to the second: what the public sees needs no microseconds."""
    return isoformat(value.replace(microsecond=0))


def donor_display(name: str | None = None, named: bool = False) -> str:
    """`陈*` when a donor chose to be shown (first character only), else `爱心人士`."""
    if named and name:
        return name[0] + "*"
    return ANONYMOUS_DONOR


def town_of_wish(wish) -> str | None:
    """The town of a wish (or None without one): what the public card shows, never finer."""
    return town_of(wish.region_code) if wish is not None else None


def entry(kind: str, *, wish_id: str | None, town: str | None, item: str | None,
          value_fen: int, at: datetime, donor: str = ANONYMOUS_DONOR, **extra) -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown ledger entry kind {kind!r}")
    if "alias" in extra:
        raise ValueError("a ledger entry never names a beneficiary, not even by alias")
    if town is not None and len(town) != 9:
        raise ValueError(f"a ledger entry's town is a 9-digit code, not {town!r}")
    return {"kind": kind, "wish_id": wish_id, "town": town, "item": item,
            "value_fen": value_fen, "at": _at(at), "donor": donor, **extra}


def reversal(of_index: int, of_leaf_hash: bytes, *, wish_id: str | None, town: str | None,
             item: str | None, value_fen: int, at: datetime) -> dict:
    return entry("reversal", wish_id=wish_id, town=town, item=item, value_fen=value_fen, at=at,
                 reverses_index=of_index, reverses_leaf_hash=of_leaf_hash.hex())


def fulfilment(claim) -> dict:
    wish = claim.wish
    donor = None if claim.anonymous else db.session.get(User, claim.donor_id)
    return entry("in_kind_fulfilment", wish_id=wish.id, town=town_of_wish(wish),
                 item=wish.item or wish.title, value_fen=wish.estimated_value_fen,
                 at=claim.ended_at or utcnow(),
                 donor=donor_display(donor.display_name if donor else None,
                                     named=not claim.anonymous))


@on_claim_confirmed
def _claim_confirmed(claim) -> None:
    from app.ledger import log  # log imports this module for `canonical`

    log.append("in_kind_fulfilment", fulfilment(claim), "claim", claim.id)

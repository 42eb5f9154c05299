"""The shape of a ledger entry (the contract's fields) and its canonical JSON.

An entry never names a beneficiary (only the wish's public alias), an openid, a phone or an
address; the donor is `爱心人士` unless the donor chose to be named when claiming or donating
(`"anonymous": false`), and then only the first character of their display name and `*` (`陈*`).
Which records become entries, and when, is decided outside the ledger (app.handlers): the ledger
knows nothing of claims or the fund.
"""
from __future__ import annotations

from datetime import datetime

from app.ledger.canonical import canonical
from app.types import isoformat

KINDS = ("in_kind_fulfilment", "money_donation", "disbursement", "reversal")
ANONYMOUS_DONOR = "爱心人士"
__all__ = ["KINDS", "ANONYMOUS_DONOR", "canonical", "donor_display", "entry", "reversal"]


def _at(value: datetime) -> str:
    """RFC 3339 UTC to the second: what the public sees needs no microseconds."""
    return isoformat(value.replace(microsecond=0))


def donor_display(name: str | None = None, named: bool = False) -> str:
    """`陈*` when a donor chose to be shown (first character only), else `爱心人士`."""
    if named and name:
        return name[0] + "*"
    return ANONYMOUS_DONOR


def entry(kind: str, *, wish_id: str | None, alias: str | None, item: str | None,
          value_fen: int, at: datetime, donor: str = ANONYMOUS_DONOR, **extra) -> dict:
    if kind not in KINDS:
        raise ValueError(f"unknown ledger entry kind {kind!r}")
    return {"kind": kind, "wish_id": wish_id, "alias": alias, "item": item,
            "value_fen": value_fen, "at": _at(at), "donor": donor, **extra}


def reversal(of_index: int, of_leaf_hash: bytes, *, wish_id: str | None, alias: str | None,
             item: str | None, value_fen: int, at: datetime) -> dict:
    return entry("reversal", wish_id=wish_id, alias=alias, item=item, value_fen=value_fen, at=at,
                 reverses_index=of_index, reverses_leaf_hash=of_leaf_hash.hex())

"""Public totals for `GET /stats`: wishes, claims, donors and value, overall and by kind and level.

Three aggregate queries (GROUP BYs over wishes, claims and the fund's postings), whatever the
size of the tables.

Hidden wishes (the beneficiary withdrew consent) are counted like any other: the response holds
only numbers, never an id, a title or a person, so a count cannot point at anyone, and leaving them
out would make the totals jump backwards when consent is withdrawn.

Money: `money_donated_fen` and `money_disbursed_fen` come from the 505 fund's double-entry books
(app.fund.books), net of reversals: a refunded donation or a reversed disbursement counts no more.

The result is the same for everyone, so it is cached per process for STATS_CACHE_SECONDS
(default 5): a burst of page views costs one pair of queries.
"""
from __future__ import annotations

import threading
import time

from sqlalchemy import case, distinct, func, select

from app.beneficiaries.models import LEVELS
from app.claims.models import Claim
from app.extensions import db
from app.fund import books
from app.settings import environment, settings
from app.wishes.models import KINDS, Wish

DEFAULT_CACHE_SECONDS = 5.0
_WISH_FIELDS = ("wishes_published", "wishes_open", "wishes_fulfilled", "value_fulfilled_fen")

_lock = threading.Lock()
_cache: dict[int, tuple[float, dict]] = {}  # keyed by app, so two apps in one process never mix


def public_stats() -> dict:
    """The public totals, from the cache while it is fresh."""
    ttl = float(settings().get("STATS_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))
    key = id(environment())
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
        if ttl > 0 and hit is not None and now - hit[0] < ttl:
            return hit[1]
    result = compute_stats()
    with _lock:
        _cache[key] = (now, result)
    return result


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def compute_stats() -> dict:
    """Read the totals from the database (no cache)."""
    rows = db.session.execute(
        select(
            Wish.kind, Wish.level,
            _count_if(Wish.published_at.is_not(None)),
            _count_if(Wish.status == "open"),
            _count_if(Wish.status == "fulfilled"),
            func.coalesce(func.sum(case((Wish.status == "fulfilled", Wish.estimated_value_fen),
                                        else_=0)), 0),
        ).group_by(Wish.kind, Wish.level)
    ).all()
    expired, donors = db.session.execute(
        select(_count_if(Claim.status == "expired"), func.count(distinct(Claim.donor_id)))
    ).one()

    money = books.totals()
    totals = dict.fromkeys(_WISH_FIELDS, 0)
    by_kind = {k: dict.fromkeys(_WISH_FIELDS, 0) for k in KINDS}
    by_level = {lv: dict.fromkeys(_WISH_FIELDS, 0) for lv in LEVELS}
    for kind, level, *values in rows:
        for name, value in zip(_WISH_FIELDS, values):
            value = int(value)
            totals[name] += value
            by_kind.setdefault(kind, dict.fromkeys(_WISH_FIELDS, 0))[name] += value
            by_level.setdefault(level, dict.fromkeys(_WISH_FIELDS, 0))[name] += value
    return {
        **totals,
        "claims_expired": int(expired),
        "donors": int(donors),
        "money_donated_fen": money["money_donated_fen"],
        "money_disbursed_fen": money["money_disbursed_fen"],
        "by_kind": by_kind,
        "by_level": by_level,
    }

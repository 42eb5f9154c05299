"""The series behind the public charts (`/stats`): numbers only, never an id or a person.

- wishes fulfilled per month (the last 12 months, China Standard Time),
- the share of claims delivered within their deadline, per month the claim was made,
- the median hours from publication to claim and to fulfilment,
- open wishes by town and urgency level.

Four aggregate queries whatever the size of the tables. Months and medians are computed in SQL on
PostgreSQL; on SQLite (development without a server) in Python, which is fine at that size.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import case, false, func, select

from app.beneficiaries.models import LEVELS
from app.claims.models import Claim
from app.extensions import db
from app.wishes.models import Wish

CST = timezone(timedelta(hours=8))  # China Standard Time: no daylight saving
MONTHS = 12


@dataclass
class Series:
    fulfilled_by_month: list[tuple[str, int]] = field(default_factory=list)
    # month -> (delivered in time, claims whose deadline outcome is known)
    sla_by_month: list[tuple[str, int, int]] = field(default_factory=list)
    median_hours_to_claim: float | None = None
    median_hours_to_fulfil: float | None = None
    # town code (9 digits) -> {level: open wishes}
    open_by_town: dict[str, dict[str, int]] = field(default_factory=dict)


def _months(now: datetime) -> list[str]:
    year, month = now.astimezone(CST).year, now.astimezone(CST).month
    out = []
    for _ in range(MONTHS):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def _month_of(column, postgres: bool):
    if postgres:
        return func.to_char(func.timezone("Asia/Shanghai", column), "YYYY-MM")
    return func.strftime("%Y-%m", func.datetime(column, "+8 hours"))


def _hours(later, earlier, postgres: bool):
    if postgres:
        return func.extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def _median(values):
    return func.percentile_cont(0.5).within_group(values)


def compute_series(now: datetime | None = None) -> Series:
    now = now or datetime.now(timezone.utc)
    months = _months(now)
    since = now - timedelta(days=31 * MONTHS)
    postgres = db.session.get_bind().dialect.name == "postgresql"
    out = Series()

    month = _month_of(Wish.fulfilled_at, postgres)
    fulfilled = dict(db.session.execute(
        select(month, func.count()).where(Wish.status == "fulfilled", Wish.fulfilled_at >= since)
        .group_by(month)).all())
    out.fulfilled_by_month = [(m, int(fulfilled.get(m, 0))) for m in months]

    # A claim's deadline outcome is known once it was delivered or it expired.
    month = _month_of(Claim.claimed_at, postgres)
    in_time = case((Claim.delivered_at <= Claim.due_at, 1), else_=0)
    sla = {m: (int(ok), int(n)) for m, ok, n in db.session.execute(
        select(month, func.sum(in_time), func.count())
        .where(Claim.claimed_at >= since,
               (Claim.delivered_at.is_not(None)) | (Claim.status == "expired"))
        .group_by(month)).all()}
    out.sla_by_month = [(m, *sla.get(m, (0, 0))) for m in months]

    first_claim = (select(Claim.wish_id, func.min(Claim.claimed_at).label("claimed_at"))
                   .group_by(Claim.wish_id).subquery())
    to_claim = _hours(first_claim.c.claimed_at, Wish.published_at, postgres)
    to_fulfil = _hours(Wish.fulfilled_at, Wish.published_at, postgres)
    if postgres:
        out.median_hours_to_claim = db.session.execute(
            select(_median(to_claim)).join(first_claim, first_claim.c.wish_id == Wish.id)
            .where(Wish.published_at.is_not(None))).scalar()
        out.median_hours_to_fulfil = db.session.execute(
            select(_median(to_fulfil)).where(Wish.status == "fulfilled",
                                                   Wish.published_at.is_not(None))).scalar()
    else:
        claims = db.session.execute(
            select(to_claim).join(first_claim, first_claim.c.wish_id == Wish.id)
            .where(Wish.published_at.is_not(None))).scalars().all()
        fulfils = db.session.execute(
            select(to_fulfil).where(Wish.status == "fulfilled",
                                    Wish.published_at.is_not(None))).scalars().all()
        out.median_hours_to_claim = statistics.median(claims) if claims else None
        out.median_hours_to_fulfil = statistics.median(fulfils) if fulfils else None
    for name in ("median_hours_to_claim", "median_hours_to_fulfil"):
        value = getattr(out, name)
        setattr(out, name, None if value is None else round(float(value), 1))

    town = func.substr(Wish.region_code, 1, 9)
    for code, level, count in db.session.execute(
            select(town, Wish.level, func.count())
            .where(Wish.status == "open", Wish.hidden == false())
            .group_by(town, Wish.level).order_by(town)).all():
        out.open_by_town.setdefault(code, dict.fromkeys(LEVELS, 0))[level] = int(count)
    return out

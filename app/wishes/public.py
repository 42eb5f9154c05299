"""What the public may see of a wish: an allowlist card, an alias, an age band, a town."""
from __future__ import annotations

from datetime import datetime, timezone


def age_band(birth_year: int | None, year: int | None = None) -> str | None:
    if birth_year is None:
        return None
    age = (year or datetime.now(timezone.utc).year) - birth_year
    if age < 6:
        return "0-5岁"
    if age < 12:
        return "6-11岁"
    if age < 18:
        return "12-17岁"
    if age >= 80:
        return "80岁以上"
    low = age // 10 * 10
    return f"{low}-{low + 9}岁"

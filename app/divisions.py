"""Names of the statistical divisions the service works in (泉港区, county code 350505).

One table for every place a page names: the county, its seven towns and streets (乡镇/街道), and
the villages (村/社区) the demo seed uses. Codes are the National Bureau of Statistics' 6-, 9- and
12-digit division codes. A code not in the table is shown by the nearest enclosing division that
is, so a page never prints a bare number where a name is known.
"""
from __future__ import annotations

COUNTY = "350505"

# code -> Chinese name
NAMES: dict[str, str] = {
    "350505": "泉港区",
    # towns and streets
    "350505001": "山腰街道",
    "350505100": "南埔镇",
    "350505101": "界山镇",
    "350505102": "后龙镇",
    "350505103": "峰尾镇",
    "350505104": "前黄镇",
    "350505106": "涂岭镇",
    # villages
    "350505106203": "溪头村",
    "350505106211": "小坝村",
}

TOWNS: tuple[str, ...] = tuple(code for code in NAMES if len(code) == 9)


def name_of(code: str | None) -> str:
    """The name of a division; for an unknown code, its nearest known parent's name and the
    code, e.g. `泉港区（350505105）`; an empty string for no code."""
    if not code:
        return ""
    if code in NAMES:
        return NAMES[code]
    for cut in (9, 6):
        if len(code) > cut and code[:cut] in NAMES:
            return f"{NAMES[code[:cut]]}（{code}）"
    return code


def town_name(code: str | None) -> str:
    """The town (9 digits) a code lies in, by name: what the public may see of a place."""
    return name_of(code[:9]) if code else ""


def full_name(code: str | None) -> str:
    """`涂岭镇溪头村`: the town and the village, for a 12-digit code both of which are known."""
    if code and len(code) == 12 and code in NAMES and code[:9] in NAMES:
        return NAMES[code[:9]] + NAMES[code]
    return name_of(code)

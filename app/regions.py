"""Chinese statistical division codes: 6 digits county, 9 town/street, 12 village/community."""
from __future__ import annotations

import re
from typing import Iterable

from app.errors import ValidationFailed

# [0-9], not \d: \d also matches full-width and other Unicode digits. (?!\n): Python's $ also
# matches before a trailing newline. The pattern stays valid ECMA-262 for the OpenAPI document.
REGION_RE = re.compile(r"^(?:[0-9]{6}|[0-9]{9}|[0-9]{12})(?!\n)$")


def is_region_code(value: str) -> bool:
    return bool(REGION_RE.match(value or ""))


def validate_region_code(value: str, field: str = "region_code") -> str:
    if not is_region_code(value):
        raise ValidationFailed(detail="区划代码必须是 6、9 或 12 位数字",
                               errors={field: ["区划代码必须是 6、9 或 12 位数字"]})
    return value


def covers(prefixes: Iterable[str] | None, region_code: str | None) -> bool:
    """The scope rule: a scope of region prefixes covers a region inside any of them (a county
    covers its towns and villages). None is every region; an empty scope covers none."""
    if region_code is None:
        return False
    if prefixes is None:
        return True
    return any(region_code.startswith(prefix) for prefix in prefixes)


def town_of(region_code: str) -> str:
    """What the public may see of a place: cut to the town (9 digits)."""
    return region_code[:9]

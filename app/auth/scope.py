"""Region scope: which regions a staff member may see (a rule of the domain; the HTTP access
policy, miniprogram_api/policy.py, decides who may call which route)."""
from __future__ import annotations

from typing import Iterable

from app.auth.models import ADMIN, MODERATOR, User
from app.regions import covers


def in_scope(user: User | None, region_code: str | None) -> bool:
    """Moderators and admins see every region; a caseworker sees their region prefixes."""
    return user is not None and covers(scope_prefixes(user), region_code)


def scope_prefixes(user: User) -> Iterable[str] | None:
    """None means every region."""
    if user.role in (MODERATOR, ADMIN):
        return None
    return user.region_codes if user.role == "caseworker" else []

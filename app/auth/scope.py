"""Region scope: which regions a staff member may see (a rule of the domain; the HTTP access
policy, miniprogram_api/policy.py, decides who may call which route)."""
from __future__ import annotations

from typing import Iterable

from app.auth.models import ADMIN, MODERATOR, User


def in_scope(user: User | None, region_code: str | None) -> bool:
    """Moderators and admins see every region; a caseworker sees their region prefixes."""
    if user is None or region_code is None:
        return False
    if user.role in (MODERATOR, ADMIN):
        return True
    if user.role == "caseworker":
        return any(region_code.startswith(prefix) for prefix in user.region_codes)
    return False


def scope_prefixes(user: User) -> Iterable[str] | None:
    """None means every region."""
    if user.role in (MODERATOR, ADMIN):
        return None
    return user.region_codes if user.role == "caseworker" else []

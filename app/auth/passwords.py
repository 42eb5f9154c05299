"""Staff password hashing: Argon2id, by default argon2-cffi's RFC 9106 low-memory profile.

The profile is a setting (`PASSWORD_HASH_PROFILE`) that callers pass in. Production may only use
an RFC 9106 profile; the test suite uses argon2-cffi's CHEAPEST profile, which is still real
Argon2id (every hash and every check runs), only with parameters too weak for real passwords
and ~100× cheaper. A hash records its own parameters, so a stored hash verifies whatever the
current profile, and `needs_rehash` upgrades it at the next successful login.
"""
from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 10

PROFILES = {
    "RFC_9106_LOW_MEMORY": profiles.RFC_9106_LOW_MEMORY,
    "RFC_9106_HIGH_MEMORY": profiles.RFC_9106_HIGH_MEMORY,
    "CHEAPEST": profiles.CHEAPEST,
}
PRODUCTION_PROFILES = frozenset({"RFC_9106_LOW_MEMORY", "RFC_9106_HIGH_MEMORY"})
DEFAULT_PROFILE = "RFC_9106_LOW_MEMORY"


@lru_cache(maxsize=None)
def _hasher(profile: str) -> tuple[PasswordHasher, str]:
    """The hasher for a profile and a dummy hash made with it, verified for unknown usernames so
    that timing does not reveal which names exist (the dummy costs what a real check costs)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown password hash profile {profile!r}; known: {', '.join(PROFILES)}")
    hasher = PasswordHasher.from_parameters(PROFILES[profile])
    return hasher, hasher.hash("not-a-real-password")


def hash_password(password: str, profile: str = DEFAULT_PROFILE) -> str:
    return _hasher(profile)[0].hash(password)


def verify_password(stored_hash: str | None, password: str,
                    profile: str = DEFAULT_PROFILE) -> bool:
    hasher, dummy = _hasher(profile)
    try:
        return hasher.verify(stored_hash or dummy, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, profile: str = DEFAULT_PROFILE) -> bool:
    return _hasher(profile)[0].check_needs_rehash(stored_hash)

"""Argon2id profiles: what a stored hash records, and the upgrade at the next login."""
from __future__ import annotations

from argon2 import extract_parameters, profiles

from app.auth.passwords import hash_password, needs_rehash, verify_password


def test_default_profile_is_rfc_9106_low_memory_argon2id():
    stored = hash_password("a long enough password")

    assert stored.startswith("$argon2id$")
    params = extract_parameters(stored)
    assert (params.time_cost, params.memory_cost, params.parallelism) == (
        profiles.RFC_9106_LOW_MEMORY.time_cost, profiles.RFC_9106_LOW_MEMORY.memory_cost,
        profiles.RFC_9106_LOW_MEMORY.parallelism)


def test_cheap_hash_verifies_under_the_default_profile_and_asks_to_be_upgraded():
    stored = hash_password("a long enough password", "CHEAPEST")

    assert verify_password(stored, "a long enough password")
    assert not verify_password(stored, "a wrong password!!")
    assert needs_rehash(stored)
    assert not needs_rehash(stored, "CHEAPEST")


def test_unknown_username_is_checked_against_a_dummy_and_fails():
    assert not verify_password(None, "a long enough password", "CHEAPEST")

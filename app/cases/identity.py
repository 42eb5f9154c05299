"""The subject's identity: the keyed hash of the ID number signals, applications and
beneficiaries are matched on, its check, and the encryption contexts of the identity at rest.

The hash itself lives in app.pii (`id_number_hash`) because beneficiaries compute it too and
app.beneficiaries must not import this package (no import cycles between domains).
"""
from __future__ import annotations

from app import pii
from app.beneficiaries.service import id_number_is_valid

__all__ = ["id_hash", "id_hasher", "id_number_is_valid", "normalize_id_number", "seal", "unseal"]


def normalize_id_number(value: str) -> str:
    return value.strip().upper()


def id_hash(id_number: str) -> str:
    """HMAC-SHA256 of the normalized ID number under the server's identity index secret."""
    return pii.id_number_hash(normalize_id_number(id_number))


def id_hasher():
    """`id_hash` for a batch: the key is worked out once (app.pii.id_number_hasher)."""
    return pii.id_number_hasher()


def seal(value: str | None, table: str, field: str, row_id: str) -> bytes | None:
    return pii.encrypt(value, f"{table}.{field}.{row_id}")


def unseal(blob: bytes | None, table: str, field: str, row_id: str) -> str | None:
    return pii.decrypt(blob, f"{table}.{field}.{row_id}")

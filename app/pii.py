"""Personal data at rest: AES-256-GCM with a key id, and the masks shown to staff.

Ciphertext layout: b"\x01" | key id (4 bytes) | nonce (12 bytes) | ciphertext+tag. The key id is
the first 4 bytes of SHA-256 of the key, so rows written under an old key stay readable while
DATA_ENCRYPTION_OLD_KEYS lists it, and `flask --app wsgi pii reencrypt`
(app.beneficiaries.service.reencrypt_identities) moves them to the current key. The associated
data binds a ciphertext to its table, column and row, so one row's value cannot be pasted into
another's.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.settings import settings

VERSION = b"\x01"


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:4]


def _keys() -> list[bytes]:
    return settings()["DATA_ENCRYPTION_KEYS"]


def encrypt(plaintext: str | None, context: str) -> bytes | None:
    if plaintext is None:
        return None
    key = _keys()[0]
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
    return VERSION + key_id(key) + nonce + sealed


def decrypt(blob: bytes | None, context: str) -> str | None:
    if blob is None:
        return None
    blob = bytes(blob)
    if blob[:1] != VERSION:
        raise ValueError("unknown ciphertext version")
    kid, nonce, sealed = blob[1:5], blob[5:17], blob[17:]
    for key in _keys():
        if hmac.compare_digest(key_id(key), kid):
            try:
                return AESGCM(key).decrypt(nonce, sealed, context.encode()).decode()
            except InvalidTag:
                raise ValueError("ciphertext failed authentication") from None
    raise ValueError("ciphertext written under a key that is no longer configured")


def is_current_key(blob: bytes | None) -> bool:
    return blob is None or bytes(blob)[1:5] == key_id(_keys()[0])


def blind_index(value: str, purpose: str) -> str:
    """A keyed hash for equality look-ups (e.g. duplicate ID numbers) without storing clear text."""
    mac = hmac.new(_keys()[0], f"{purpose}:{value}".encode(), hashlib.sha256)
    return mac.hexdigest()


def id_number_hash(id_number: str) -> str:
    """The keyed hash every table matches ID numbers on (HMAC-SHA256, 64 hex characters).

    Its secret is IDENTITY_INDEX_KEY, or one derived from SECRET_KEY when that is unset; unlike
    the data encryption keys it cannot rotate without recomputing every stored hash, so it does
    not follow them. Signals, applications and beneficiaries meet on it (app.cases.identity)."""
    return id_number_hasher()(id_number)


def id_number_hasher() -> Callable[[str], str]:
    """`id_number_hash` with its key worked out once: for hashing a batch of ID numbers."""
    secret = settings().get("IDENTITY_INDEX_KEY")
    key = secret.encode() if secret else hmac.new(
        settings()["SECRET_KEY"].encode(), b"weixinyuan.id_number_index.v1", hashlib.sha256).digest()
    keyed = hmac.new(key, digestmod=hashlib.sha256)

    def hash_one(id_number: str) -> str:
        mac = keyed.copy()
        mac.update(id_number.strip().upper().encode())
        return mac.hexdigest()
    return hash_one


# --- masks -----------------------------------------------------------------------------------

def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*"  # one star whatever the length: the length says something too


def mask_id_number(value: str | None) -> str | None:
    if not value:
        return value
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    if not value:
        return value
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_address(value: str | None) -> str | None:
    if not value:
        return value
    keep = min(6, max(len(value) // 3, 1))
    return value[:keep] + "****"

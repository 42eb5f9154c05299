"""The ledger's Ed25519 signing key, in the file format of golang.org/x/mod/sumdb/note.

File text (one line, then a newline): `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || 32-byte seed)>`,
where the key id is the C2SP one (see `note.key_id`). The same text is accepted by Go's
`note.NewSigner`, so the key can be used by standard transparency-log tools. The matching public
verifier key is `<name>+<hex key id>+<base64(0x01 || public key)>`.
"""
from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from app.ledger import note

PREFIX = "PRIVATE+KEY+"


class KeyFileError(ValueError):
    pass


def signer_key(name: str, private_key: Ed25519PrivateKey) -> str:
    """The `PRIVATE+KEY+...` text for a key (no trailing newline)."""
    if not note.valid_name(name):
        raise KeyFileError(f"invalid key name {name!r}: must be non-empty, without '+' or spaces")
    seed = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    kid = note.key_id(name, private_key.public_key())
    return f"{PREFIX}{name}+{kid.hex()}+{base64.b64encode(bytes([note.ALG_ED25519]) + seed).decode()}"


def parse_signer_key(text: str) -> tuple[str, Ed25519PrivateKey]:
    """`PRIVATE+KEY+name+hexid+base64` → (name, private key); the id must match the key."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise KeyFileError("not a signing key: expected PRIVATE+KEY+<name>+<id>+<key>")
    parts = text[len(PREFIX):].split("+", 2)   # base64 may itself contain "+"
    if len(parts) != 3:
        raise KeyFileError("signing key must have a name, a key id and a key")
    name, kid_hex, blob_b64 = parts
    try:
        blob = base64.b64decode(blob_b64, validate=True)
        kid = bytes.fromhex(kid_hex)
    except ValueError as exc:
        raise KeyFileError("signing key id or key is not valid hex/base64") from exc
    if not note.valid_name(name) or len(kid) != 4:
        raise KeyFileError("signing key has an invalid name or key id")
    if len(blob) != 33 or blob[0] != note.ALG_ED25519:
        raise KeyFileError("signing key is not an Ed25519 key (0x01 || 32-byte seed)")
    private_key = Ed25519PrivateKey.from_private_bytes(blob[1:])
    if note.key_id(name, private_key.public_key()) != kid:
        raise KeyFileError("signing key id does not match its name and key")
    return name, private_key


def generate(name: str) -> tuple[str, str]:
    """A fresh key → (file text, public verifier key)."""
    private_key = Ed25519PrivateKey.generate()
    return signer_key(name, private_key) + "\n", note.verifier_key(name, private_key.public_key())


def load_signer(path: str) -> tuple[str, Ed25519PrivateKey]:
    with open(path, encoding="utf-8") as fh:
        return parse_signer_key(fh.read())


def keygen(name: str, out_path: str) -> str:
    """Write a new key file readable by its owner only; never overwrite one. Returns the vkey."""
    text, vkey = generate(name)
    # O_EXCL: replacing a log's key would orphan every checkpoint signed with the old one.
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return vkey

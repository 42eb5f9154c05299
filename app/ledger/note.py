"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519, and tlog checkpoints
(https://c2sp.org/tlog-checkpoint).

A note is a UTF-8 body ending in a newline, a blank line, then signature lines
`— <key name> <base64(4-byte key id || signature)>` (U+2014 EM DASH, space). The Ed25519 key id is
SHA-256(name || 0x0A || 0x01 || public key)[:4]; a verifier key is `<name>+<hex id>+<base64(0x01 || key)>`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "
MAX_SIGNATURES = 100      # as golang.org/x/mod/sumdb/note: a bound on work, not a spec number


class NoteError(ValueError):
    """A note, key or checkpoint is malformed, or a signature does not verify."""


class MalformedNote(NoteError):
    pass


class UnknownKey(NoteError):
    """The note carries no signature by the expected key."""


class BadSignature(NoteError):
    pass


def valid_name(name: str) -> bool:
    """C2SP key names: non-empty, no '+', no whitespace."""
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def _check_name(name: str) -> None:
    if not valid_name(name):
        raise NoteError(f"invalid key name {name!r}: must be non-empty, without '+' or spaces")


def public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(name: str, public_key: Ed25519PublicKey | bytes) -> bytes:
    raw = public_key if isinstance(public_key, bytes) else public_bytes(public_key)
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + raw).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    _check_name(name)
    raw = public_bytes(public_key)
    return f"{name}+{key_id(name, raw).hex()}+{base64.b64encode(bytes([ALG_ED25519]) + raw).decode()}"


def _b64(text: str, error: type[NoteError] = NoteError) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise error(f"invalid base64 {text!r}") from exc


def parse_verifier_key(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """`name+hexid+base64(0x01||key)` → (name, key id, public key); the id must match the key."""
    parts = vkey.strip().split("+", 2)   # base64 may itself contain "+"
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise NoteError("verifier key must be <name>+<8 hex digits>+<base64 key>")
    name, kid, blob = parts[0], bytes.fromhex(parts[1]), _b64(parts[2])
    _check_name(name)
    if len(blob) != 33 or blob[0] != ALG_ED25519:
        raise NoteError("verifier key is not an Ed25519 key (0x01 || 32 bytes)")
    if key_id(name, blob[1:]) != kid:
        raise NoteError("verifier key id does not match its name and key")
    return name, kid, Ed25519PublicKey.from_public_bytes(blob[1:])


def _check_body(body: str) -> None:
    if not body.endswith("\n"):
        raise MalformedNote("note body must end with a newline")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in body):
        raise MalformedNote("note body contains a control character")


def signature_line(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    _check_body(body)
    _check_name(name)
    kid = key_id(name, private_key.public_key())
    sig = private_key.sign(body.encode("utf-8"))
    return f"{SIG_PREFIX}{name} {base64.b64encode(kid + sig).decode()}\n"


def sign_note(body: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note: body, a blank line, one signature line."""
    return body + "\n" + signature_line(body, name, private_key)


def split_note(note_text: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """note → (body, [(name, key id, signature), ...]); checks the shape only, not signatures."""
    if not note_text.endswith("\n"):
        raise MalformedNote("note must end with a newline")
    cut = note_text.rfind("\n\n")
    if cut < 0:
        raise MalformedNote("note has no blank line before its signatures")
    body, block = note_text[:cut + 1], note_text[cut + 2:]
    _check_body(body)
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise MalformedNote("note has no signature lines")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote("note has too many signatures")
    sigs = []
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise MalformedNote(f"not a signature line: {line!r}")
        name, sep, b64 = line[len(SIG_PREFIX):].partition(" ")
        if not sep or not valid_name(name) or " " in b64:
            raise MalformedNote(f"malformed signature line: {line!r}")
        raw = _b64(b64, MalformedNote)
        if len(raw) < 5:
            raise MalformedNote(f"signature too short in line: {line!r}")
        sigs.append((name, raw[:4], raw[4:]))
    return body, sigs


def verify_note(note_text: str, vkey: str) -> str:
    """Return the body if the note carries a valid signature by `vkey`; otherwise raise NoteError.

    Signatures by other keys are ignored, as C2SP asks; a signature by this key that fails is an error.
    """
    name, kid, public_key = parse_verifier_key(vkey)
    body, sigs = split_note(note_text)
    mine = [sig for n, k, sig in sigs if n == name and k == kid]
    if not mine:
        if any(k == kid for _, k, _ in sigs):
            raise UnknownKey(f"signature with key id {kid.hex()} names another key, not {name!r}")
        raise UnknownKey(f"note has no signature by key {name}+{kid.hex()}")
    for sig in mine:
        try:
            public_key.verify(sig, body.encode("utf-8"))
        except InvalidSignature as exc:
            raise BadSignature(f"signature by {name} does not verify") from exc
    return body


# ---- tlog-checkpoint -----------------------------------------------------------------------------

def checkpoint_body(origin: str, size: int, root: bytes, extensions: tuple[str, ...] = ()) -> str:
    if not origin or "\n" in origin or size < 0 or len(root) != 32:
        raise NoteError("checkpoint needs an origin line, a size >= 0 and a 32-byte root")
    lines = [origin, str(size), base64.b64encode(root).decode(), *extensions]
    return "\n".join(lines) + "\n"


def parse_checkpoint(body: str) -> tuple[str, int, bytes]:
    """Checkpoint body → (origin, size, root hash). Extension lines are allowed and ignored."""
    _check_body(body)
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedNote("checkpoint needs origin, size and root hash lines")
    origin, size_text, root_text = lines[:3]
    if not origin:
        raise MalformedNote("checkpoint origin is empty")
    if not re.fullmatch(r"0|[1-9][0-9]*", size_text):
        raise MalformedNote(f"checkpoint size is not a decimal number: {size_text!r}")
    root = _b64(root_text, MalformedNote)
    if len(root) != 32:
        raise MalformedNote("checkpoint root hash is not 32 bytes")
    if any(not line for line in lines[3:]):
        raise MalformedNote("checkpoint has an empty extension line")
    return origin, int(size_text), root

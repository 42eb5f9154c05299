"""C2SP signed notes, tlog checkpoints and the signing key file: published vectors and round trips."""
from __future__ import annotations

import base64
import os
import stat

import pytest

from app.ledger import keys, merkle, note
from tests.ledger.test_merkle_vectors import VECTORS

NOTE_VECTORS = VECTORS["signed_note_vectors"]


def full_note(v) -> str:
    return v["note_text"] + "\n" + v["signature_line"] + "\n"


@pytest.mark.parametrize("v", NOTE_VECTORS, ids=lambda v: v["name"])
def test_published_signed_note_verifies_as_stated(v):
    if v["expect_valid"]:
        assert note.verify_note(full_note(v), v["vkey"]) == v["note_text"]
    else:
        with pytest.raises(note.NoteError):
            note.verify_note(full_note(v), v["vkey"])


@pytest.mark.parametrize("v", NOTE_VECTORS, ids=lambda v: v["name"])
def test_published_signed_note_with_changed_body_is_refused(v):
    tampered = full_note(v).replace(v["note_text"], v["note_text"][:-2] + "X\n", 1)
    with pytest.raises(note.BadSignature):
        note.verify_note(tampered, v["vkey"])


def test_go_signing_key_reproduces_the_published_signature_byte_for_byte():
    v = next(v for v in NOTE_VECTORS if "skey" in v)
    name, private_key = keys.parse_signer_key(v["skey"])
    assert note.verifier_key(name, private_key.public_key()) == v["vkey"]
    assert note.sign_note(v["note_text"], name, private_key) == full_note(v)
    assert keys.signer_key(name, private_key) == v["skey"]


def test_real_go_checksum_database_checkpoint_parses():
    v = next(v for v in NOTE_VECTORS if "checkpoint" in v)
    origin, size, root = note.parse_checkpoint(note.verify_note(full_note(v), v["vkey"]))
    cp = v["checkpoint"]
    assert (origin, size, base64.b64encode(root).decode()) == (cp["origin"], cp["tree_size"],
                                                                cp["root_hash_b64"])
    assert note.checkpoint_body(origin, size, root) == v["note_text"]


@pytest.fixture
def signer():
    name = "ledger.example.org/505"
    private_key = keys.parse_signer_key(keys.generate(name)[0])[1]
    return name, private_key, note.verifier_key(name, private_key.public_key())


def test_signed_checkpoint_round_trips(signer):
    name, private_key, vkey = signer
    root = merkle.root([merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")])
    body = note.checkpoint_body("ledger.example.org/505", 2, root)
    signed = note.sign_note(body, name, private_key)
    assert signed.splitlines()[-1].startswith("\u2014 ledger.example.org/505 ")
    assert note.parse_checkpoint(note.verify_note(signed, vkey)) == ("ledger.example.org/505", 2, root)


def test_signatures_by_other_keys_are_ignored(signer):
    name, private_key, vkey = signer
    other_name, other_key = "witness.example", keys.parse_signer_key(keys.generate("witness.example")[0])[1]
    body = "hello\n"
    cosigned = note.sign_note(body, other_name, other_key) + note.signature_line(body, name, private_key)
    assert note.verify_note(cosigned, vkey) == body


def test_note_signed_by_another_key_is_unknown(signer):
    name, private_key, _ = signer
    v = NOTE_VECTORS[0]
    with pytest.raises(note.UnknownKey, match="no signature by key"):
        note.verify_note(note.sign_note("hello\n", name, private_key), v["vkey"])


def test_signature_under_another_name_is_a_name_mismatch(signer):
    name, private_key, vkey = signer
    signed = note.sign_note("hello\n", name, private_key).replace(f"\u2014 {name} ", "\u2014 someone.else ")
    with pytest.raises(note.UnknownKey, match="names another key"):
        note.verify_note(signed, vkey)


def test_forged_signature_with_right_key_id_is_refused(signer):
    name, private_key, vkey = signer
    kid = note.key_id(name, private_key.public_key())
    forged = "hello\n\n\u2014 " + name + " " + base64.b64encode(kid + bytes(64)).decode() + "\n"
    with pytest.raises(note.BadSignature):
        note.verify_note(forged, vkey)


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1],                                  # no final newline
    lambda t: t.replace("\n\n", "\n", 1),              # no blank line before the signatures
    lambda t: t.replace("\u2014 ", "- ", 1),           # ASCII dash instead of the em dash
    lambda t: t.replace("hello", "hel\rlo", 1),        # control character in the body
    lambda t: t[:-3] + "!!\n",                         # signature is not base64
    lambda t: "hello\n\n",                             # no signature lines at all
], ids=["no-final-newline", "no-blank-line", "ascii-dash", "control-char", "bad-base64", "unsigned"])
def test_malformed_note_is_refused(signer, mangle):
    name, private_key, vkey = signer
    with pytest.raises(note.MalformedNote):
        note.verify_note(mangle(note.sign_note("hello\n", name, private_key)), vkey)


@pytest.mark.parametrize("vkey", [
    "example.com/foo+530d903a",                                            # no key
    "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong id
    "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong name
    "example.com/foo+530d903a+AnkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # not Ed25519
])
def test_bad_verifier_key_is_refused(vkey):
    with pytest.raises(note.NoteError):
        note.parse_verifier_key(vkey)


@pytest.mark.parametrize("body", [
    "origin\n12\n", "\n12\n" + "A" * 43 + "=\n", "o\n012\n" + "A" * 43 + "=\n",
    "o\n-1\n" + "A" * 43 + "=\n", "o\n1\nAAAA\n", "o\n1\n" + "A" * 43 + "=\n\n",
], ids=["no-root", "empty-origin", "leading-zero", "negative", "short-root", "empty-extension"])
def test_malformed_checkpoint_is_refused(body):
    with pytest.raises(note.NoteError):
        note.parse_checkpoint(body)


def test_checkpoint_extension_lines_are_allowed():
    body = note.checkpoint_body("o", 1, bytes(32), ("— timestamp 1",))
    assert note.parse_checkpoint(body) == ("o", 1, bytes(32))


# ---- key files ----------------------------------------------------------------------------------

def test_generated_key_file_loads_and_signs_for_its_vkey(tmp_path):
    vkey = keys.keygen("ledger.example.org/505", str(tmp_path / "ledger.key"))
    assert stat.S_IMODE(os.stat(tmp_path / "ledger.key").st_mode) == 0o600
    text = (tmp_path / "ledger.key").read_text()
    assert text.startswith("PRIVATE+KEY+ledger.example.org/505+") and text.endswith("\n")
    name, private_key = keys.load_signer(str(tmp_path / "ledger.key"))
    assert name == "ledger.example.org/505"
    assert note.verify_note(note.sign_note("x\n", name, private_key), vkey) == "x\n"
    assert note.parse_verifier_key(vkey)[0] == name


def test_keygen_refuses_to_overwrite_an_existing_key(tmp_path):
    path = tmp_path / "ledger.key"
    keys.keygen("a", str(path))
    before = path.read_text()
    with pytest.raises(FileExistsError):
        keys.keygen("a", str(path))
    assert path.read_text() == before


@pytest.mark.parametrize("name", ["", "has space", "a+b"])
def test_key_name_must_be_a_valid_note_name(name):
    with pytest.raises(ValueError):
        keys.generate(name)


def test_key_file_with_wrong_key_id_is_refused():
    text, _ = keys.generate("a")
    kid, blob = text.strip().removeprefix("PRIVATE+KEY+a+").split("+", 1)   # base64 may hold "+"
    wrong = f"PRIVATE+KEY+a+{'0' * 8 if kid != '0' * 8 else '1' * 8}+{blob}"
    keys.parse_signer_key(f"PRIVATE+KEY+a+{kid}+{blob}")          # the untouched key loads
    with pytest.raises(keys.KeyFileError, match="does not match"):
        keys.parse_signer_key(wrong)

"""Media storage on a real folder, and signed links under a real SECRET_KEY."""
from __future__ import annotations

import os
import stat
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask

from app.errors import DomainError

from miniprogram_api.problems import status_of
from app.media import signing
from app.media.storage import LocalStorage, content_type_for, get_storage

KEY = "proofs/0f3c/1a2b/full.jpg"


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "media")


def _files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, _, names in os.walk(root) for name in names)


# --- storage ----------------------------------------------------------------------------------

def test_object_round_trips_and_delete_is_idempotent(storage):
    assert not storage.exists(KEY)
    storage.put(KEY, b"\xff\xd8 photo \xff\xd9", "image/jpeg")

    assert storage.exists(KEY)
    assert storage.get(KEY) == b"\xff\xd8 photo \xff\xd9"
    with storage.open(KEY) as handle:
        assert handle.read() == b"\xff\xd8 photo \xff\xd9"
    storage.put(KEY, b"second version", "image/jpeg")
    assert storage.get(KEY) == b"second version"

    storage.delete(KEY)
    storage.delete(KEY)
    assert not storage.exists(KEY)
    with pytest.raises(FileNotFoundError):
        storage.get(KEY)
    with pytest.raises(FileNotFoundError):
        storage.open(KEY)


def test_stored_files_are_readable_by_their_owner_only(storage):
    storage.put(KEY, b"x", "image/jpeg")
    path = storage.root / KEY
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("key", [
    "../outside.jpg", "proofs/../../outside.jpg", "/etc/passwd", "/tmp/x.jpg", "proofs/./x.jpg",
    "proofs//x.jpg", "proofs\\..\\x.jpg", ".tmp-abc", "proofs/.tmp-abc", "", "proofs/x.jpg/",
    "proofs/x\x00.jpg", "proofs/ x.jpg", "~/x.jpg", "a/" * 9 + "x.jpg", "x" * 200 + ".jpg",
])
def test_keys_that_could_leave_the_folder_or_name_a_temp_file_are_refused(storage, tmp_path, key):
    for call in (lambda: storage.put(key, b"x", "image/jpeg"), lambda: storage.get(key),
                 lambda: storage.open(key), lambda: storage.exists(key),
                 lambda: storage.delete(key)):
        with pytest.raises(ValueError):
            call()
    assert _files(tmp_path) == []


def test_content_type_must_match_the_key(storage):
    assert content_type_for("proofs/a/thumb.jpg") == "image/jpeg"
    with pytest.raises(ValueError):
        storage.put("proofs/a/full.jpg", b"<svg/>", "image/svg+xml")
    with pytest.raises(ValueError):
        storage.put("proofs/a/page.html", b"<html>", "text/html")
    assert not storage.exists("proofs/a/full.jpg")


def test_failed_write_keeps_the_old_object_and_leaves_no_temp_file(storage):
    storage.put(KEY, b"old photo", "image/jpeg")
    with pytest.raises(TypeError):
        storage.put(KEY, "text is not bytes", "image/jpeg")  # fails inside the write
    assert storage.get(KEY) == b"old photo"
    assert _files(storage.root) == [KEY]


def test_readers_never_see_a_half_written_object(storage):
    versions = [bytes([n]) * 2_000_000 for n in (1, 2)]
    storage.put(KEY, versions[0], "image/jpeg")
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = storage.get(KEY)
            seen.add(data[:1] + data[-1:] + len(data).to_bytes(4, "big"))

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(40):
        storage.put(KEY, versions[n % 2], "image/jpeg")
    stop.set()
    reader.join()
    whole = {v[:1] + v[-1:] + len(v).to_bytes(4, "big") for v in versions}
    assert seen and seen <= whole
    assert _files(storage.root) == [KEY]


def test_app_storage_is_a_local_folder_at_media_root_unless_one_is_installed(media_app):
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    assert str(storage.root) == os.path.realpath(media_app.config["MEDIA_ROOT"])
    assert get_storage() is storage

    other = Flask("with-object-store")
    installed = LocalStorage(media_app.config["MEDIA_ROOT"] + "-elsewhere")
    other.extensions["media_storage"] = installed
    with other.app_context():
        assert get_storage() is installed


# --- signed links -------------------------------------------------------------------------------

def _parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    assert split.path.startswith(signing.URL_PREFIX)
    return split.path[len(signing.URL_PREFIX):], query["expires"][0], query["sig"][0]


def test_signed_link_names_the_key_and_works_until_it_expires(media_app):
    url = signing.signed_url(KEY, ttl_seconds=300, now=1_700_000_000)
    key, expires, sig = _parts(url)
    assert (key, expires) == (KEY, "1700000300")

    signing.verify(key, expires, sig, now=1_700_000_000)
    signing.verify(key, expires, sig, now=1_700_000_299)
    for late in (1_700_000_300, 1_700_086_400):
        with pytest.raises(DomainError) as caught:
            signing.verify(key, expires, sig, now=late)
        assert (caught.value.code, status_of(caught.value)) == ("not_found", 404)


def test_default_link_is_valid_now_for_five_minutes(media_app):
    key, expires, sig = _parts(signing.signed_url(KEY))
    signing.verify(key, expires, sig)
    with pytest.raises(DomainError):
        signing.verify(key, expires, sig, now=int(expires))


def test_edited_links_are_404(media_app):
    key, expires, sig = _parts(signing.signed_url(KEY, now=1_700_000_000))
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    edits = [
        ("proofs/0f3c/1a2b/thumb.jpg", expires, sig),  # another object
        (key, str(int(expires) + 86400), sig),  # a later expiry
        (key, "+" + expires, sig), (key, expires + ".0", sig), (key, "", sig), (key, None, sig),
        (key, expires, flipped), (key, expires, sig[:-1]), (key, expires, ""), (key, expires, None),
        ("../" + key, expires, sig),
    ]
    for edited in edits:
        with pytest.raises(DomainError) as caught:
            signing.verify(*edited, now=1_700_000_000)
        assert status_of(caught.value) == 404, edited


def test_link_signed_under_another_secret_key_is_404(media_app):
    url = signing.signed_url(KEY, now=1_700_000_000)
    other = Flask("another-deployment")
    other.config["SECRET_KEY"] = "a-different-secret-key-0123456789abcdef"
    with other.app_context():
        with pytest.raises(DomainError):
            signing.verify(*_parts(url), now=1_700_000_000)


def test_links_are_only_made_for_valid_keys_and_sane_lifetimes(media_app):
    for key in ("../x.jpg", "/abs.jpg"):
        with pytest.raises(ValueError):
            signing.signed_url(key)
    for ttl in (0, -5, 8 * 24 * 3600):
        with pytest.raises(ValueError):
            signing.signed_url(KEY, ttl_seconds=ttl)

"""Where media bytes live: one small interface, a local folder (MEDIA_ROOT) behind it by default.

Keys are made by the server (`proofs/<claim id>/<proof id>/full.jpg`), never taken from a client,
and are checked anyway: relative, `/`-separated segments of `[A-Za-z0-9._-]` that start with a letter
or digit, so `..`, absolute paths, backslashes and hidden temp files cannot be named. An object store
replaces LocalStorage by implementing the same five methods and being put in
`app.extensions["media_storage"]` by the factory. A missing key raises FileNotFoundError.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol

from app.settings import resources, settings


_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){0,7}")
# The type of an object follows from its key, so a server can always answer with the one it stored.
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
                 ".webp": "image/webp"}


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def open(self, key: str) -> BinaryIO: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def keys(self) -> Iterator[tuple[str, float]]: ...


def check_key(key: str) -> str:
    """The key itself when it is a well-formed server-made key; ValueError otherwise."""
    if not isinstance(key, str) or not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise ValueError(f"bad media key: {key!r}")
    return key


def content_type_for(key: str) -> str:
    suffix = os.path.splitext(check_key(key))[1].lower()
    if suffix not in CONTENT_TYPES:
        raise ValueError(f"no media type for key: {key!r}")
    return CONTENT_TYPES[suffix]


class LocalStorage:
    """Files under `root`: written atomically (temp file, fsync, rename), readable by owner only."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if content_type_for(key) != content_type:
            raise ValueError(f"{content_type} does not match the key {key!r}")
        path = self._path(key)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkstemp creates the file 0600 in the target folder, so os.replace is a same-disk rename:
        # a reader sees the old object or the whole new one, never half of it.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            _unlink(tmp)
            raise
        _fsync_dir(path.parent)  # make the rename itself survive a crash

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        """A binary file the caller closes (e.g. handed to send_file for streaming)."""
        return open(self._path(key), "rb")  # noqa: SIM115 - the caller owns it

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error (retried jobs delete twice)."""
        _unlink(self._path(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self) -> Iterator[tuple[str, float]]:
        """Every stored object as (key, modification time), for the auditor; temporary files of
        writes in progress are skipped. Anything else under the root that is not a valid key is
        yielded too (as its relative path), so that a stray file is noticed, not hidden."""
        if not self.root.is_dir():
            return
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                path = Path(folder, name)
                yield path.relative_to(self.root).as_posix(), path.stat().st_mtime


def get_storage() -> Storage:
    """The app's storage: whatever the factory installed, else a LocalStorage on MEDIA_ROOT."""
    storage = resources().get("media_storage")
    if storage is None:
        storage = resources()["media_storage"] = LocalStorage(
            settings()["MEDIA_ROOT"])
    return storage


def _unlink(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

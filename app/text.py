"""Text that can be stored: no NUL, no lone surrogates.

PostgreSQL refuses NUL (U+0000) in text (a DataError, which was a 500), and a lone surrogate
(JSON allows "\\ud800") cannot be encoded to UTF-8 for the database at all. Both are refused
where input arrives (miniprogram_api/blueprint.py, and request paths), as the OpenAPI document's
description and every string's `pattern` say. Everything else JSON can carry is stored as it came.

An answer that names refused input (a 422 naming the key `"\\udc00"`) names it with `printable`:
a lone surrogate cannot be written out as UTF-8 at all (rendering the problem raised, a 500), and
a NUL handed back is the same trouble for the client.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping

UNSAFE = re.compile(r"[\x00\ud800-\udfff]")
# The rule as a JSON Schema `pattern`, which the OpenAPI document puts on every string a client
# sends (miniprogram_api/__init__.py): NUL only. A lone surrogate is not a Unicode scalar value, so
# JSON Schema's strings cannot hold one, and regex engines that work on scalar values refuse a
# pattern that names surrogates at all (Rust's, in jsonschema-rs, which Schemathesis uses: it then
# ignored the whole pattern). The document's description says both.
SAFE_TEXT_PATTERN = r"^[^\u0000]*$"
UNSAFE_MESSAGE = "不能包含空字符（U+0000）或无效的 Unicode 字符"


def is_unsafe(text: str) -> bool:
    return UNSAFE.search(text) is not None


def printable(text: str) -> str:
    """`text` with each unsafe character written out as its escape, six visible characters
    (`\\u0000`, `\\udc00`): safe to encode, show and log."""
    return UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def printable_value(value):
    """A JSON value (dicts, lists, strings, keys included) with every string made `printable`."""
    if isinstance(value, str):
        return printable(value) if is_unsafe(value) else value
    if isinstance(value, Mapping):
        return {printable_value(key): printable_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable_value(item) for item in value]
    return value


def _may_hold_unsafe(value) -> bool:
    """Whether a JSON value may hold unsafe text anywhere, in a few C-speed passes:
    json.dumps(..., ensure_ascii=False) writes NUL as its escape and a lone surrogate as itself,
    which UTF-8 cannot encode. (A literal backslash-u0000 in some text says "may" too: then the
    walk decides.)"""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # not a plain JSON value (e.g. a query's MultiDict)
        return True
    if "\\u0000" in text:
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def unsafe_paths(value, path: tuple = ()) -> list[tuple]:
    """Where in a loaded JSON value (dicts, lists, strings) unsafe text sits: a key path for
    each string value or key that holds some. A body with none (nearly every one) is cleared by
    one C-speed pass, not a walk of every item (a batch of 1000 signals: ~10 ms -> ~4)."""
    if not path and isinstance(value, (Mapping, list, tuple)) and not _may_hold_unsafe(value):
        return []
    return _walk(value, path)


def _walk(value, path: tuple) -> list[tuple]:
    found: list[tuple] = []
    if isinstance(value, str):
        if is_unsafe(value):
            found.append(path)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and is_unsafe(key):
                found.append(path + (key,))
            else:
                found.extend(_walk(item, path + (key,)))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found.extend(_walk(item, path + (index,)))
    return found

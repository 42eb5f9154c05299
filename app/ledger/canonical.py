"""The exact bytes of a ledger entry: canonical JSON. Pure, so the public verifier
(app.ledger.verify) shares it without pulling in the application."""
from __future__ import annotations

import json


def canonical(entry: dict) -> bytes:
    """Sorted keys, no spaces, UTF-8 without escapes: the exact bytes that are hashed."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")

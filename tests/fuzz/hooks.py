"""Schemathesis hooks for tests/fuzz (loaded by file path from the generated config).

Most of them only steer *positive* (schema-valid) cases towards requests that are valid beyond
what a JSON Schema can say (a signed cursor, a fresh idempotency key, a checksum, a rule between
two fields), so that `positive_data_acceptance` keeps checking something true. Negative cases are
left as generated, except for the one filter at the end (request lines the HTTP server refuses).
The seed file (FUZZ_SEED_FILE) is what tests/fuzz/seed.py returned.
"""
from __future__ import annotations

import base64
import io
import json
import os
import uuid
import zlib
from collections.abc import MutableMapping
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

import schemathesis
from schemathesis.core.parameters import ParameterLocation

SEED = json.loads(open(os.environ["FUZZ_SEED_FILE"], encoding="utf-8").read()) \
    if os.environ.get("FUZZ_SEED_FILE") else {}
# The ledger only grows, so a tree of the seeded size exists for the whole run.
LEDGER_SIZE = max(1, int(SEED.get("ledger_size", 1)))
# gunicorn's default limit_request_line (bytes of "METHOD /path?query HTTP/1.1").
REQUEST_LINE_LIMIT = 4094
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
GUARDIAN_AGE = 14
# body field -> seeded ids (tests/fuzz/seed.py)
BODY_IDS = {"beneficiary_id": "body_ben_id", "wish_id": "published_wish_id"}
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==")


def _is_image(data) -> bool:
    """A whole still JPEG, PNG or WebP (what the upload accepts)."""
    from PIL import Image

    if isinstance(data, str):
        data = data.encode("latin-1", "replace")
    if not isinstance(data, (bytes, bytearray)):
        return False
    try:
        with Image.open(io.BytesIO(data)) as image:
            still = not getattr(image, "is_animated", False)
            image.load()
            return image.format in ("JPEG", "PNG", "WEBP") and still
    except Exception:  # noqa: BLE001 - anything Pillow cannot read is not an image
        return False


def _positive(case, location: ParameterLocation) -> bool:
    return not (case.meta is not None and case.meta.is_negative_at(location))


def _from_link(case, container: str, name: str) -> bool:
    override = getattr(case, "_override", None)
    return override is not None and name in (getattr(override, container, None) or {})


@schemathesis.hook
def map_case(context, case):
    path, method = case.operation.path, case.method.upper()
    if isinstance(case.query, dict) and _positive(case, ParameterLocation.QUERY):
        _positive_query(case, path)
    if isinstance(case.headers, MutableMapping) and _positive(case, ParameterLocation.HEADER):
        # Same key + a different request is 422 `idempotency_key_reused` (the contract): a
        # generator that draws "0" twice is reusing a key, so positive cases get a fresh one.
        # (The check's probes resend the case as it is, key included.)
        for name in list(case.headers):
            if name.lower() == "idempotency-key":
                case.headers[name] = str(uuid.uuid4())
    if isinstance(case.body, dict) and _positive(case, ParameterLocation.BODY):
        # An id in a body names another object; a made-up one is rightly a 422 ("no such
        # beneficiary"), so valid bodies name seeded ones, picked by the generated value.
        for field, name in BODY_IDS.items():
            ids = SEED.get("ids", {}).get(name)
            if ids and isinstance(case.body.get(field), str):
                case.body[field] = ids[zlib.crc32(case.body[field].encode()) % len(ids)]
        if method == "POST" and path.endswith("/beneficiaries"):
            _valid_beneficiary(case.body)
        elif method == "POST" and path.endswith("/applications") and isinstance(
                case.body.get("applicant"), dict):
            _valid_id_number(case.body["applicant"])
        elif method == "POST" and path.endswith("/proofs") and "photo" in case.body:
            # A photo is a JPEG, PNG or WebP by its bytes (the contract; anything else is 415 or
            # 422 `invalid_image`); "format: binary" lets the generator send a zip as "valid".
            if not _is_image(case.body["photo"]):
                case.body["photo"] = TINY_PNG
        elif method == "PATCH" and "/staff/" in path:
            # A caseworker is bound to at least one region: the schema cannot tie `regions` to
            # `role`, nor to the role the account already has (found by a longer run).
            regions, role = case.body.get("regions"), case.body.get("role")
            if not regions and (role == "caseworker" or (regions == [] and role is None)):
                case.body["regions"] = ["350505101"]
        elif method == "POST" and path.endswith("/me/subscriptions"):
            # The templates one accepted must be among those the request asked for.
            asked = case.body.get("template_ids")
            if isinstance(asked, list) and isinstance(case.body.get("accepted"), list):
                case.body["accepted"] = [t for t in case.body["accepted"] if t in asked]
    return case


def _positive_query(case, path: str) -> None:
    query = case.query
    # `cursor` is opaque: only a `next_cursor` the server issued for that same list (it is signed
    # and bound to the list, app/pagination.py) is valid, and a made-up one is correctly refused
    # with 422 `invalid_cursor`. A schema cannot generate one, so positive cases go without it
    # (negative cases still send garbage cursors; the stateful phase follows real next_cursor).
    if "cursor" in query and not _from_link(case, "query", "cursor"):
        query.pop("cursor")
    # Proofs exist only for trees the ledger has had (index < tree_size <= size, and
    # 1 <= first <= second <= size); the schema states the bounds it can (minimum 0/1), the
    # relation between two parameters and the ledger's current size it cannot.
    if path.endswith("/ledger/proof/inclusion") and _ints(query, "index", "tree_size"):
        tree_size = 1 + _int(query["tree_size"]) % LEDGER_SIZE
        _set(query, "tree_size", tree_size)
        _set(query, "index", _int(query["index"]) % tree_size)
    elif path.endswith("/ledger/proof/consistency") and _ints(query, "first", "second"):
        second = 1 + _int(query["second"]) % LEDGER_SIZE
        _set(query, "second", second)
        _set(query, "first", 1 + (_int(query["first"]) - 1) % second)


def _valid_id_number(body: dict) -> None:
    """The ID number's check character (GB 11643), which a schema cannot say."""
    number = body.get("id_number")
    if isinstance(number, str) and len(number) == 18 and number[:17].isascii() \
            and number[:17].isdigit():
        total = sum(int(d) * w for d, w in zip(number[:17], ID_WEIGHTS))
        body["id_number"] = number[:17] + "10X98765432"[total % 11]


def _valid_beneficiary(body: dict) -> None:
    """What the schema cannot say about a new beneficiary: the ID number's check character, a
    `sensitive_data` consent, and a guardian's consent (given by the guardian) under 14."""
    _valid_id_number(body)
    consents = body.get("consents")
    if not isinstance(consents, list) or not all(isinstance(c, dict) for c in consents):
        return
    if not any(c.get("kind") == "sensitive_data" for c in consents):
        consents.append({"kind": "sensitive_data", "given_by": "self", "notice_version": "v1"})
    for consent in consents:  # a guardian's consent names the guardian's relation
        if consent.get("given_by") == "guardian" and not consent.get("relation"):
            consent["relation"] = "母亲"
    year = body.get("birth_year")
    if isinstance(year, int) and datetime.now(timezone.utc).year - year < GUARDIAN_AGE:
        # under 14, every consent is given by the guardian, and one of them is `guardian`
        for consent in consents:
            consent["given_by"] = "guardian"
            consent.setdefault("relation", "母亲")
        if not any(c.get("kind") == "guardian" for c in consents):
            consents.append({"kind": "guardian", "given_by": "guardian", "relation": "母亲",
                             "notice_version": "v1"})
    del consents[10:]  # at most 10 (the schema's maxItems)


def _int(value) -> int:
    return value if isinstance(value, int) else int(value)


def _ints(query: dict, *names: str) -> bool:
    """The coverage phase sends query values as strings, the fuzzing phase as ints."""
    return all((isinstance(query.get(n), int) and not isinstance(query.get(n), bool))
               or (isinstance(query.get(n), str) and query[n].isascii() and query[n].isdigit())
               for n in names)


def _set(query: dict, name: str, value: int) -> None:
    query[name] = str(value) if isinstance(query[name], str) else value


@schemathesis.hook
def filter_case(context, case):
    """Leave out negative cases whose request line is longer than gunicorn accepts: gunicorn
    refuses them itself (414 with its own text/html page) before the app sees them, which is the
    right refusal, but not the app's to shape. Positive cases are never left out: a valid request
    that does not fit would be a finding (the schema bounds every query string parameter)."""
    if _positive(case, ParameterLocation.QUERY) and _positive(case, ParameterLocation.PATH):
        return True
    try:
        path = case.formatted_path
        query = urlencode(case.query or {}, doseq=True)
    except Exception:  # noqa: BLE001 - an unformattable case is schemathesis' to handle
        return True
    line = len(case.method) + len(quote(path, safe="/")) + len(query) + 12
    return line <= REQUEST_LINE_LIMIT - 200

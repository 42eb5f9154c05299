"""Hostile bodies and pages: small in bytes, huge in shape. Each is a clean 4xx, writes nothing.

Bodies over the byte limit are tests/api/test_bad_input.py's; these stay under it and attack the
parser and the validators instead: JSON nested 10,000 levels deep, a list of 100,000 items,
5,000 unknown keys, a string filling the body to 1 MiB - 1 byte, numbers like 10**400 and
1e400. Every route that takes a JSON body is sent each of them (routes added later are found in
the OpenAPI metadata and must have a row in BODY_ROUTES). Lists are sent limits and cursors no
page may take.
"""
from __future__ import annotations

import io
import json
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable

import pytest

from app.text import UNSAFE_MESSAGE, unsafe_paths
from tests.api.test_bad_input import assert_problem
from tests.api.test_pii_crawl import fill, norm
from tests.factories import beneficiary_payload, wish_payload

API = "/api/v1"
ONE_MIB = 1024 * 1024
DEPTH = 10_000
MANY = 100_000
MAX_PROBLEM_BYTES = 16 * 1024  # a problem names the first few errors, never 100,000 of them
MAX_SECONDS = 5.0              # was 15 s of validation for 100,000 bad consents


def _row_counts(app) -> dict[str, int]:
    """Rows in every table, in one round trip. Not the idempotency records: a request refused by
    the service (not by its schema) stores its answer for replay, by design."""
    import sqlalchemy as sa

    from app.extensions import db

    tables = [t for t in db.metadata.sorted_tables if t.name != "idempotency_keys"]
    with app.app_context():
        row = db.session.execute(sa.select(*[
            sa.select(sa.func.count()).select_from(t).scalar_subquery().label(t.name)
            for t in tables])).one()
        db.session.remove()
    return dict(row._mapping)


@contextmanager
def nothing_written(app):
    before = _row_counts(app)
    yield
    assert _row_counts(app) == before


class World:
    """Whoever a route needs, made on demand (staff logins hash a password: only when needed)."""

    def __init__(self, app, client, actors) -> None:
        self.app, self.client, self.actors = app, client, actors
        self._cache: dict[str, Any] = {}

    def _get(self, name: str, make: Callable[[], Any]) -> Any:
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    @property
    def cw(self):
        return self._get("cw", self.actors.caseworker)

    @property
    def mod(self):
        return self._get("mod", self.actors.moderator)

    @property
    def admin(self):
        return self._get("admin", self.actors.admin)

    @property
    def donor(self):
        return self._get("donor", self.actors.donor)

    @property
    def partner(self):
        """A partner system (OAuth client credentials), with `.headers` like an actor's."""
        from types import SimpleNamespace

        from tests.partners.helpers import partner_headers

        return self._get("partner", lambda: SimpleNamespace(
            headers=partner_headers(self.app, self.client)))

    @property
    def ben_id(self) -> str:
        return self._get("ben", lambda: self.actors.beneficiary(self.cw)["id"])

    def draft_id(self) -> str:
        return self._get("draft", lambda: self.actors.draft_wish(self.cw, self.ben_id))["id"]

    def pending_id(self) -> str:
        return self._get("pending", lambda: self.actors.submitted_wish(
            self.cw, beneficiary_id=self.ben_id))["id"]

    def open_id(self) -> str:
        return self._get("open", lambda: self.actors.open_wish(
            self.cw, self.mod, beneficiary_id=self.ben_id))["id"]

    def delivered_claim_id(self) -> str:
        def make():
            from app.claims.models import Claim
            from app.claims.service import mark_delivered
            from app.extensions import db

            claim = self.actors.claim(self.donor, self.open_id())
            with self.app.app_context():
                row = db.session.get(Claim, claim["id"])
                mark_delivered(row, row.donor_id)
                db.session.commit()
            return claim["id"]
        return self._get("delivered", make)


def _idempotent(headers: dict) -> dict:
    return {**headers, "Idempotency-Key": str(uuid.uuid4())}


# (method, rule) -> (caller, path args, a valid body, the list field, the number field).
# The body is valid so that each hostile case changes one thing; the list field is where the
# 100,000 items go and the number field where 10**400 goes (None: an extra key takes them).
Route = tuple[str, Callable[[World], dict], Callable[[World], dict], str | None, str | None]
BODY_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", f"{API}/auth/wechat"): ("public", lambda w: {}, lambda w: {"code": "dev:hostile"},
                                     None, None),
    ("POST", f"{API}/auth/staff"): ("public", lambda w: {},
                                    lambda w: {"username": "nobody", "password": "x" * 12},
                                    None, None),
    ("PATCH", f"{API}/staff/<user_id>"): ("admin", lambda w: {"user_id": w.cw.id},
                                          lambda w: {"regions": ["350505101"]}, "regions", None),
    ("POST", f"{API}/beneficiaries"): ("cw", lambda w: {}, lambda w: beneficiary_payload(),
                                       "consents", "birth_year"),
    ("POST", f"{API}/wishes"): ("cw", lambda w: {}, lambda w: wish_payload(w.ben_id),
                                None, "estimated_value_fen"),
    ("PATCH", f"{API}/wishes/<wish_id>"): ("cw", lambda w: {"wish_id": w.draft_id()},
                                           lambda w: {"title": "一副老花镜"},
                                           None, "estimated_value_fen"),
    ("POST", f"{API}/wishes/<wish_id>/reject"): ("mod", lambda w: {"wish_id": w.pending_id()},
                                                 lambda w: {"reason": "材料不全"}, None, None),
    ("POST", f"{API}/wishes/<wish_id>/withdraw"): ("cw", lambda w: {"wish_id": w.open_id()},
                                                   lambda w: {"reason": "已由其他渠道解决"},
                                                   None, None),
    ("POST", f"{API}/claims/<claim_id>/dispute"): ("cw",
                                                   lambda w: {"claim_id": w.delivered_claim_id()},
                                                   lambda w: {"reason": "照片看不清"}, None, None),
    ("PATCH", f"{API}/me"): ("donor", lambda w: {}, lambda w: {"display_name": "陈晓明"},
                             None, None),
    ("POST", f"{API}/wishes/<wish_id>/claims"): ("donor", lambda w: {"wish_id": w.open_id()},
                                                 lambda w: {"anonymous": False}, None, None),
    ("POST", f"{API}/me/subscriptions"): ("donor", lambda w: {},
                                          lambda w: {"template_ids": ["t1"], "accepted": ["t1"]},
                                          "template_ids", None),
    ("POST", f"{API}/donations"): ("donor", lambda w: {},
                                   lambda w: {"amount_fen": 1000, "anonymous": True,
                                              "receipt_requested": False},
                                   None, "amount_fen"),
    ("POST", f"{API}/disbursements"): ("mod", lambda w: {},
                                       lambda w: {"amount_fen": 1000, "purpose": "购买轮椅一台"},
                                       None, "amount_fen"),
    ("POST", f"{API}/disbursements/<disbursement_id>/reject"): (
        "mod", lambda w: {"disbursement_id": "dsb_does_not_exist"},
        lambda w: {"reason": "用途不明"}, None, None),
    ("POST", f"{API}/signals"): ("partner", lambda w: {}, lambda w: {"items": []}, "items", None),
    ("POST", f"{API}/ledger/reversals"): ("mod", lambda w: {},
                                          lambda w: {"index": 0, "reason": "金额录入有误"},
                                          None, "index"),
    ("POST", f"{API}/applications"): ("donor", lambda w: {}, lambda w: _application(),
                                      "consents", None),
    ("POST", f"{API}/applications/<application_id>/decision"): (
        "mod", lambda w: {"application_id": "apl_does_not_exist"},
        lambda w: {"decision": "refused", "reason": "家庭收入超过标准"}, None, None),
    ("POST", f"{API}/tasks/<task_id>/complete"): (
        "cw", lambda w: {"task_id": "tsk_does_not_exist"},
        lambda w: {"outcome": "not_found", "note": "多次上门无人"}, None, None),
    ("PUT", f"{API}/alert-rules"): ("admin", lambda w: {}, lambda w: {"rules": _rules()},
                                    None, None),
}


def _application() -> dict:
    from tests.cases.helpers import application_payload

    return application_payload()


def _rules() -> dict:
    from app.cases.rules import DEFAULT_RULES

    return DEFAULT_RULES
# Routes that take no JSON body (the payment notification is a signed body checked as bytes
# before it is parsed: see test_unsigned_hostile_notification_is_refused_before_parsing).
NOT_JSON = {("POST", f"{API}/claims/<claim_id>/proofs"),  # multipart: tests/api/test_proofs.py
            ("POST", f"{API}/payments/wechatpay/notify")}


def _json_routes(app, *, optional_only: bool = False) -> set[tuple[str, str]]:
    """Every (method, rule) whose view parses a JSON body, by its OpenAPI metadata; with
    `optional_only`, those whose body the document marks as not required (a claim's
    `anonymous`, a withdrawal's reason): without a body they take their defaults."""
    found = set()
    for rule in app.url_map.iter_rules():
        doc = getattr(app.view_functions[rule.endpoint], "_apidoc", {})
        params = doc.get("arguments", {}).get("parameters", [])
        if any(p.get("in", "json") == "json" and not (optional_only and p.get("required", True))
               for p in params):
            found |= {(m, norm(rule.rule)) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_every_route_that_takes_json_is_in_the_battery(app):
    missing = _json_routes(app) - set(BODY_ROUTES) - NOT_JSON
    assert not missing, f"add these routes to BODY_ROUTES (or NOT_JSON): {sorted(missing)}"


def _deep_array() -> str:
    return "[" * DEPTH + "]" * DEPTH


def _with_text(body: dict, field: str, raw_json_text: str) -> str:
    """`body` as JSON with `field` set to a string written with raw JSON escapes."""
    rest = json.dumps({k: v for k, v in body.items() if k != field}, ensure_ascii=False)
    return rest[:-1] + (", " if len(rest) > 2 else "") + json.dumps(field) \
        + f': "{raw_json_text}"}}'


def _cases(body: dict, list_field: str | None, number_field: str | None) -> dict[str, str]:
    """name -> raw JSON, each under the byte limit."""
    dump = lambda d: json.dumps(d, ensure_ascii=False)  # noqa: E731
    prefix = dump(body)[:-1] + (", " if body else "")
    number_key = json.dumps(number_field or "extra_number")
    first_string = next((k for k, v in body.items() if isinstance(v, str)), None)
    long_field = first_string or "extra_text"
    without = dump({k: v for k, v in body.items() if k != long_field})
    frame = len((without[:-1] + (", " if len(without) > 2 else "")
                 + json.dumps(long_field) + ': ""}').encode())
    long_string = without[:-1] + (", " if len(without) > 2 else "") + json.dumps(long_field) \
        + ': "' + "a" * (ONE_MIB - 1 - frame) + '"}'
    huge_list = [{}] * MANY if list_field == "consents" else ["a"] * MANY
    cases = {
        "array nested 10000 deep": _deep_array(),
        "object nested 10000 deep in a field": prefix + '"x": ' + '{"a": ' * DEPTH + "1"
                                               + "}" * DEPTH + "}",
        "list of 100000 items": dump({**body, (list_field or "extra_list"): huge_list}),
        "5000 unknown keys": prefix + ", ".join(f'"k{i}": 0' for i in range(5_000)) + "}",
        "string filling the body to 1 MiB - 1 byte": long_string,
        "10**400": prefix + f"{number_key}: 1{'0' * 400}}}",
        "1e400": prefix + f"{number_key}: 1e400}}",
        "-1e400": prefix + f"{number_key}: -1e400}}",
        "NaN": prefix + f"{number_key}: NaN}}",
        # PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded for it at all:
        # both were 500s from the database; now the parser refuses them as a 422
        "NUL in a string": _with_text(body, long_field, "一副\\u0000老花镜"),
        "a lone surrogate in a string": _with_text(body, long_field, "一副\\ud800老花镜"),
        "NUL in a key": prefix + '"k\\u0000": 0}',
        # the 422 names the key: a lone surrogate could not be written out (a 500)
        "a lone surrogate as a key": prefix + '"\\udc00": 0}',
        "a lone surrogate as the only key": '{"\\udc00": 1}',
        "a lone surrogate as a nested key": prefix + '"x": {"\\ud800y": 0}}',
        "NUL in a nested key": prefix + '"x": [{"k\\u0000": 0}]}',
    }
    for name, raw in cases.items():
        assert len(raw.encode()) < ONE_MIB, name
    assert len(long_string.encode()) == ONE_MIB - 1
    return cases


def test_hostile_json_bodies_are_small_quick_4xx_that_write_nothing_on_every_json_route(
        app, client, actors):
    """One test over every route (staff logins cost ~0.8 s of argon2 each: made once here);
    every failure is collected, so one run names all of them."""
    world = World(app, client, actors)
    present = _json_routes(app)
    failures = []
    for (method, rule), (caller, path_args, valid, list_field, number_field) in \
            sorted(BODY_ROUTES.items()):
        if (method, rule) not in present:
            continue  # listed ahead of its route
        path = rule
        for name, value in path_args(world).items():
            path = fill(path, name, value)
        headers = {} if caller == "public" else getattr(world, caller).headers
        body = valid(world)
        try:
            with nothing_written(app):  # around all the cases of a route: one count, not nine
                for case, raw in _cases(body, list_field, number_field).items():
                    # 12 cases from one user exceed the per-user limits of claims and
                    # donations (10/minute): limits are tests/api/test_rate_limits.py's
                    app.extensions["ratelimit"].reset()
                    try:
                        _send_hostile(client, method, path, headers, raw, case)
                    except AssertionError as exc:
                        failures.append(f"{method} {rule} with {case}: {exc}")
        except AssertionError as exc:
            failures.append(f"{method} {rule}: rows written: {exc}")
    assert not failures, "\n".join(failures)


def _send_hostile(client, method, path, headers, raw, case):
    started = time.monotonic()
    res = client.open(path, method=method, data=raw.encode(), content_type="application/json",
                      headers=_idempotent(headers))
    elapsed = time.monotonic() - started
    assert res.status_code in (400, 413, 422), (res.status_code, res.get_data(as_text=True)[:200])
    problem = assert_problem(res, res.status_code)
    # the problem may name what was refused, never repeat it raw
    assert not unsafe_paths(problem), problem
    if "nested" in case and "key" not in case:
        assert res.status_code == 400 and problem["code"] == "malformed_json", problem
    assert len(res.get_data()) <= MAX_PROBLEM_BYTES, f"{len(res.get_data())} bytes"
    assert elapsed < MAX_SECONDS, f"{elapsed:.1f} s"


def test_a_capped_problem_still_names_the_first_errors_and_counts_the_rest(client, actors):
    cw = actors.caseworker()
    body = {**beneficiary_payload(), **{f"k{i}": 0 for i in range(100)}}

    res = client.post(f"{API}/beneficiaries", json=body, headers=cw.headers)

    errors = assert_problem(res, 422, "validation_error")["errors"]
    assert len(errors) == 21
    assert errors.pop("…") == ["另有 80 项错误未列出"]
    assert all(k.startswith("k") and v == ["不允许的字段"] for k, v in errors.items())


def test_a_list_over_its_length_is_one_message_not_one_per_item(client, actors):
    cw = actors.caseworker()
    body = beneficiary_payload(assessment={"categories": ["bogus"] * MANY, "level": "red"})

    res = client.post(f"{API}/beneficiaries", json=body, headers=cw.headers)

    errors = assert_problem(res, 422, "validation_error")["errors"]
    assert errors == {"assessment": {"categories": ["长度过长：8"]}}


def test_deep_json_on_a_token_route_is_still_401_first(client):
    """The access check runs before the body is read: no token, no parsing."""
    res = client.post(f"{API}/wishes", data=_deep_array(), content_type="application/json")

    assert_problem(res, 401, "invalid_token")


def test_unsigned_hostile_notification_is_refused_before_parsing(app, client):
    notify = f"{API}/payments/wechatpay/notify"
    if ("POST", notify) not in {(m, r.rule) for r in app.url_map.iter_rules() for m in r.methods}:
        pytest.skip("no payment notification route (yet)")
    for raw in (_deep_array(), "[" + "0," * MANY + "0]", '{"a": 1e400}'):
        with nothing_written(app):
            res = client.post(notify, data=raw, content_type="application/json")
        assert res.status_code in (400, 401), res.get_data(as_text=True)[:300]
        assert res.mimetype == "application/problem+json"


# --- pages -------------------------------------------------------------------------------------

BAD_PAGES = {"limit=101": "limit", "limit=0": "limit", "limit=-1": "limit",
             f"limit={10**30}": "limit", "limit=abc": "limit", "limit=1e400": "limit",
             "cursor=" + "A" * 100_000: "cursor"}
PAGE_CALLERS = {f"{API}/wishes": "public", f"{API}/me/claims": "donor",
                f"{API}/me/donations": "donor", f"{API}/staff/wishes": "cw",
                f"{API}/beneficiaries": "cw", f"{API}/moderation/wishes": "mod",
                f"{API}/me/notifications": "cw", f"{API}/disbursements": "mod",
                f"{API}/tasks": "cw"}


def _page_routes(app) -> set[str]:
    """Every GET list that takes `?limit=&cursor=` (PageArgs), found in the OpenAPI metadata."""
    from miniprogram_api.schemas import PageArgs

    found = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        doc = getattr(app.view_functions[rule.endpoint], "_apidoc", {})
        for param in doc.get("arguments", {}).get("parameters", []):
            schema = param["schema"]
            schema = schema if isinstance(schema, type) else type(schema)
            if issubclass(schema, PageArgs):
                found.add(norm(rule.rule))
    return found


def test_every_page_route_is_in_the_battery(app):
    missing = _page_routes(app) - set(PAGE_CALLERS)
    assert not missing, f"add these lists to PAGE_CALLERS: {sorted(missing)}"


def test_limits_and_cursors_no_page_may_take_are_422_on_every_list(app, client, actors):
    world = World(app, client, actors)
    for path in sorted(_page_routes(app)):
        caller = PAGE_CALLERS[path]
        headers = {} if caller == "public" else getattr(world, caller).headers
        for query, field in BAD_PAGES.items():
            res = client.get(f"{path}?{query}", headers=headers)
            where = f"{path}?{query[:40]}"
            body = assert_problem(res, 422)
            assert body["code"] in ("validation_error", "invalid_cursor"), where
            assert field in body["errors"], (where, body["errors"])
            assert len(res.get_data()) <= MAX_PROBLEM_BYTES, where


@pytest.mark.parametrize("query", [
    f"entries?start={10**30}", "entries?start=-1", f"entries?limit={10**30}",
    f"proof/inclusion?index={10**30}&tree_size={10**30}", "proof/inclusion?index=1e400&tree_size=1",
    f"proof/consistency?first=1&second={10**30}", "proof/consistency?first=NaN&second=1",
])
def test_ledger_numbers_out_of_any_range_are_422(client, query):
    assert_problem(client.get(f"{API}/ledger/{query}"), 422, "validation_error")


@pytest.mark.parametrize("index", [str(10**30), str(2**63), str(2**53 + 1)])
def test_ledger_entry_index_out_of_any_range_is_404(client, index):
    assert_problem(client.get(f"{API}/ledger/entries/{index}"), 404, "not_found")


@pytest.mark.parametrize("method, path, caller", [
    ("GET", f"{API}/wishes/wsh_a%00b", "public"),
    ("GET", f"{API}/wishes/%ED%A0%80", "public"),
    ("POST", f"{API}/claims/clm_a%00b/release", "donor"),
    ("POST", f"{API}/wishes/wsh_a%00b/claims", "donor"),
    ("GET", f"{API}/beneficiaries/ben_%00", "cw"),
    ("GET", f"{API}/donations/don_%00", "donor"),
])
def test_unsafe_characters_in_a_path_id_are_404_not_a_database_error(app, client, actors,
                                                                     method, path, caller):
    world = World(app, client, actors)
    headers = {} if caller == "public" else {**getattr(world, caller).headers,
                                             "Idempotency-Key": str(uuid.uuid4())}
    res = client.open(path, method=method, headers=headers)
    assert res.status_code == 404, res.get_data(as_text=True)
    assert assert_problem(res, 404)["code"] == "not_found"


@pytest.mark.parametrize("query", ["region=3505%00", "cursor=a%00b", "kind=goods%00"])
def test_unsafe_characters_in_a_query_are_422(client, query):
    res = client.get(f"{API}/wishes?{query}")
    assert res.status_code == 422 and assert_problem(res, 422)["code"] == "validation_error"


@pytest.mark.parametrize("path, caller", [
    (f"{API}/auth/staff", "public"), (f"{API}/auth/wechat", "public"),
    (f"{API}/wishes", "cw"), (f"{API}/beneficiaries", "cw"),
])
def test_lone_surrogate_as_json_key_is_422_not_500(app, client, actors, path, caller):
    """The 422 names the key it refuses, and a lone surrogate cannot be written out as UTF-8:
    rendering the problem raised, and an unauthenticated request got a 500."""
    world = World(app, client, actors)
    headers = {} if caller == "public" else getattr(world, caller).headers
    with nothing_written(app):
        res = client.post(path, data=b'{"\\udc00": 1}', content_type="application/json",
                          headers=headers)
    problem = assert_problem(res, 422, "validation_error")
    assert problem["errors"] == {"\\udc00": [UNSAFE_MESSAGE]}  # named in visible escapes
    assert not unsafe_paths(problem)


@pytest.mark.parametrize("raw, name", [
    (b'{"wish": {"\\udc00": 1}}', "wish"), (b'{"a\\u0000b": 1}', "a\\u0000b"),
    (b'{"\\ud800\\u0000": [1]}', "\\ud800\\u0000"),
])
def test_unsafe_json_keys_anywhere_are_422_named_in_visible_escapes(client, raw, name):
    res = client.post(f"{API}/auth/staff", data=raw, content_type="application/json")
    problem = assert_problem(res, 422, "validation_error")
    assert problem["errors"] == {name: [UNSAFE_MESSAGE]}
    assert name in problem["detail"] and not unsafe_paths(problem)


def test_unsafe_keys_in_a_query_string_are_422_named_in_visible_escapes(client):
    res = client.get(f"{API}/wishes?region%00x=3505")
    problem = assert_problem(res, 422, "validation_error")
    assert problem["errors"] == {"region\\u0000x": [UNSAFE_MESSAGE]}
    assert not unsafe_paths(problem)


def test_unsafe_keys_in_a_form_are_422_named_in_visible_escapes(app, client, actors):
    world = World(app, client, actors)
    claim_id = actors.claim(world.donor, world.open_id())["id"]
    with nothing_written(app):
        res = client.post(f"{API}/claims/{claim_id}/proofs",
                          data={"note\x00": "已送到", "photo": (io.BytesIO(_jpeg()), "p.jpg",
                                                               "image/jpeg")},
                          headers=_idempotent(world.donor.headers))
    problem = assert_problem(res, 422, "validation_error")
    assert problem["errors"] == {"note\\u0000": [UNSAFE_MESSAGE]}
    assert not unsafe_paths(problem)


def _jpeg() -> bytes:
    from PIL import Image

    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 20, 30)).save(photo, "JPEG")
    return photo.getvalue()


def test_a_proof_note_with_nul_is_422_and_stores_nothing(app, client, actors):
    import io

    from PIL import Image

    world = World(app, client, actors)
    claim_id = actors.claim(world.donor, world.open_id())["id"]
    photo = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 20, 30)).save(photo, "JPEG")
    with nothing_written(app):
        res = client.post(f"{API}/claims/{claim_id}/proofs",
                          data={"note": "已送到\x00", "photo": (io.BytesIO(photo.getvalue()),
                                                                "p.jpg", "image/jpeg")},
                          headers=_idempotent(world.donor.headers))
    assert res.status_code == 422, res.get_data(as_text=True)
    assert "note" in assert_problem(res, 422)["errors"]


def test_a_required_body_that_is_missing_is_422_on_every_json_route(app, client, actors):
    """Without a body webargs gives the schema `{}`: a PATCH of optional fields answered 200 to
    nothing at all. Every route whose document requires a body now refuses its absence."""
    world = World(app, client, actors)
    present, optional = _json_routes(app), _json_routes(app, optional_only=True)
    assert ("POST", f"{API}/wishes/<wish_id>/claims") in optional  # the finder finds
    failures = []
    for (method, rule), (caller, path_args, _valid, _l, _n) in sorted(BODY_ROUTES.items()):
        if (method, rule) not in present or (method, rule) in optional:
            continue
        path = rule
        for name, value in path_args(world).items():
            path = fill(path, name, value)
        headers = {} if caller == "public" else getattr(world, caller).headers
        app.extensions["ratelimit"].reset()
        with nothing_written(app):
            res = client.open(path, method=method, headers=_idempotent(headers))
        if res.status_code != 422:
            failures.append(f"{method} {rule}: {res.status_code} {res.get_data(as_text=True)[:120]}")
    assert not failures, "\n".join(failures)


def test_an_empty_object_is_still_a_body(client, actors):
    donor = actors.donor("不变的名字")
    res = client.patch(f"{API}/me", json={}, headers=donor.headers)
    assert res.status_code == 200 and res.get_json()["display_name"] == "不变的名字"
    missing = client.patch(f"{API}/me", headers=donor.headers)
    assert missing.status_code == 422 and assert_problem(missing, 422)["errors"] == {
        "_schema": ["请求体不能为空"]}

"""Bad input: every case gets the one problem+json shape and writes nothing.

"Nothing written" is checked by counting the rows of every table before and after.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from miniprogram_api.policy import PUBLIC, allow
from tests.factories import beneficiary_payload, wish_payload

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
ONE_MIB = 1024 * 1024


def _row_counts(app) -> dict[str, int]:
    from app.extensions import db

    with app.app_context():
        counts = {t.name: db.session.scalar(sa.select(sa.func.count()).select_from(t))
                  for t in db.metadata.sorted_tables}
        db.session.remove()
    return counts


@contextmanager
def nothing_written(app):
    before = _row_counts(app)
    yield
    assert _row_counts(app) == before


def assert_problem(res, status: int, code: str | None = None) -> dict:
    assert res.status_code == status, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"
    body = res.get_json()
    assert PROBLEM_KEYS <= set(body), body
    assert body["status"] == status
    if code:
        assert body["code"] == code
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert res.headers["Cache-Control"] == "no-store"
    return body


def _messages(errors) -> list[str]:
    if isinstance(errors, dict):
        return [m for v in errors.values() for m in _messages(v)]
    if isinstance(errors, list):
        return [m for v in errors for m in _messages(v)]
    return [str(errors)]


@pytest.fixture
def cw(actors):
    return actors.caseworker()


@pytest.fixture
def ben_id(actors, cw):
    return actors.beneficiary(cw)["id"]


def test_unknown_fields_on_wish_create_are_422_naming_them(client, app, cw, ben_id):
    with nothing_written(app):
        res = client.post("/api/v1/wishes", headers=cw.headers,
                          json={**wish_payload(ben_id), "colour": "red", "urgent": True})

    body = assert_problem(res, 422, "validation_error")
    assert {"colour", "urgent"} <= set(body["errors"])
    assert "colour" in body["detail"]


@pytest.mark.parametrize("field, value", [
    ("status", "open"), ("region_code", "350505105"), ("approved_by", "usr_x"),
    ("author_id", "usr_x"), ("id", "wsh_x"), ("published_at", "2026-01-01T00:00:00Z"),
])
def test_server_owned_field_on_wish_create_is_422(client, app, cw, ben_id, field, value):
    with nothing_written(app):
        res = client.post("/api/v1/wishes", headers=cw.headers,
                          json={**wish_payload(ben_id), field: value})

    assert list(assert_problem(res, 422, "validation_error")["errors"]) == [field]


def test_server_owned_field_on_wish_edit_is_422_and_wish_unchanged(client, app, actors, cw):
    wish = actors.draft_wish(cw)
    with nothing_written(app):
        res = client.patch(f"/api/v1/wishes/{wish['id']}", headers=cw.headers,
                           json={"title": "改过的标题", "status": "open"})

    assert "status" in assert_problem(res, 422)["errors"]
    after = client.get(f"/api/v1/wishes/{wish['id']}", headers=cw.headers).get_json()
    assert after == wish


def test_unknown_nested_field_on_beneficiary_create_is_422(client, app, cw):
    payload = beneficiary_payload(assessment={"categories": ["illness"], "level": "red",
                                              "score": 99})
    with nothing_written(app):
        res = client.post("/api/v1/beneficiaries", headers=cw.headers, json=payload)

    assert "score" in str(assert_problem(res, 422, "validation_error")["errors"])


@pytest.mark.parametrize("raw", ['{"title": ', "{'single': 'quotes'}", "not json at all",
                                 '{"a": 1,}', "\xff\xfe"])
def test_malformed_json_is_400_malformed_json(client, app, cw, raw):
    with nothing_written(app):
        res = client.post("/api/v1/wishes", headers=cw.headers, data=raw.encode("latin-1"),
                          content_type="application/json")

    assert_problem(res, 400, "malformed_json")


def test_malformed_json_on_a_public_login_is_400(client, app):
    with nothing_written(app):
        res = client.post("/api/v1/auth/wechat", data=b"{code:", content_type="application/json")

    assert_problem(res, 400, "malformed_json")


@pytest.mark.parametrize("raw", ["[]", '"text"', "42", "null"])
def test_json_that_is_not_an_object_is_a_client_error(client, app, cw, raw):
    with nothing_written(app):
        res = client.post("/api/v1/wishes", headers=cw.headers, data=raw,
                          content_type="application/json")

    assert res.status_code in (400, 422)
    assert_problem(res, res.status_code)


def test_body_over_one_mib_is_413(client, app, cw, ben_id):
    payload = wish_payload(ben_id, story="很长的故事" * (ONE_MIB // 10))
    with nothing_written(app):
        res = client.post("/api/v1/wishes", headers=cw.headers, json=payload)

    assert_problem(res, 413)


def test_body_over_one_mib_on_a_public_route_is_413(client, app):
    with nothing_written(app):
        res = client.post("/api/v1/auth/staff", data=b"x" * (ONE_MIB + 1),
                          content_type="application/json")

    assert_problem(res, 413)


@pytest.mark.parametrize("path, role", [
    ("/api/v1/wishes", None), ("/api/v1/staff/wishes", "caseworker"),
    ("/api/v1/beneficiaries", "caseworker"), ("/api/v1/moderation/wishes", "moderator"),
])
def test_limit_outside_1_to_100_is_422_in_chinese(client, actors, path, role):
    headers = actors.staff(role).headers if role else {}
    for limit in ["101", "0", "-1", "abc", "1e3"]:
        res = client.get(f"{path}?limit={limit}", headers=headers)

        body = assert_problem(res, 422, "validation_error")
        assert list(body["errors"]) == ["limit"], limit
        for message in _messages(body["errors"]):  # users read these: no English left in them
            assert not re.search(r"[A-Za-z]{3,}", message), message


def test_length_and_range_errors_are_worded_in_chinese(client, app, cw, ben_id):
    with nothing_written(app):
        res = client.post("/api/v1/wishes", headers=cw.headers, json=wish_payload(
            ben_id, title="长" * 61, estimated_value_fen=-1, item=""))

    errors = assert_problem(res, 422, "validation_error")["errors"]
    assert set(errors) == {"title", "estimated_value_fen", "item"}
    for message in _messages(errors):
        assert not re.search(r"[A-Za-z]{3,}", message), message


def test_full_width_digits_in_an_id_number_are_refused(client, app, cw):
    full_width = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c
                         for c in beneficiary_payload()["id_number"])
    with nothing_written(app):
        res = client.post("/api/v1/beneficiaries", headers=cw.headers,
                          json=beneficiary_payload(id_number=full_width))

    assert "id_number" in assert_problem(res, 422, "validation_error")["errors"]


def test_limit_of_100_is_accepted(client):
    assert client.get("/api/v1/wishes?limit=100").status_code == 200


def _two_page_feed(client, actors) -> str:
    cw, mod = actors.caseworker(), actors.moderator()
    actors.open_wish(cw, mod)
    actors.open_wish(cw, mod, title="一套课桌椅")
    cursor = client.get("/api/v1/wishes?limit=1").get_json()["next_cursor"]
    assert cursor
    assert client.get(f"/api/v1/wishes?limit=1&cursor={cursor}").status_code == 200
    return cursor


def _edited(cursor: str) -> list[str]:
    """The same cursor with one character changed in its payload and in its signature."""
    flip = lambda s, i: s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]  # noqa: E731
    return [flip(cursor, 2), flip(cursor, len(cursor) - 2)]


def test_edited_or_forged_cursor_is_422_invalid_cursor(client, app, actors):
    from itsdangerous import URLSafeSerializer

    cursor = _two_page_feed(client, actors)
    forged = URLSafeSerializer("guessed-secret", salt="keyset-cursor-v1").dumps(
        {"k": "feed:urgency", "v": [["v", 0], ["d", "2020-01-01T00:00:00Z"], ["v", "a"]]})
    for bad in [*_edited(cursor), forged, "garbage", "e30", cursor + "x"]:
        with nothing_written(app):
            res = client.get(f"/api/v1/wishes?limit=1&cursor={bad}")
        assert_problem(res, 422, "invalid_cursor")


def test_cursor_of_another_sort_order_is_422_invalid_cursor(client, actors):
    cursor = _two_page_feed(client, actors)

    res = client.get(f"/api/v1/wishes?limit=1&sort=newest&cursor={cursor}")

    assert_problem(res, 422, "invalid_cursor")


BAD_REGIONS = ["3505", "35050", "3505051", "35050510", "3505051012", "3505051012011",
               "35050510120a", "３５０５０５", "350505 ", "350505\n", "350505101201\n", ""]


@pytest.mark.parametrize("region", BAD_REGIONS)
def test_region_code_not_6_9_or_12_digits_on_beneficiary_create_is_422(client, app, cw,
                                                                         region):
    with nothing_written(app):
        res = client.post("/api/v1/beneficiaries", headers=cw.headers,
                          json=beneficiary_payload(region_code=region))

    assert "region_code" in assert_problem(res, 422, "validation_error")["errors"]


@pytest.mark.parametrize("region", [r for r in BAD_REGIONS if r.strip()])
def test_region_code_not_6_9_or_12_digits_on_the_feed_is_422(client, region):
    res = client.get("/api/v1/wishes", query_string={"region": region})

    assert "region" in assert_problem(res, 422, "validation_error")["errors"]


@pytest.mark.parametrize("method, path, allowed", [
    ("DELETE", "/api/v1/wishes", {"GET", "POST"}),
    ("PUT", "/api/v1/wishes/wsh_whatever", {"GET", "PATCH"}),
    ("GET", "/api/v1/auth/staff", {"POST"}),
    ("DELETE", "/api/v1/beneficiaries/ben_whatever", {"GET"}),
])
def test_wrong_method_is_405_with_allow_header(client, app, cw, method, path, allowed):
    with nothing_written(app):
        res = client.open(path, method=method, headers=cw.headers)

    assert_problem(res, 405, "method_not_allowed")
    assert allowed <= {m.strip() for m in res.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/nowhere", "/api/v2/wishes"])
def test_unknown_url_is_404_problem_json(client, path):
    assert_problem(client.get(path), 404, "not_found")


@pytest.fixture
def failing_app(app_config):
    """A separate app with test-only routes that fail the way real bugs do."""
    from app import create_app
    from app.extensions import db

    other = create_app(app_config)

    def boom():
        raise RuntimeError('SELECT password_hash FROM users; File "/work/main/app/secret.py"')

    def bad_sql():
        db.session.execute(sa.text("SELECT secret_column FROM no_such_table_here"))

    other.add_url_rule("/api/v1/test-only/boom", "boom", allow(PUBLIC)(boom))
    other.add_url_rule("/api/v1/test-only/bad-sql", "bad_sql", allow(PUBLIC)(bad_sql))
    return other


@pytest.mark.parametrize("path", ["/api/v1/test-only/boom", "/api/v1/test-only/bad-sql"])
def test_500_shows_no_traceback_sql_or_path(failing_app, caplog, path):
    res = failing_app.test_client().get(path)

    body = assert_problem(res, 500, "internal_error")
    text = res.get_data(as_text=True)
    for leak in ("Traceback", "SELECT", "password_hash", "no_such_table", "secret_column",
                 "/work/", ".py", "RuntimeError", "sqlalchemy", "psycopg"):
        assert leak not in text, leak
    # The client gets a request id that finds the full error in the log.
    assert body["request_id"] in body["detail"]
    assert any(body["request_id"] in r.getMessage() and r.exc_info for r in caplog.records)


def test_security_headers_on_every_kind_of_response(client, actors, app):
    cw, mod = actors.caseworker(), actors.moderator()
    wish = actors.open_wish(cw, mod)
    private = [
        client.get("/api/v1/me", headers=cw.headers),
        client.get("/api/v1/staff/wishes", headers=cw.headers),
        client.get(f"/api/v1/wishes/{wish['id']}", headers=cw.headers),
        client.get(f"/api/v1/beneficiaries/{wish['beneficiary_id']}", headers=cw.headers),
        client.get("/api/v1/wishes", headers=cw.headers),
        client.post("/api/v1/auth/wechat", json={"code": "dev:header-check"}),
        client.get("/api/v1/me"),
        client.delete("/api/v1/me"),
    ]
    public = [client.get("/api/v1/wishes"), client.get(f"/api/v1/wishes/{wish['id']}"),
              client.get("/api/v1/openapi.json"), client.get("/api/v1/healthz")]

    for res in private + public:
        assert res.headers["X-Content-Type-Options"] == "nosniff", res.request.path
    for res in private:
        assert res.headers["Cache-Control"] == "no-store", res.request.path
    assert "Authorization" in client.get("/api/v1/wishes").headers["Vary"]

"""A sweep of every public and donor-visible response for the seeded beneficiary's identity.

The beneficiary is seeded with the factory's SECRET_* identity, born in 1950, living in a
12-digit village. Their wishes are put in every state; then the feed (each filter and sort, every
page), each wish card, /me, the login answer and the OpenAPI document are fetched. None of the
secrets, nor the birth year as a value, nor the village code, may appear in any body or header.
Every other route, and every error a donor or the public can provoke on any route, is crawled by
tests/api/test_pii_crawl.py with the same check (assert_clean).
"""
from __future__ import annotations

import json
import re

import pytest

from tests.factories import (
    SECRET_ADDRESS, SECRET_ID_NUMBER, SECRET_NAME, SECRET_PHONE, VILLAGE,
)

API = "/api/v1"
SECRETS = (SECRET_NAME, SECRET_ID_NUMBER, SECRET_PHONE, SECRET_ADDRESS, VILLAGE)
BIRTH_YEAR = 1950


def _forms(secret: str) -> set[str]:
    """The secret as it could appear in a body: clear, or JSON-escaped."""
    return {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}


def _values(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value)
    else:
        yield node


def assert_clean(res, where: str, *, schema_doc: bool = False) -> None:
    """No secret in body or headers; no birth year as a value, nor a `birth_year` key in data
    (the schema document names every field, and a 422 names the unknown fields it was sent)."""
    text = res.get_data(as_text=True)
    headers = "\n".join(f"{k}: {v}" for k, v in res.headers.items())
    for secret in SECRETS:
        for form in _forms(secret):
            assert form not in text, f"{where}: body contains {secret!r}"
            assert form not in headers, f"{where}: headers contain {secret!r}"
    if res.is_json and text:
        for value in _values(res.get_json()):
            assert value not in (BIRTH_YEAR, str(BIRTH_YEAR)), f"{where}: birth year shown"
            assert schema_doc or res.status_code >= 400 or value != "birth_year", \
                f"{where}: birth year field shown"
    assert not re.search(r"\b1950\b", headers), f"{where}: birth year in headers"


@pytest.fixture
def seeded(app, client, actors):
    """The beneficiary with wishes in every state, and who is looking."""
    from app.extensions import db
    from app.wishes.lifecycle import transition
    from app.wishes.models import Wish

    caseworker, moderator = actors.caseworker(), actors.moderator()
    ben = actors.beneficiary(caseworker)  # SECRET_* identity, born 1950, in VILLAGE
    cw = caseworker.headers
    wishes = {
        "open": actors.open_wish(caseworker, moderator, beneficiary_id=ben["id"]),
        "open_service": actors.open_wish(caseworker, moderator, beneficiary_id=ben["id"],
                                         kind="service", title="上门理发"),
        "claimed": actors.open_wish(caseworker, moderator, beneficiary_id=ben["id"],
                                    title="一袋大米"),
        "draft": actors.draft_wish(caseworker, beneficiary_id=ben["id"]),
        "pending": actors.submitted_wish(caseworker, beneficiary_id=ben["id"]),
        "rejected": actors.submitted_wish(caseworker, beneficiary_id=ben["id"]),
        "withdrawn": actors.open_wish(caseworker, moderator, beneficiary_id=ben["id"]),
    }
    client.post(f"{API}/wishes/{wishes['rejected']['id']}/reject", json={"reason": "资料不全"},
                headers=moderator.headers)
    client.post(f"{API}/wishes/{wishes['withdrawn']['id']}/withdraw", headers=cw)
    with app.app_context():
        transition(db.session.get(Wish, wishes["claimed"]["id"]), "claim", None)
        db.session.commit()
    donor = actors.donor()
    return {"ben": ben, "wishes": wishes, "donor": donor}


VIEWERS = ["public", "donor"]


def _headers(seeded, viewer):
    return seeded["donor"].headers if viewer == "donor" else {}


FEED_QUERIES = ["", "?sort=urgency", "?sort=newest", "?kind=goods", "?kind=service",
                "?kind=education", "?level=red", "?level=blue", "?category=elderly",
                "?category=illness", "?category=child", "?region=350505",
                "?region=350505101", f"?region={VILLAGE}", f"?region={VILLAGE}&sort=newest"]


def test_feed_in_every_filter_sort_and_page_shows_no_identity(client, seeded):
    for viewer in VIEWERS:
        _sweep_feed(client, seeded, viewer)


def _sweep_feed(client, seeded, viewer):
    headers = _headers(seeded, viewer)
    seen = set()
    for query in FEED_QUERIES:
        res = client.get(f"{API}/wishes{query}", headers=headers)
        assert res.status_code == 200
        assert_clean(res, f"feed {query}")
        seen |= {w["id"] for w in res.get_json()["items"]}
        cursor = None
        for _ in range(5):  # every page of one-item pages
            sep = "&" if query else "?"
            page = client.get(f"{API}/wishes{query}{sep}limit=1"
                              + (f"&cursor={cursor}" if cursor else ""), headers=headers)
            assert_clean(page, f"feed {query} page")
            cursor = page.get_json()["next_cursor"]
            if cursor is None:
                break
    assert seen == {seeded["wishes"][k]["id"] for k in ("open", "open_service")}


def test_every_wish_card_and_its_404_shows_no_identity(client, seeded):
    for viewer in VIEWERS:
        statuses = {}
        for name, wish in seeded["wishes"].items():
            res = client.get(f"{API}/wishes/{wish['id']}", headers=_headers(seeded, viewer))
            statuses[name] = res.status_code
            assert_clean(res, f"{viewer} card {name}")
        assert statuses == {"open": 200, "open_service": 200, "claimed": 200, "draft": 404,
                            "pending": 404, "rejected": 404, "withdrawn": 404}


def test_donor_profile_login_and_openapi_document_show_no_identity(client, seeded):
    assert_clean(client.get(f"{API}/me", headers=seeded["donor"].headers), "/me")
    assert_clean(client.post(f"{API}/auth/wechat", json={"code": "dev:another"}), "login")
    res = client.get(f"{API}/openapi.json")
    assert res.status_code == 200
    assert_clean(res, "openapi", schema_doc=True)


def test_the_scan_would_catch_a_leak(client, actors):
    """The same check, pointed at a staff reveal, does find the identity: the sweep can fail."""
    caseworker = actors.caseworker()
    ben = actors.beneficiary(caseworker)
    res = client.get(f"{API}/beneficiaries/{ben['id']}?reveal=true", headers=caseworker.headers)
    with pytest.raises(AssertionError):
        assert_clean(res, "staff reveal")

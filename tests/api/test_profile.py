"""PATCH /me: a donor's nickname, and what the open ledger shows of it."""
from __future__ import annotations

import uuid

import pytest


def _patch(client, actor, body):
    return client.patch("/api/v1/me", json=body, headers=actor.headers)


def test_donor_sets_a_nickname_and_a_named_claim_shows_its_first_character(client, actors, app):
    from tests.api.test_claims import _deliver

    donor = actors.donor()
    res = _patch(client, donor, {"display_name": "  黄  小燕 "})
    assert res.status_code == 200 and res.get_json()["display_name"] == "黄 小燕"
    assert client.get("/api/v1/me", headers=donor.headers).get_json()["display_name"] == "黄 小燕"

    caseworker, moderator = actors.caseworker(), actors.moderator()
    wish = actors.open_wish(caseworker, moderator)
    claim = client.post(f"/api/v1/wishes/{wish['id']}/claims", json={"anonymous": False},
                        headers={**donor.headers, "Idempotency-Key": str(uuid.uuid4())})
    _deliver(app, claim.get_json()["id"])
    assert client.post(f"/api/v1/claims/{claim.get_json()['id']}/confirm",
                       headers=caseworker.headers).status_code == 200
    # A later rename changes nothing already in the ledger.
    assert _patch(client, donor, {"display_name": "周先生"}).status_code == 200
    items = client.get("/api/v1/ledger/entries").get_json()["items"]
    assert [item["entry"]["donor"] for item in items] == ["黄*"]


@pytest.mark.parametrize("name, code", [
    ("13905951234", "pii_in_text"),
    ("张 350505195207150025", "pii_in_text"),
    ("   ", "validation_error"),
    ("", "validation_error"),
    ("长" * 33, "validation_error"),
])
def test_bad_nicknames_are_refused_and_change_nothing(client, actors, name, code):
    donor = actors.donor("原来的名字")
    res = _patch(client, donor, {"display_name": name})
    assert res.status_code == 422 and res.get_json()["code"] == code, res.get_json()
    assert "display_name" in res.get_json()["errors"]
    assert client.get("/api/v1/me", headers=donor.headers).get_json()["display_name"] == "原来的名字"


def test_profile_fields_that_are_not_the_callers_to_set_are_422(client, actors):
    donor = actors.donor()
    res = _patch(client, donor, {"role": "admin", "display_name": "x"})
    assert res.status_code == 422 and set(res.get_json()["errors"]) == {"role"}
    assert client.get("/api/v1/me", headers=donor.headers).get_json()["role"] == "donor"


def test_nickname_needs_a_token(client):
    res = client.patch("/api/v1/me", json={"display_name": "匿名"})
    assert res.status_code == 401 and res.get_json()["code"] == "invalid_token"

"""Wishes through the HTTP API: writing, editing, submitting (consent and PII checks), the
lifecycle's legal and illegal moves, its audit trail, and who may see which view of a wish."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.factories import (
    OTHER_TOWN, SECRET_ID_NUMBER, SECRET_NAME, SECRET_PHONE, wish_payload,
)

API = "/api/v1"
PUBLIC_CARD_KEYS = {"id", "title", "story", "kind", "item", "estimated_value_fen", "level",
                    "categories", "alias", "age_band", "region_code", "status", "published_at",
                    "due_at", "fulfilled_at"}


def staff_view(client, actor, wish_id) -> dict:
    res = client.get(f"{API}/wishes/{wish_id}", headers=actor.headers)
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def trail(client, actor, wish_id) -> list[dict]:
    res = client.get(f"{API}/wishes/{wish_id}/transitions", headers=actor.headers)
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def act(client, actor, wish_id, action, **body):
    return client.post(f"{API}/wishes/{wish_id}/{action}", headers=actor.headers,
                       json=body or None)


@pytest.fixture
def staff(actors):
    return actors.caseworker(), actors.moderator()


# --- writing ------------------------------------------------------------------------------------

def test_create_gives_201_draft_in_the_beneficiarys_region(client, actors, staff):
    caseworker, _ = staff
    ben = actors.beneficiary(caseworker)
    res = client.post(f"{API}/wishes", json=wish_payload(ben["id"]), headers=caseworker.headers)
    assert res.status_code == 201, res.get_json()
    wish = res.get_json()
    assert wish["status"] == "draft"
    assert wish["region_code"] == ben["region_code"]
    assert wish["author_id"] == caseworker.id
    assert wish["published_at"] is None
    assert wish["level"] == "red" and wish["categories"] == ["illness", "elderly"]
    assert wish["id"].startswith("wsh_")


@pytest.mark.parametrize("field, value", [
    ("status", "open"), ("region_code", "350505105202"), ("approved_by", "usr_x"),
    ("published_at", "2026-01-01T00:00:00Z"), ("hidden", False), ("colour", "red"),
])
def test_unknown_or_server_owned_field_is_422_naming_it(app, client, staff, actors, field, value):
    caseworker, _ = staff
    ben = actors.beneficiary(caseworker)
    res = client.post(f"{API}/wishes", json=wish_payload(ben["id"], **{field: value}),
                      headers=caseworker.headers)
    assert res.status_code == 422
    assert field in res.get_json()["errors"]
    from app.extensions import db
    with app.app_context():
        assert db.session.execute(sa.text("SELECT count(*) FROM wishes")).scalar_one() == 0


def test_donor_and_moderator_cannot_create_wishes(client, actors, staff):
    caseworker, moderator = staff
    ben = actors.beneficiary(caseworker)
    for actor in (actors.donor(), moderator):
        res = client.post(f"{API}/wishes", json=wish_payload(ben["id"]), headers=actor.headers)
        assert res.status_code == 403


def test_create_for_beneficiary_out_of_scope_is_refused(client, actors, staff):
    caseworker, _ = staff
    ben = actors.beneficiary(caseworker)
    other = actors.caseworker([OTHER_TOWN])
    res = client.post(f"{API}/wishes", json=wish_payload(ben["id"]), headers=other.headers)
    assert res.status_code == 422
    assert "beneficiary_id" in res.get_json()["errors"]


def test_author_can_edit_a_draft(client, actors, staff):
    caseworker, _ = staff
    wish = actors.draft_wish(caseworker)
    res = client.patch(f"{API}/wishes/{wish['id']}", json={"title": "一台电动轮椅",
                                                           "estimated_value_fen": 150000},
                       headers=caseworker.headers)
    assert res.status_code == 200, res.get_json()
    assert (res.get_json()["title"], res.get_json()["estimated_value_fen"]) == ("一台电动轮椅", 150000)


def test_another_caseworker_of_the_same_town_cannot_edit(client, actors, staff):
    caseworker, _ = staff
    wish = actors.draft_wish(caseworker)
    colleague = actors.caseworker()
    res = client.patch(f"{API}/wishes/{wish['id']}", json={"title": "改掉的标题"},
                       headers=colleague.headers)
    assert res.status_code == 403
    assert staff_view(client, caseworker, wish["id"])["title"] == wish["title"]


def test_patch_with_server_owned_field_is_422(client, actors, staff):
    caseworker, _ = staff
    wish = actors.draft_wish(caseworker)
    res = client.patch(f"{API}/wishes/{wish['id']}", json={"status": "open"},
                       headers=caseworker.headers)
    assert res.status_code == 422 and "status" in res.get_json()["errors"]
    assert staff_view(client, caseworker, wish["id"])["status"] == "draft"


@pytest.mark.parametrize("state", ["pending_review", "open", "withdrawn"])
def test_edit_outside_draft_or_rejected_is_409_and_changes_nothing(client, actors, staff, state):
    caseworker, moderator = staff
    wish = actors.submitted_wish(caseworker)
    if state in ("open", "withdrawn"):
        act(client, moderator, wish["id"], "approve")
    if state == "withdrawn":
        act(client, moderator, wish["id"], "withdraw")
    res = client.patch(f"{API}/wishes/{wish['id']}", json={"title": "改掉的标题"},
                       headers=caseworker.headers)
    assert res.status_code == 409
    assert res.get_json()["code"] == "invalid_transition"
    after = staff_view(client, caseworker, wish["id"])
    assert (after["status"], after["title"]) == (state, wish["title"])


# --- submitting ---------------------------------------------------------------------------------

def test_submit_without_publication_consent_is_422_consent_missing(client, actors, staff):
    caseworker, _ = staff
    ben = actors.beneficiary(caseworker, consents=[
        {"kind": "sensitive_data", "given_by": "self", "notice_version": "2026-01"}])
    wish = actors.draft_wish(caseworker, beneficiary_id=ben["id"])
    res = act(client, caseworker, wish["id"], "submit")
    assert res.status_code == 422
    assert res.get_json()["code"] == "consent_missing"
    assert staff_view(client, caseworker, wish["id"])["status"] == "draft"


@pytest.mark.parametrize("planted, kind", [
    (SECRET_PHONE, "phone"),
    ("138 0595 1234", "phone"),
    (SECRET_ID_NUMBER, "id_number"),
    ("6222021234567890128", "bank_card"),  # Luhn-valid, 19 digits
    (SECRET_NAME, "real_name"),
])
def test_draft_with_personal_data_in_story_is_422_naming_the_span(client, actors, staff,
                                                                  planted, kind):
    caseworker, _ = staff
    ben = actors.beneficiary(caseworker)
    story = f"阿婆腿脚不便，需要一台轮椅。联系：{planted}，谢谢。"
    res = client.post(f"{API}/wishes", json=wish_payload(ben["id"], story=story),
                      headers=caseworker.headers)
    assert res.status_code == 422
    body = res.get_json()
    assert body["code"] == "pii_in_text"
    assert list(body["errors"]) == ["story"]
    [finding] = body["errors"]["story"]
    assert finding["kind"] == kind
    assert story[finding["start"]:finding["end"]] == planted
    assert planted not in res.get_data(as_text=True)
    listed = client.get(f"{API}/staff/wishes", headers=caseworker.headers).get_json()
    assert listed["items"] == []


def test_pii_in_title_and_item_is_reported_per_field(client, actors, staff):
    caseworker, _ = staff
    wish = actors.draft_wish(caseworker)
    body = client.patch(f"{API}/wishes/{wish['id']}", headers=caseworker.headers, json={
        "title": f"给{SECRET_NAME}的轮椅", "item": f"轮椅 寄{SECRET_PHONE}"}).get_json()
    assert body["code"] == "pii_in_text"
    assert {f: [(h["kind"], h["start"], h["end"]) for h in hits]
            for f, hits in body["errors"].items()} == {
        "title": [("real_name", 1, 4)], "item": [("phone", 4, 15)]}


# --- the lifecycle ------------------------------------------------------------------------------

def test_approve_opens_the_wish_with_published_at(client, actors, staff):
    caseworker, moderator = staff
    wish = actors.submitted_wish(caseworker)
    assert wish["status"] == "pending_review" and wish["submitted_at"]
    res = act(client, moderator, wish["id"], "approve")
    assert res.status_code == 200
    opened = res.get_json()
    assert opened["status"] == "open" and opened["published_at"].endswith("Z")
    assert opened["approved_by"] == moderator.id
    assert client.get(f"{API}/wishes/{wish['id']}").status_code == 200


def test_reject_edit_resubmit_approve_then_withdraw(client, actors, staff):
    caseworker, moderator = staff
    wish = actors.submitted_wish(caseworker)
    assert act(client, moderator, wish["id"], "reject").status_code == 422  # reason required
    res = act(client, moderator, wish["id"], "reject", reason="照片与描述不符，请补充说明")
    assert res.status_code == 200
    assert (res.get_json()["status"], res.get_json()["reject_reason"]) == (
        "rejected", "照片与描述不符，请补充说明")

    res = client.patch(f"{API}/wishes/{wish['id']}", json={"story": "阿婆腿脚不便，需要一台轻便轮椅去卫生院。"},
                       headers=caseworker.headers)
    assert res.status_code == 200
    res = act(client, caseworker, wish["id"], "submit")
    assert res.status_code == 200 and res.get_json()["status"] == "pending_review"
    assert act(client, moderator, wish["id"], "approve").get_json()["status"] == "open"
    res = act(client, caseworker, wish["id"], "withdraw", reason="已由亲属解决")
    assert res.status_code == 200 and res.get_json()["status"] == "withdrawn"
    assert client.get(f"{API}/wishes/{wish['id']}").status_code == 404

    steps = trail(client, moderator, wish["id"])
    assert [(s["from_status"], s["to_status"], s["action"]) for s in steps] == [
        (None, "draft", "create"),
        ("draft", "pending_review", "submit"),
        ("pending_review", "rejected", "reject"),
        ("rejected", "pending_review", "submit"),
        ("pending_review", "open", "approve"),
        ("open", "withdrawn", "withdraw"),
    ]
    actors_of = [s["actor_id"] for s in steps]
    assert actors_of == [caseworker.id, caseworker.id, moderator.id, caseworker.id,
                         moderator.id, caseworker.id]
    assert steps[2]["reason"] == "照片与描述不符，请补充说明"
    assert steps[5]["reason"] == "已由亲属解决"
    assert all(s["at"].endswith("Z") for s in steps)
    assert [s["at"] for s in steps] == sorted(s["at"] for s in steps)


# state -> actions that must be refused there (edit is checked separately)
ILLEGAL = {
    "draft": ["approve", "reject", "withdraw"],
    "pending_review": ["submit", "withdraw"],
    "open": ["submit", "approve", "reject"],
    "rejected": ["approve", "reject", "withdraw"],
    "withdrawn": ["submit", "approve", "reject", "withdraw"],
}


def _wish_in(client, actors, caseworker, moderator, state) -> dict:
    if state == "draft":
        return actors.draft_wish(caseworker)
    wish = actors.submitted_wish(caseworker)
    if state == "rejected":
        act(client, moderator, wish["id"], "reject", reason="资料不全")
    elif state in ("open", "withdrawn"):
        act(client, moderator, wish["id"], "approve")
        if state == "withdrawn":
            act(client, moderator, wish["id"], "withdraw")
    return wish


@pytest.mark.parametrize("state", list(ILLEGAL))
def test_illegal_moves_are_409_and_change_nothing(client, actors, staff, state):
    caseworker, moderator = staff
    wish = _wish_in(client, actors, caseworker, moderator, state)
    before = staff_view(client, moderator, wish["id"])
    steps = trail(client, moderator, wish["id"])
    for action in ILLEGAL[state]:
        actor = caseworker if action in ("submit", "withdraw") else moderator
        res = act(client, actor, wish["id"], action,
                  **({"reason": "不合规"} if action == "reject" else {}))
        assert res.status_code == 409, (action, res.get_json())
        assert res.get_json()["code"] == "invalid_transition"
        assert res.get_json()["current_status"] == state
        assert staff_view(client, moderator, wish["id"]) == before, action
        assert trail(client, moderator, wish["id"]) == steps, action


def test_transitions_are_for_staff_in_scope_only(client, actors, staff):
    caseworker, moderator = staff
    wish = actors.open_wish(caseworker, moderator)
    path = f"{API}/wishes/{wish['id']}/transitions"
    assert client.get(path, headers=caseworker.headers).status_code == 200
    assert client.get(path, headers=moderator.headers).status_code == 200
    assert client.get(path, headers=actors.caseworker([OTHER_TOWN]).headers).status_code == 404
    assert client.get(path, headers=actors.donor().headers).status_code == 403
    assert client.get(path).status_code == 401


def test_moderator_cannot_approve_a_wish_they_wrote(client, actors):
    writer = actors.caseworker()
    wish = actors.submitted_wish(writer)
    admin = actors.admin()
    res = client.patch(f"{API}/staff/{writer.id}", json={"role": "moderator"},
                       headers=admin.headers)
    assert res.status_code == 200, res.get_json()
    assert client.get(f"{API}/me", headers=writer.headers).status_code == 401  # old token gone
    login = client.post(f"{API}/auth/staff", json={"username": writer.username,
                                                   "password": "correct horse battery staple"})
    assert login.get_json()["user"]["role"] == "moderator"
    as_moderator = {"Authorization": f"Bearer {login.get_json()['access_token']}"}

    res = client.post(f"{API}/wishes/{wish['id']}/approve", headers=as_moderator)
    assert res.status_code == 403
    assert res.get_json()["code"] == "self_approval"
    other = actors.moderator()
    assert staff_view(client, other, wish["id"])["status"] == "pending_review"
    assert act(client, other, wish["id"], "approve").status_code == 200


# --- reading a wish -----------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["draft", "pending_review", "rejected", "withdrawn"])
def test_unpublished_wish_is_404_to_public_and_donors(client, actors, staff, state):
    caseworker, moderator = staff
    wish = _wish_in(client, actors, caseworker, moderator, state)
    for headers in ({}, actors.donor().headers):
        res = client.get(f"{API}/wishes/{wish['id']}", headers=headers)
        assert res.status_code == 404
        assert res.get_json()["code"] == "not_found"
    assert client.get(f"{API}/wishes/wsh_doesnotexist").status_code == 404


def test_published_wish_shows_the_allowlist_card_to_public_and_donors(client, actors, staff):
    caseworker, moderator = staff
    wish = actors.open_wish(caseworker, moderator)
    public = client.get(f"{API}/wishes/{wish['id']}")
    donor = client.get(f"{API}/wishes/{wish['id']}", headers=actors.donor().headers)
    assert public.status_code == donor.status_code == 200
    assert set(public.get_json()) == PUBLIC_CARD_KEYS
    assert donor.get_json() == public.get_json()
    card = public.get_json()
    assert card["region_code"] == "350505101" and card["alias"] == "林阿婆"
    assert card["age_band"] and card["status"] == "open"


def test_staff_in_scope_get_the_full_record_and_others_at_most_the_card(client, actors, staff):
    caseworker, moderator = staff
    draft = actors.draft_wish(caseworker)
    full = staff_view(client, caseworker, draft["id"])
    assert {"beneficiary_id", "author_id", "created_at", "hidden"} <= set(full)
    assert full["region_code"] == "350505101201"
    outsider = actors.caseworker([OTHER_TOWN])
    assert client.get(f"{API}/wishes/{draft['id']}", headers=outsider.headers).status_code == 404

    opened = actors.open_wish(caseworker, moderator)
    res = client.get(f"{API}/wishes/{opened['id']}", headers=outsider.headers)
    assert res.status_code == 200 and set(res.get_json()) == PUBLIC_CARD_KEYS
    assert staff_view(client, moderator, opened["id"])["beneficiary_id"]

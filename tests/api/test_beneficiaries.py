"""Beneficiaries through the HTTP API: masked reads, audited reveals, consent rules, encryption at
rest, region scope, and what withdrawing consent does to their wishes and identity."""
from __future__ import annotations

import sqlalchemy as sa

from tests.factories import (
    OTHER_TOWN, OTHER_VILLAGE, SECRET_ADDRESS, SECRET_ID_NUMBER, SECRET_NAME, SECRET_PHONE,
    beneficiary_payload, id_number,
)

API = "/api/v1"
CHILD_CONSENTS = [
    {"kind": kind, "given_by": "guardian", "relation": "母亲", "notice_version": "2026-01"}
    for kind in ("sensitive_data", "publication", "guardian")
]


def _post(client, actor, **overrides):
    return client.post(f"{API}/beneficiaries", json=beneficiary_payload(**overrides),
                       headers=actor.headers)


def _count(app, table: str) -> int:
    from app.extensions import db
    with app.app_context():
        return db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


# --- create -------------------------------------------------------------------------------------

def test_create_returns_201_with_identity_masked(client, actors):
    caseworker = actors.caseworker()
    res = _post(client, caseworker)
    assert res.status_code == 201, res.get_json()
    body = res.get_json()
    assert body["real_name"] == "林*"
    assert body["id_number"] == "3505**********1230"
    assert body["phone"] == "138****1234"
    assert body["address"].endswith("****") and SECRET_ADDRESS not in body["address"]
    assert body["revealed"] is False
    text = res.get_data(as_text=True)
    for secret in (SECRET_NAME, SECRET_ID_NUMBER, SECRET_PHONE, SECRET_ADDRESS):
        assert secret not in text
    assert body["assessment"] == {"categories": ["elderly", "illness"], "level": "red"}
    assert body["id"].startswith("ben_")


def test_identity_columns_hold_ciphertext_not_clear_text(app, client, actors):
    from app.extensions import db

    ben = actors.beneficiary(actors.caseworker())
    with app.app_context():
        row = db.session.execute(sa.text(
            "SELECT real_name_enc, id_number_enc, phone_enc, address_enc FROM beneficiaries "
            "WHERE id = :id"), {"id": ben["id"]}).one()
    stored = b"".join(bytes(col) for col in row)
    assert all(col is not None and len(bytes(col)) > 17 for col in row)
    for secret in (SECRET_NAME, SECRET_ID_NUMBER, SECRET_PHONE, SECRET_ADDRESS):
        assert secret.encode() not in stored
        assert secret.encode("utf-16-le") not in stored


def test_consent_records_keep_kind_giver_relation_notice_collector_and_time(app, client, actors):
    from app.beneficiaries.models import Consent
    from app.extensions import db

    caseworker = actors.caseworker()
    consents = [
        {"kind": "sensitive_data", "given_by": "self", "notice_version": "2026-01"},
        {"kind": "publication", "given_by": "guardian", "relation": "儿子",
         "notice_version": "2026-02"},
    ]
    ben = actors.beneficiary(caseworker, consents=consents)
    assert [(c["kind"], c["given_by"], c["relation"], c["notice_version"], c["collected_by"])
            for c in ben["consents"]] == [
        ("sensitive_data", "self", None, "2026-01", caseworker.id),
        ("publication", "guardian", "儿子", "2026-02", caseworker.id),
    ]
    assert all(c["collected_at"].endswith("Z") for c in ben["consents"])
    with app.app_context():
        rows = db.session.execute(sa.select(Consent).where(
            Consent.beneficiary_id == ben["id"]).order_by(Consent.id)).scalars().all()
        assert [(r.kind, r.given_by, r.relation, r.notice_version, r.collected_by)
                for r in rows] == [
            ("sensitive_data", "self", None, "2026-01", caseworker.id),
            ("publication", "guardian", "儿子", "2026-02", caseworker.id),
        ]
        assert all(r.collected_at is not None and r.withdrawn_at is None for r in rows)


def test_child_without_guardian_consent_is_422_guardian_consent_required(app, client, actors):
    res = _post(client, actors.caseworker(), birth_year=2016, id_number=id_number("20160101"))
    assert res.status_code == 422
    assert res.get_json()["code"] == "guardian_consent_required"
    assert _count(app, "beneficiaries") == 0


def test_child_with_consent_given_by_self_is_refused(client, actors):
    consents = CHILD_CONSENTS[:2] + [
        {"kind": "guardian", "given_by": "self", "notice_version": "2026-01"}]
    res = _post(client, actors.caseworker(), birth_year=2016, consents=consents)
    assert res.status_code == 422
    assert res.get_json()["code"] == "guardian_consent_required"


def test_child_with_guardian_consent_is_recorded(client, actors):
    res = _post(client, actors.caseworker(), birth_year=2016, id_number=id_number("20160101"),
                alias="小林", consents=CHILD_CONSENTS,
                assessment={"categories": ["child", "education"], "level": "orange"})
    assert res.status_code == 201, res.get_json()
    guardian = [c for c in res.get_json()["consents"] if c["kind"] == "guardian"]
    assert guardian[0]["given_by"] == "guardian" and guardian[0]["relation"] == "母亲"


def test_missing_sensitive_data_consent_is_422(app, client, actors):
    res = _post(client, actors.caseworker(), consents=[
        {"kind": "publication", "given_by": "self", "notice_version": "2026-01"}])
    assert res.status_code == 422
    assert "consents" in res.get_json()["errors"]
    assert _count(app, "beneficiaries") == 0


def test_id_number_with_wrong_check_character_is_422(app, client, actors):
    wrong = SECRET_ID_NUMBER[:-1] + ("1" if SECRET_ID_NUMBER[-1] != "1" else "2")
    res = _post(client, actors.caseworker(), id_number=wrong)
    assert res.status_code == 422
    assert "id_number" in res.get_json()["errors"]
    assert wrong not in res.get_data(as_text=True)
    assert _count(app, "beneficiaries") == 0


def test_create_in_region_outside_scope_is_403(app, client, actors):
    res = _post(client, actors.caseworker(), region_code=OTHER_VILLAGE)
    assert res.status_code == 403
    assert res.get_json()["code"] == "forbidden"
    assert _count(app, "beneficiaries") == 0


def test_donor_cannot_create_or_read_beneficiaries(client, actors):
    ben = actors.beneficiary(actors.caseworker())
    donor = actors.donor()
    assert _post(client, donor).status_code == 403
    res = client.get(f"{API}/beneficiaries/{ben['id']}", headers=donor.headers)
    assert res.status_code == 403
    assert client.get(f"{API}/beneficiaries/{ben['id']}").status_code == 401


def test_caseworker_of_another_town_gets_404_on_read_and_reveal(client, actors):
    ben = actors.beneficiary(actors.caseworker())
    other = actors.caseworker([OTHER_TOWN])
    for path in (f"/beneficiaries/{ben['id']}", f"/beneficiaries/{ben['id']}?reveal=true",
                 f"/beneficiaries/{ben['id']}/access-log"):
        res = client.get(API + path, headers=other.headers)
        assert res.status_code == 404, path
        assert res.get_json()["code"] == "not_found"
    res = client.post(f"{API}/beneficiaries/{ben['id']}/withdraw-consent", headers=other.headers)
    assert res.status_code == 404


# --- reads and reveals --------------------------------------------------------------------------

def test_masked_read_writes_no_access_audit_row(client, actors):
    caseworker = actors.caseworker()
    ben = actors.beneficiary(caseworker)
    res = client.get(f"{API}/beneficiaries/{ben['id']}", headers=caseworker.headers)
    assert res.status_code == 200
    assert res.get_json()["real_name"] == "林*"
    log = client.get(f"{API}/beneficiaries/{ben['id']}/access-log", headers=caseworker.headers)
    assert log.status_code == 200 and log.get_json() == []


def test_reveal_shows_clear_identity_and_writes_one_audit_row(client, actors):
    caseworker = actors.caseworker()
    moderator = actors.moderator()
    ben = actors.beneficiary(caseworker)
    res = client.get(f"{API}/beneficiaries/{ben['id']}?reveal=true&purpose=核实身份",
                     headers=moderator.headers)
    assert res.status_code == 200
    body = res.get_json()
    assert (body["real_name"], body["id_number"], body["phone"], body["address"]) == (
        SECRET_NAME, SECRET_ID_NUMBER, SECRET_PHONE, SECRET_ADDRESS)
    assert body["revealed"] is True
    assert res.headers["Cache-Control"] == "no-store"

    log = client.get(f"{API}/beneficiaries/{ben['id']}/access-log",
                     headers=caseworker.headers).get_json()
    assert len(log) == 1
    assert log[0]["actor_id"] == moderator.id
    assert log[0]["at"].endswith("Z")
    assert log[0]["purpose"] == "核实身份"
    assert set(log[0]["fields"]) == {"real_name", "id_number", "phone", "address"}


def test_list_shows_no_identity_and_only_own_region(client, actors):
    caseworker = actors.caseworker()
    other = actors.caseworker([OTHER_TOWN])
    mine = actors.beneficiary(caseworker)
    theirs = actors.beneficiary(other, region_code=OTHER_VILLAGE, alias="陈阿公")
    res = client.get(f"{API}/beneficiaries", headers=caseworker.headers)
    assert res.status_code == 200
    assert [b["id"] for b in res.get_json()["items"]] == [mine["id"]]
    assert SECRET_NAME not in res.get_data(as_text=True)
    everyone = client.get(f"{API}/beneficiaries", headers=actors.moderator().headers).get_json()
    assert {b["id"] for b in everyone["items"]} == {mine["id"], theirs["id"]}


# --- withdrawal of consent ----------------------------------------------------------------------

def test_withdraw_consent_erases_identity_and_replaces_alias(app, client, actors):
    caseworker = actors.caseworker()
    ben = actors.beneficiary(caseworker)
    res = client.post(f"{API}/beneficiaries/{ben['id']}/withdraw-consent",
                      headers=caseworker.headers)
    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    assert body["erased"] is True and body["consent_withdrawn_at"].endswith("Z")
    assert body["alias"] != "林阿婆" and "林" not in body["alias"]
    assert all(c["withdrawn_at"] for c in body["consents"])

    revealed = client.get(f"{API}/beneficiaries/{ben['id']}?reveal=true",
                          headers=caseworker.headers).get_json()
    assert [revealed[f] for f in ("real_name", "id_number", "phone", "address")] == [None] * 4
    assert revealed["revealed"] is False
    assert revealed["birth_year"] is None
    log = client.get(f"{API}/beneficiaries/{ben['id']}/access-log", headers=caseworker.headers)
    assert log.get_json() == []  # nothing left to see, nothing audited
    from app.extensions import db
    with app.app_context():
        row = db.session.execute(sa.text(
            "SELECT real_name_enc, id_number_enc, phone_enc, address_enc FROM beneficiaries "
            "WHERE id = :id"), {"id": ben["id"]}).one()
    assert tuple(row) == (None, None, None, None)


def test_withdraw_consent_takes_every_wish_out_of_public_view_at_once(client, actors):
    caseworker = actors.caseworker()
    moderator = actors.moderator()
    ben = actors.beneficiary(caseworker)
    first = actors.open_wish(caseworker, moderator, beneficiary_id=ben["id"])
    second = actors.open_wish(caseworker, moderator, beneficiary_id=ben["id"], title="一袋大米")
    draft = actors.draft_wish(caseworker, beneficiary_id=ben["id"], title="一台收音机")
    bystander = actors.open_wish(caseworker, moderator)  # another beneficiary

    before = client.get(f"{API}/wishes")  # now cached
    assert {w["id"] for w in before.get_json()["items"]} == {
        first["id"], second["id"], bystander["id"]}

    res = client.post(f"{API}/beneficiaries/{ben['id']}/withdraw-consent",
                      headers=caseworker.headers)
    assert res.status_code == 200

    after = client.get(f"{API}/wishes")
    assert [w["id"] for w in after.get_json()["items"]] == [bystander["id"]]
    assert after.headers["ETag"] != before.headers["ETag"]
    donor = actors.donor()
    for wish in (first, second, draft):
        assert client.get(f"{API}/wishes/{wish['id']}").status_code == 404
        assert client.get(f"{API}/wishes/{wish['id']}", headers=donor.headers).status_code == 404
    for wish in (first, second):
        staff_view = client.get(f"{API}/wishes/{wish['id']}", headers=caseworker.headers)
        assert staff_view.get_json()["status"] == "withdrawn"
        trail = client.get(f"{API}/wishes/{wish['id']}/transitions",
                           headers=caseworker.headers).get_json()
        assert (trail[-1]["from_status"], trail[-1]["to_status"]) == ("open", "withdrawn")
        assert trail[-1]["actor_id"] == caseworker.id and trail[-1]["reason"]

    submit = client.post(f"{API}/wishes/{draft['id']}/submit", headers=caseworker.headers)
    assert submit.status_code == 422
    assert submit.get_json()["code"] == "consent_missing"
    assert client.get(f"{API}/wishes/{draft['id']}",
                      headers=caseworker.headers).get_json()["status"] == "draft"


def test_no_new_wish_for_a_beneficiary_who_withdrew_consent(client, actors):
    caseworker = actors.caseworker()
    ben = actors.beneficiary(caseworker)
    client.post(f"{API}/beneficiaries/{ben['id']}/withdraw-consent", headers=caseworker.headers)
    res = client.post(f"{API}/wishes", headers=caseworker.headers, json={
        "beneficiary_id": ben["id"], "title": "一台轮椅", "story": "阿婆腿脚不便，需要一台轮椅出门。",
        "kind": "goods", "estimated_value_fen": 80000})
    assert res.status_code == 422
    assert res.get_json()["code"] == "consent_missing"


def test_pending_wish_of_withdrawn_beneficiary_is_rejected_and_cannot_be_published(client,
                                                                                  actors):
    caseworker = actors.caseworker()
    moderator = actors.moderator()
    ben = actors.beneficiary(caseworker)
    wish = actors.submitted_wish(caseworker, beneficiary_id=ben["id"])
    client.post(f"{API}/beneficiaries/{ben['id']}/withdraw-consent", headers=caseworker.headers)

    queue = client.get(f"{API}/moderation/wishes", headers=moderator.headers).get_json()
    assert queue["items"] == []
    res = client.post(f"{API}/wishes/{wish['id']}/approve", headers=moderator.headers)
    assert res.status_code == 409 and res.get_json()["code"] == "invalid_transition"
    trail = client.get(f"{API}/wishes/{wish['id']}/transitions",
                       headers=moderator.headers).get_json()
    assert (trail[-1]["from_status"], trail[-1]["to_status"]) == ("pending_review", "rejected")
    assert client.get(f"{API}/wishes/{wish['id']}").status_code == 404
    assert client.get(f"{API}/wishes").get_json()["items"] == []

"""Personal data in text another person sees, route by route: the public alias, a wish's text on
every write, reject, withdrawal and dispute reasons, notes on proofs, disbursement purposes.

Every route refuses with 422 `pii_in_text` naming the field, changes nothing, and sends nothing;
a dodged number or name (full-width digits, spaces, separators, zero-width characters) is caught
the same. The rules themselves are table-tested in tests/services/test_pii_scan.py.
"""
from __future__ import annotations

import base64
import io
import uuid

import pytest
from sqlalchemy import func, select

from app.extensions import db
from tests.factories import (
    SECRET_ADDRESS, SECRET_ID_NUMBER, SECRET_NAME, SECRET_PHONE, beneficiary_payload, wish_payload,
)
from tests.media.conftest import encode, scene

API = "/api/v1"
FULL_WIDTH_PHONE = SECRET_PHONE.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
SPACED_NAME = f"{SECRET_NAME[0]} {SECRET_NAME[1:]}"                       # 林 秀英
ZERO_WIDTH_NAME = "\u200b".join(SECRET_NAME)                              # 林​秀​英
DASHED_PHONE = f"{SECRET_PHONE[:3]}-{SECRET_PHONE[3:7]}.{SECRET_PHONE[7:]}"  # 138-0595.1234


@pytest.fixture
def staff(actors):
    return actors.caseworker(), actors.moderator()


def _refused(res, field: str) -> dict:
    assert res.status_code == 422, res.get_data(as_text=True)
    body = res.get_json()
    assert body["code"] == "pii_in_text" and list(body["errors"]) == [field], body
    return body


# --- the alias -----------------------------------------------------------------------------------

def _record(client, caseworker, **overrides):
    return client.post(f"{API}/beneficiaries", json=beneficiary_payload(**overrides),
                       headers=caseworker.headers)


def _beneficiaries(app) -> int:
    from app.beneficiaries.models import Beneficiary

    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Beneficiary)).scalar_one()


def test_alias_equal_to_real_name_is_refused(client, app, staff):
    res = _record(client, staff[0], alias=SECRET_NAME)
    body = _refused(res, "alias")
    assert body["errors"]["alias"][0]["kind"] == "real_name"
    assert SECRET_NAME not in res.get_data(as_text=True)
    assert _beneficiaries(app) == 0


@pytest.mark.parametrize("alias", [
    SECRET_NAME[1:],                 # the given name: 秀英
    f"{SECRET_NAME[1:]}阿婆",         # 秀英阿婆
    f"{SECRET_NAME}阿婆",             # the full name with the surname
    SPACED_NAME,                     # 林 秀英
    ZERO_WIDTH_NAME,                 # zero-width spaces between the characters
    "林·秀·英",
])
def test_alias_with_the_real_name_or_its_given_name_is_refused(client, app, staff, alias):
    _refused(_record(client, staff[0], alias=alias), "alias")
    assert _beneficiaries(app) == 0


def test_alias_with_a_one_character_given_name_is_refused(client, staff):
    _refused(_record(client, staff[0], real_name="王芳", alias="阿芳"), "alias")


@pytest.mark.parametrize("alias, kind", [
    (f"阿婆{SECRET_PHONE}", "phone"),
    (f"阿婆{FULL_WIDTH_PHONE}", "phone"),
    (f"阿婆{SECRET_PHONE[-4:]}", "phone"),       # the tail of her phone number
    ("阿婆1950", "id_number"),                    # her birth year, part of her ID number
    (f"阿婆{SECRET_ID_NUMBER[-6:]}", "id_number"),
    ("东张村阿婆", "address"),                     # her village, finer than the public town
])
def test_alias_with_part_of_the_phone_id_number_or_address_is_refused(client, staff, alias, kind):
    body = _refused(_record(client, staff[0], alias=alias), "alias")
    assert [f["kind"] for f in body["errors"]["alias"]] == [kind]


@pytest.mark.parametrize("alias", ["林阿婆", "阿婆", "英姨", "3号楼阿婆"])
def test_an_alias_with_the_surname_alone_or_no_identity_is_accepted(client, staff, alias):
    res = _record(client, staff[0], alias=alias)
    assert res.status_code == 201, res.get_json()
    assert res.get_json()["alias"] == alias


# --- the ledger carries no alias -----------------------------------------------------------------

def _ledger(client) -> list[dict]:
    return [item["entry"] for item in
            client.get(f"{API}/ledger/entries?limit=1000").get_json()["items"]]


def test_ledger_entry_has_no_alias(client, actors, staff):
    caseworker, moderator = staff
    wish = actors.open_wish(caseworker, moderator)
    actors.fulfil(actors.donor(), caseworker, wish["id"])
    [entry] = _ledger(client)
    assert "alias" not in entry
    assert set(entry) == {"kind", "wish_id", "town", "item", "value_fen", "at", "donor"}
    assert entry["wish_id"] == wish["id"] and entry["town"] == "350505101"
    assert entry["item"] == "轻便折叠轮椅" and entry["value_fen"] == 80000


def test_money_disbursement_and_reversal_entries_have_no_alias(client, app, actors, staff,
                                                               fake_wechatpay):
    caseworker, moderator = staff
    wish = actors.open_wish(caseworker, moderator)
    donor = actors.donor()

    def post(path, who, body):
        res = client.post(f"{API}/{path}", json=body,
                          headers={**who.headers, "Idempotency-Key": str(uuid.uuid4())})
        assert res.status_code in (200, 201), res.get_json()
        return res.get_json()

    donation = post("donations", donor, {"amount_fen": 5000, "wish_id": wish["id"],
                                         "anonymous": True, "receipt_requested": False})
    headers, raw = fake_wechatpay.pay(donation["id"])
    assert client.post(f"{API}/payments/wechatpay/notify", data=raw,
                       headers=headers).status_code == 200
    item = post("disbursements", moderator, {"amount_fen": 3000, "purpose": "购买轮椅一台",
                                             "wish_id": wish["id"]})
    post(f"disbursements/{item['id']}/approve", actors.moderator(), None)
    post("ledger/reversals", moderator, {"index": 1, "reason": "金额有误"})

    entries = _ledger(client)
    assert [e["kind"] for e in entries] == ["money_donation", "disbursement", "reversal"]
    for entry in entries:
        assert "alias" not in entry, entry
        assert entry["wish_id"] == wish["id"] and entry["town"] == "350505101", entry


def test_withdrawn_consent_leaves_no_alias_in_the_ledger(client, actors, staff):
    caseworker, moderator = staff
    ben = actors.beneficiary(caseworker, alias="林阿婆")
    wish = actors.open_wish(caseworker, moderator, beneficiary_id=ben["id"])
    actors.fulfil(actors.donor(), caseworker, wish["id"])
    res = client.post(f"{API}/beneficiaries/{ben['id']}/withdraw-consent",
                      headers=caseworker.headers)
    assert res.status_code == 200
    res = client.get(f"{API}/ledger/entries?limit=1000")
    assert "林阿婆" not in res.get_data(as_text=True)
    assert len(res.get_json()["items"]) == 1


def test_an_entry_written_with_an_alias_before_still_verifies_and_reverses_without_it(
        client, app, actors, staff):
    """Entries appended before the alias left the ledger are never rewritten: they still verify,
    and their reversal names the wish and its town, not the alias."""
    from app.audit import run_audit
    from app.ledger import log
    from app.ledger.entries import canonical

    caseworker, moderator = staff
    wish = actors.open_wish(caseworker, moderator)
    old = {"kind": "in_kind_fulfilment", "wish_id": wish["id"], "alias": "林阿婆",
           "item": "轻便折叠轮椅", "value_fen": 80000, "at": "2026-01-05T08:00:00Z",
           "donor": "爱心人士"}
    with app.app_context():
        log.append("in_kind_fulfilment", old, "legacy", "legacy-1")
        db.session.commit()
    actors.fulfil(actors.donor(), caseworker, actors.open_wish(caseworker, moderator)["id"])

    [first, second] = client.get(f"{API}/ledger/entries").get_json()["items"]
    assert first["entry"] == old and "alias" not in second["entry"]
    assert base64.b64decode(first["leaf_b64"]) == canonical(old)
    with app.app_context():
        report = {r.name: r for r in run_audit().results}
    assert report["ledger_verifies_against_checkpoint"].failures == []

    res = client.post(f"{API}/ledger/reversals", json={"index": 0, "reason": "重复入账"},
                      headers={**moderator.headers, "Idempotency-Key": str(uuid.uuid4())})
    assert res.status_code == 201, res.get_json()
    reversal = _ledger(client)[-1]
    assert reversal["kind"] == "reversal" and "alias" not in reversal
    assert reversal["wish_id"] == wish["id"] and reversal["town"] == "350505101"


# --- a wish's text, on every write ----------------------------------------------------------------

def test_draft_with_a_full_width_phone_in_its_story_is_422(client, app, actors, staff):
    from app.wishes.models import Wish

    caseworker, _ = staff
    ben = actors.beneficiary(caseworker)
    story = f"阿婆需要一台轮椅，联系{FULL_WIDTH_PHONE}。"
    res = client.post(f"{API}/wishes", json=wish_payload(ben["id"], story=story),
                      headers=caseworker.headers)
    body = _refused(res, "story")
    [finding] = body["errors"]["story"]
    assert finding["kind"] == "phone" and story[finding["start"]:finding["end"]] == FULL_WIDTH_PHONE
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Wish)).scalar_one() == 0


@pytest.mark.parametrize("field, text", [
    ("title", f"给{SPACED_NAME}的轮椅"),
    ("story", f"阿婆住在{SECRET_ADDRESS}，需要轮椅。"),
    ("item", f"轮椅，寄{DASHED_PHONE}"),
])
def test_wish_edit_with_the_beneficiarys_identity_is_422_and_changes_nothing(
        client, actors, staff, field, text):
    caseworker, _ = staff
    wish = actors.draft_wish(caseworker)
    res = client.patch(f"{API}/wishes/{wish['id']}", json={field: text},
                       headers=caseworker.headers)
    _refused(res, field)
    now = client.get(f"{API}/wishes/{wish['id']}", headers=caseworker.headers).get_json()
    assert now[field] == wish[field]


def test_edit_after_a_rejection_is_scanned_too(client, actors, staff):
    caseworker, moderator = staff
    wish = actors.submitted_wish(caseworker)
    assert client.post(f"{API}/wishes/{wish['id']}/reject", json={"reason": "请补充说明"},
                       headers=moderator.headers).status_code == 200
    res = client.patch(f"{API}/wishes/{wish['id']}",
                       json={"story": f"阿婆腿脚不便，需要一台轮椅，联系人{ZERO_WIDTH_NAME}。"},
                       headers=caseworker.headers)
    _refused(res, "story")


def test_submit_of_a_draft_saved_before_the_scan_is_422(client, app, actors, staff):
    """A draft written before these rules (here: straight into the database) is caught when it
    is submitted, the moment it goes to a moderator and then the public."""
    from app.wishes.models import Wish

    caseworker, _ = staff
    wish = actors.draft_wish(caseworker)
    with app.app_context():
        db.session.get(Wish, wish["id"]).story = f"电话 {DASHED_PHONE}"
        db.session.commit()
    res = client.post(f"{API}/wishes/{wish['id']}/submit", headers=caseworker.headers)
    _refused(res, "story")


# --- reasons -------------------------------------------------------------------------------------

def test_reject_reason_with_the_beneficiarys_name_is_422(client, actors, staff):
    caseworker, moderator = staff
    wish = actors.submitted_wish(caseworker)
    res = client.post(f"{API}/wishes/{wish['id']}/reject",
                      json={"reason": f"{SPACED_NAME}的情况需要核实"}, headers=moderator.headers)
    _refused(res, "reason")
    now = client.get(f"{API}/wishes/{wish['id']}", headers=caseworker.headers).get_json()
    assert now["status"] == "pending_review" and not now["reject_reason"]


def test_withdraw_reason_with_the_beneficiarys_phone_is_422(client, actors, staff):
    caseworker, moderator = staff
    wish = actors.open_wish(caseworker, moderator)
    res = client.post(f"{API}/wishes/{wish['id']}/withdraw",
                      json={"reason": f"家属来电 {FULL_WIDTH_PHONE} 要求撤回"},
                      headers=caseworker.headers)
    _refused(res, "reason")
    assert client.get(f"{API}/wishes/{wish['id']}").get_json()["status"] == "open"


def _delivered_claim(app, actors, staff) -> tuple[dict, object]:
    from app.claims.models import Claim
    from app.claims.service import mark_delivered

    caseworker, moderator = staff
    wish = actors.open_wish(caseworker, moderator)
    donor = actors.donor()
    claim = actors.claim(donor, wish["id"])
    with app.app_context():
        row = db.session.get(Claim, claim["id"])
        mark_delivered(row, row.donor_id)
        db.session.commit()
    return claim, donor


def _disputed_messages(app) -> int:
    from app.notifications.models import OutboxMessage

    with app.app_context():
        return db.session.execute(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.topic == "claim_disputed")).scalar_one()


@pytest.mark.parametrize("reason", [
    f"受助人{SECRET_NAME}说没收到，请打{SECRET_PHONE}联系",
    f"{SECRET_NAME}（电话 {DASHED_PHONE}）说没收到",
    f"请联系{FULL_WIDTH_PHONE}",
    f"{ZERO_WIDTH_NAME}说没收到",
])
def test_dispute_reason_with_beneficiary_phone_is_422(client, app, actors, staff, reason):
    claim, donor = _delivered_claim(app, actors, staff)
    res = client.post(f"{API}/claims/{claim['id']}/dispute", json={"reason": reason},
                      headers=staff[0].headers)
    _refused(res, "reason")
    seen = client.get(f"{API}/claims/{claim['id']}", headers=donor.headers).get_json()
    assert seen["status"] == "delivered" and seen["dispute_count"] == 0
    assert not seen.get("last_dispute_reason")
    assert _disputed_messages(app) == 0  # no WeChat message to the donor


def test_dispute_reason_with_prices_and_dates_is_accepted(client, app, actors, staff):
    claim, _ = _delivered_claim(app, actors, staff)
    reason = "照片里是250元的旧款，2026年3月12日前请换成新款，联系协理员"
    res = client.post(f"{API}/claims/{claim['id']}/dispute", json={"reason": reason},
                      headers=staff[0].headers)
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["last_dispute_reason"] == reason
    assert _disputed_messages(app) == 1


@pytest.mark.parametrize("note", [
    f"已交给{SECRET_NAME}本人，电话{SECRET_PHONE}",
    f"放在{SECRET_ADDRESS}门口",
    f"已送到，她的电话是{FULL_WIDTH_PHONE}",
])
def test_proof_note_with_the_beneficiarys_identity_is_422(client, app, actors, staff, note):
    from app.claims.models import Proof

    caseworker, moderator = staff
    wish = actors.open_wish(caseworker, moderator)
    donor = actors.donor()
    claim = actors.claim(donor, wish["id"])
    res = client.post(f"{API}/claims/{claim['id']}/proofs", data={
        "note": note, "photo": (io.BytesIO(encode(scene((64, 64)), "JPEG")), "p.jpg")},
        content_type="multipart/form-data",
        headers={**donor.headers, "Idempotency-Key": str(uuid.uuid4())})
    _refused(res, "note")
    assert client.get(f"{API}/claims/{claim['id']}",
                      headers=donor.headers).get_json()["status"] == "active"
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Proof)).scalar_one() == 0


def test_disbursement_purpose_with_the_beneficiarys_name_is_422(client, app, actors, staff,
                                                                fake_wechatpay):
    caseworker, moderator = staff
    wish = actors.open_wish(caseworker, moderator)
    res = client.post(f"{API}/disbursements", json={
        "amount_fen": 100, "purpose": f"为{SPACED_NAME}购买轮椅", "wish_id": wish["id"]},
        headers={**moderator.headers, "Idempotency-Key": str(uuid.uuid4())})
    _refused(res, "purpose")


def test_disbursement_purpose_naming_the_beneficiarys_alias_is_422(client, app, actors, staff,
                                                                   fake_wechatpay):
    """The ledger keeps a purpose for ever; the alias must be forgettable (consent withdrawal)."""
    caseworker, moderator = staff
    wish = actors.open_wish(caseworker, moderator)
    res = client.post(f"{API}/disbursements", json={
        "amount_fen": 100, "purpose": "为 林-阿婆 购买轮椅", "wish_id": wish["id"]},
        headers={**moderator.headers, "Idempotency-Key": str(uuid.uuid4())})
    _refused(res, "purpose")

"""POST /signals as a partner system sends it: each item answered, duplicates and regions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.cases.helpers import item, subject_id
from tests.factories import OTHER_VILLAGE, TOWN, VILLAGE
from tests.partners.helpers import partner_headers

SIGNALS = "/api/v1/signals"


def _recent() -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=2)


def _post(client, headers, items):
    res = client.post(SIGNALS, headers=headers, json={"items": items})
    assert res.status_code == 200, res.get_json()
    return res.get_json()["items"]


def test_a_partner_posts_a_big_medical_spend_and_gets_an_alert(app, client):
    headers = partner_headers(app, client)
    answers = _post(client, headers, [item(external_id="mi-2026-11-0001", at=_recent(),
                                           self_paid_fen=2_500_000)])
    assert answers == [{"external_id": "mi-2026-11-0001", "result": "accepted",
                        "alert_id": answers[0]["alert_id"]}]
    assert answers[0]["alert_id"].startswith("alr_")


def test_the_same_external_id_again_is_a_duplicate_and_changes_nothing(app, client):
    from app.cases.models import Signal
    from app.extensions import db

    headers = partner_headers(app, client)
    batch = [item(external_id="mi-dup-1", at=_recent()), item(external_id="mi-dup-2", at=_recent())]
    assert [a["result"] for a in _post(client, headers, batch)] == ["accepted", "accepted"]
    again = _post(client, headers, batch)
    assert [(a["external_id"], a["result"]) for a in again] == \
        [("mi-dup-1", "duplicate"), ("mi-dup-2", "duplicate")]
    with app.app_context():
        assert db.session.query(Signal).count() == 2


def test_a_subject_outside_the_clients_region_is_rejected(app, client):
    headers = partner_headers(app, client, name="界山镇网格", department="grid", region=TOWN)
    answers = _post(client, headers, [
        item("grid_report", external_id="in", at=_recent(), region=VILLAGE, note="独居老人"),
        item("grid_report", external_id="out", at=_recent(), region=OTHER_VILLAGE,
             id_no=subject_id(9), note="独居老人"),
    ])
    assert [(a["result"], a.get("code")) for a in answers] == \
        [("accepted", None), ("rejected", "region_out_of_scope")]


def test_a_malformed_item_is_named_and_the_others_are_still_answered(app, client):
    headers = partner_headers(app, client)
    bad_id = item(external_id="bad-id", at=_recent())
    bad_id["subject"]["id_number"] = "350505196204151231"[:-1] + "0"
    answers = _post(client, headers, [
        item(external_id="good", at=_recent()),
        {"external_id": "no-subject", "kind": "medical_spend"},
        bad_id,
        item(external_id="future", at=datetime.now(timezone.utc) + timedelta(days=3)),
        item(external_id="fractional", at=_recent(), self_paid_fen=12.5),
    ])
    assert [(a["external_id"], a["result"], a.get("code")) for a in answers] == [
        ("good", "accepted", None),
        ("no-subject", "rejected", "invalid_signal"),
        ("bad-id", "rejected", "invalid_id_number"),
        ("future", "rejected", "observed_in_future"),
        ("fractional", "rejected", "invalid_amount"),
    ]

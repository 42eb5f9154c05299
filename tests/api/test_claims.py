"""Claims through the HTTP API: claim, idempotency, limits, cooldown, release, confirm, dispute."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.claims.models import Claim
from app.extensions import db
from app.lifecycle import Transition
from tests.factories import deliver_with_photo


def _claim(client, donor, wish_id, key=None):
    return client.post(f"/api/v1/wishes/{wish_id}/claims",
                       headers={**donor.headers, "Idempotency-Key": key or str(uuid.uuid4())})


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def staff(actors):
    return actors.caseworker(), actors.moderator()


@pytest.fixture
def open_wish(actors, staff):
    return actors.open_wish(*staff)


def test_donor_claims_open_wish_and_it_leaves_the_feed(client, actors, app, open_wish):
    donor = actors.donor()
    res = _claim(client, donor, open_wish["id"])
    assert res.status_code == 201, res.get_json()
    body = res.get_json()
    assert body["status"] == "active" and body["wish_id"] == open_wish["id"]
    assert _iso(body["due_at"]) - _iso(body["claimed_at"]) == timedelta(
        seconds=app.config["CLAIM_SLA_SECONDS"])
    assert client.get("/api/v1/wishes").get_json()["items"] == []
    card = client.get(f"/api/v1/wishes/{open_wish['id']}").get_json()
    assert card["status"] == "claimed" and card["due_at"] == body["due_at"]


def test_second_claim_on_same_wish_gets_409(client, actors, open_wish):
    assert _claim(client, actors.donor(), open_wish["id"]).status_code == 201
    res = _claim(client, actors.donor(), open_wish["id"])
    assert res.status_code == 409
    assert res.get_json()["code"] == "wish_already_claimed"


def test_claim_on_unpublished_wish_is_404_and_writes_nothing(client, actors, staff, app):
    caseworker, moderator = staff
    pending = actors.submitted_wish(caseworker)
    assert _claim(client, actors.donor(), pending["id"]).status_code == 404
    wish = actors.open_wish(caseworker, moderator)
    client.post(f"/api/v1/wishes/{wish['id']}/withdraw", headers=moderator.headers)
    assert _claim(client, actors.donor(), wish["id"]).status_code == 404
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Claim)).scalar_one() == 0


def test_claim_on_fulfilled_wish_gets_409_wish_not_open(client, actors, staff, app, open_wish):
    caseworker, _ = staff
    claim = _claim(client, actors.donor(), open_wish["id"]).get_json()
    _deliver(app, claim["id"])
    client.post(f"/api/v1/claims/{claim['id']}/confirm", headers=caseworker.headers)
    res = _claim(client, actors.donor(), open_wish["id"])
    assert res.status_code == 409 and res.get_json()["code"] == "wish_not_open"
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Claim)).scalar_one() == 1


def test_same_idempotency_key_twice_gives_one_claim_and_replays(client, actors, app, open_wish):
    donor = actors.donor()
    first = _claim(client, donor, open_wish["id"], key="k-1")
    second = _claim(client, donor, open_wish["id"], key="k-1")
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.get_json() == first.get_json()
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Claim)).scalar_one() == 1


def test_same_key_on_a_different_request_gets_422(client, actors, staff, open_wish):
    donor = actors.donor()
    other = actors.open_wish(*staff)
    assert _claim(client, donor, open_wish["id"], key="k-2").status_code == 201
    res = _claim(client, donor, other["id"], key="k-2")
    assert res.status_code == 422 and res.get_json()["code"] == "idempotency_key_reused"


def test_keys_are_scoped_per_user(client, actors, staff):
    wishes = [actors.open_wish(*staff) for _ in range(2)]
    assert _claim(client, actors.donor(), wishes[0]["id"], key="same").status_code == 201
    assert _claim(client, actors.donor(), wishes[1]["id"], key="same").status_code == 201


def test_claim_without_idempotency_key_gets_400(client, actors, open_wish):
    res = client.post(f"/api/v1/wishes/{open_wish['id']}/claims", headers=actors.donor().headers)
    assert res.status_code == 400 and res.get_json()["code"] == "idempotency_key_required"


def test_donor_over_active_claim_limit_gets_409(client, actors, staff, app):
    donor = actors.donor()
    limit = app.config["CLAIM_ACTIVE_LIMIT"]
    wishes = [actors.open_wish(*staff) for _ in range(limit + 1)]
    for wish in wishes[:limit]:
        assert _claim(client, donor, wish["id"]).status_code == 201
    res = _claim(client, donor, wishes[-1]["id"])
    assert res.status_code == 409 and res.get_json()["code"] == "claim_limit_reached"
    card = client.get(f"/api/v1/wishes/{wishes[-1]['id']}").get_json()
    assert card["status"] == "open"


def test_donor_in_cooldown_after_two_expiries_gets_403(client, actors, staff, app):
    from app.claims.service import sweep_due_claims

    donor = actors.donor()
    for _ in range(2):
        wish = actors.open_wish(*staff)
        assert _claim(client, donor, wish["id"]).status_code == 201
    with app.app_context():
        assert sweep_due_claims(now=datetime.now(timezone.utc) + timedelta(days=3)) == 2
    wish = actors.open_wish(*staff)
    res = _claim(client, donor, wish["id"])
    assert res.status_code == 403 and res.get_json()["code"] == "donor_cooldown"
    assert int(res.headers["Retry-After"]) > 6 * 86400


def test_release_reopens_the_wish_at_once(client, actors, open_wish):
    donor = actors.donor()
    claim = _claim(client, donor, open_wish["id"]).get_json()
    res = client.post(f"/api/v1/claims/{claim['id']}/release", headers=donor.headers)
    assert res.status_code == 200 and res.get_json()["status"] == "released"
    assert [w["id"] for w in client.get("/api/v1/wishes").get_json()["items"]] == [open_wish["id"]]
    again = client.post(f"/api/v1/claims/{claim['id']}/release", headers=donor.headers)
    assert again.status_code == 409 and again.get_json()["code"] == "invalid_transition"


def test_someone_elses_claim_is_404(client, actors, open_wish):
    claim = _claim(client, actors.donor(), open_wish["id"]).get_json()
    stranger = actors.donor()
    assert client.get(f"/api/v1/claims/{claim['id']}", headers=stranger.headers).status_code == 404
    res = client.post(f"/api/v1/claims/{claim['id']}/release", headers=stranger.headers)
    assert res.status_code == 404
    outsider = actors.caseworker(regions=["350505105"])
    assert client.get(f"/api/v1/claims/{claim['id']}",
                      headers=outsider.headers).status_code == 404


def test_my_claims_lists_only_mine(client, actors, staff):
    donor, other = actors.donor(), actors.donor()
    mine = _claim(client, donor, actors.open_wish(*staff)["id"]).get_json()
    _claim(client, other, actors.open_wish(*staff)["id"])
    items = client.get("/api/v1/me/claims", headers=donor.headers).get_json()["items"]
    assert [c["id"] for c in items] == [mine["id"]]


def _deliver(app, claim_id):
    """Deliver with a processed photo, through the services (the photo route is tested with the
    media battery)."""
    deliver_with_photo(app, claim_id)


def test_confirm_fulfils_the_wish_and_thanks_the_donor(client, actors, staff, app, open_wish):
    from app.notifications.models import OutboxMessage

    caseworker, _ = staff
    donor = actors.donor()
    claim = _claim(client, donor, open_wish["id"]).get_json()
    early = client.post(f"/api/v1/claims/{claim['id']}/confirm", headers=caseworker.headers)
    assert early.status_code == 409  # nothing delivered yet
    _deliver(app, claim["id"])
    res = client.post(f"/api/v1/claims/{claim['id']}/confirm", headers=caseworker.headers)
    assert res.status_code == 200 and res.get_json()["status"] == "confirmed"
    card = client.get(f"/api/v1/wishes/{open_wish['id']}").get_json()
    assert card["status"] == "fulfilled" and card["fulfilled_at"]
    with app.app_context():
        topics = [m.topic for m in db.session.execute(select(OutboxMessage)).scalars()]
        assert sorted(topics) == ["claim_created", "wish_fulfilled"]
        actions = db.session.execute(select(Transition.action)
                                     .where(Transition.entity_type == "claim")
                                     .order_by(Transition.id)).scalars().all()
        assert actions == ["claim", "deliver", "confirm"]


def test_donor_cannot_confirm_and_out_of_scope_caseworker_gets_404(client, actors, app, open_wish):
    donor = actors.donor()
    claim = _claim(client, donor, open_wish["id"]).get_json()
    _deliver(app, claim["id"])
    assert client.post(f"/api/v1/claims/{claim['id']}/confirm",
                       headers=donor.headers).status_code == 403
    outsider = actors.caseworker(regions=["350505105"])
    assert client.post(f"/api/v1/claims/{claim['id']}/confirm",
                       headers=outsider.headers).status_code == 404


def test_dispute_reactivates_claim_with_24h_and_tells_donor(client, actors, staff, app, open_wish):
    from app.notifications.models import OutboxMessage

    caseworker, _ = staff
    donor = actors.donor()
    claim = _claim(client, donor, open_wish["id"]).get_json()
    _deliver(app, claim["id"])
    before = datetime.now(timezone.utc)
    res = client.post(f"/api/v1/claims/{claim['id']}/dispute", json={"reason": "照片看不清"},
                      headers=caseworker.headers)
    assert res.status_code == 200
    body = res.get_json()
    assert body["status"] == "active" and body["dispute_count"] == 1
    due = _iso(body["due_at"])
    assert timedelta(hours=23, minutes=59) < due - before < timedelta(hours=24, minutes=1)
    assert client.get(f"/api/v1/wishes/{open_wish['id']}").get_json()["status"] == "claimed"
    with app.app_context():
        assert db.session.execute(select(OutboxMessage).where(
            OutboxMessage.topic == "claim_disputed")).scalar_one().user_id == donor.id


def _ledger_donors(client) -> list[str]:
    return [item["entry"]["donor"]
            for item in client.get("/api/v1/ledger/entries").get_json()["items"]]


def test_claim_without_a_body_is_anonymous_in_the_ledger(client, actors, staff, app,
                                                         open_wish):
    caseworker, _ = staff
    claim = _claim(client, actors.donor("陈晓明"), open_wish["id"]).get_json()
    assert claim["anonymous"] is True
    _deliver(app, claim["id"])
    assert client.post(f"/api/v1/claims/{claim['id']}/confirm",
                       headers=caseworker.headers).status_code == 200
    assert _ledger_donors(client) == ["爱心人士"]


def test_donor_who_chooses_to_be_named_is_shown_masked(client, actors, staff, app, open_wish):
    caseworker, moderator = staff
    named, anonymous = actors.donor("陈晓明"), actors.donor("林美华")
    other_wish = actors.open_wish(caseworker, moderator)
    for donor, wish, body in ((named, open_wish, {"anonymous": False}),
                              (anonymous, other_wish, {"anonymous": True})):
        res = client.post(f"/api/v1/wishes/{wish['id']}/claims", json=body,
                          headers={**donor.headers, "Idempotency-Key": str(uuid.uuid4())})
        assert res.status_code == 201 and res.get_json()["anonymous"] is body["anonymous"]
        _deliver(app, res.get_json()["id"])
        assert client.post(f"/api/v1/claims/{res.get_json()['id']}/confirm",
                           headers=caseworker.headers).status_code == 200
    assert _ledger_donors(client) == ["陈*", "爱心人士"]
    assert all("晓明" not in str(item) for item in
               client.get("/api/v1/ledger/entries").get_json()["items"])


def test_same_key_with_another_naming_choice_is_422(client, actors, open_wish):
    donor = actors.donor()
    headers = {**donor.headers, "Idempotency-Key": "naming-choice"}
    url = f"/api/v1/wishes/{open_wish['id']}/claims"
    assert client.post(url, json={"anonymous": True}, headers=headers).status_code == 201
    again = client.post(url, json={"anonymous": False}, headers=headers)
    assert again.status_code == 422 and again.get_json()["code"] == "idempotency_key_reused"


def test_claim_body_with_unknown_fields_is_422_and_claims_nothing(client, actors, app,
                                                                  open_wish):
    res = client.post(f"/api/v1/wishes/{open_wish['id']}/claims",
                      json={"anonymous": "maybe", "status": "confirmed"},
                      headers={**actors.donor().headers, "Idempotency-Key": str(uuid.uuid4())})
    assert res.status_code == 422 and set(res.get_json()["errors"]) == {"anonymous", "status"}
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Claim)).scalar_one() == 0

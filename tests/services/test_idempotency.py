"""Idempotency records: retention, purge, and recovery when a first attempt died after its commit."""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from app.claims.models import Claim
from app.idempotency import IDEMPOTENCY_TTL, IdempotencyRecord, purge_expired
from app.extensions import db
from app.types import utcnow
from tests.concurrency import run_together


def _claim(client, donor, wish_id, key):
    return client.post(f"/api/v1/wishes/{wish_id}/claims",
                       headers={**donor.headers, "Idempotency-Key": key})


def test_records_are_kept_at_least_24_hours_then_purged(app, client, actors):
    assert IDEMPOTENCY_TTL >= timedelta(hours=24)
    wish = actors.open_wish(actors.caseworker(), actors.moderator())
    donor = actors.donor()
    assert _claim(client, donor, wish["id"], "keep-me").status_code == 201
    with app.app_context():
        assert purge_expired(now=utcnow() + timedelta(hours=24)) == 0
        assert purge_expired(now=utcnow() + IDEMPOTENCY_TTL + timedelta(minutes=1)) == 1
        assert db.session.execute(select(func.count()).select_from(IdempotencyRecord)
                                  ).scalar_one() == 0


def test_a_retry_renders_the_claim_of_a_crashed_first_attempt_once_its_lease_lapsed(
        app, client, actors):
    wish = actors.open_wish(actors.caseworker(), actors.moderator())
    donor = actors.donor()
    first = _claim(client, donor, wish["id"], "crashy")
    assert first.status_code == 201
    # Simulate the process dying after the business commit, before the response was stored:
    # the record is in flight, held by an owner whose heartbeat stopped with it.
    with app.app_context():
        db.session.execute(update(IdempotencyRecord).values(
            state="in_flight", response_status=None, response_body=None, owner="dead-process",
            lease_until=utcnow() + timedelta(seconds=20)))
        db.session.commit()
    # While its lease runs nobody can tell a dead owner from a slow one: wait.
    busy = _claim(client, donor, wish["id"], "crashy")
    assert busy.status_code == 409 and busy.get_json()["code"] == "idempotency_key_in_use"
    with app.app_context():
        db.session.execute(update(IdempotencyRecord).values(
            lease_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    retry = _claim(client, donor, wish["id"], "crashy")
    assert retry.status_code == 201
    assert retry.get_json()["id"] == first.get_json()["id"]
    again = _claim(client, donor, wish["id"], "crashy")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == retry.get_json()


def test_a_request_still_in_flight_with_the_same_key_gets_409(app, client, actors):
    wish = actors.open_wish(actors.caseworker(), actors.moderator())
    donor = actors.donor()
    body = _claim(client, donor, wish["id"], "first").get_json()
    assert body["status"] == "active"
    # A second identical request arrives while the first is still running (no effect yet).
    with app.app_context():
        from app.idempotency import Hold, begin, fingerprint

        fp = fingerprint("POST", f"/api/v1/wishes/{wish['id']}/claims", [b""])
        record = begin(donor.id, "in-flight", fp)
        assert isinstance(record, Hold)
    res = _claim(client, donor, wish["id"], "in-flight")
    assert res.status_code == 409 and res.get_json()["code"] == "idempotency_key_in_use"


def test_a_refused_first_attempt_is_replayed_not_rerun(app, client, actors):
    caseworker, moderator = actors.caseworker(), actors.moderator()
    wish = actors.open_wish(caseworker, moderator)
    donor = actors.donor()
    key = str(uuid.uuid4())
    # Over the limit the first time: a 409 is a stored answer, not a transient failure.
    app.config["CLAIM_ACTIVE_LIMIT"], saved = 0, app.config["CLAIM_ACTIVE_LIMIT"]
    try:
        assert _claim(client, donor, wish["id"], key).status_code == 409
    finally:
        app.config["CLAIM_ACTIVE_LIMIT"] = saved
    replay = _claim(client, donor, wish["id"], key)
    assert replay.status_code == 409 and replay.headers["Idempotent-Replayed"] == "true"


def test_eight_claims_with_one_key_at_once_make_one_claim_and_answer_fresh_once(
        app, client, actors, needs_postgres):
    caseworker, moderator = actors.caseworker(), actors.moderator()

    def after(delay, call):
        def run():
            time.sleep(delay)
            return call()
        return run

    for round_ in range(4):
        wish = actors.open_wish(caseworker, moderator)
        donor = actors.donor()
        key = str(uuid.uuid4())
        # Released together, 4 ms apart: some land while the first request has committed its
        # claim and not yet stored its answer.
        responses = run_together([after(i * 0.004, lambda: _claim(client, donor, wish["id"], key))
                                  for i in range(8)])

        fresh = [r for r in responses
                 if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
        assert len(fresh) == 1, (round_, [(r.status_code, dict(r.headers)) for r in responses])
        for res in responses:
            if res is fresh[0]:
                continue
            if res.status_code == 201:
                assert res.headers["Idempotent-Replayed"] == "true"
                assert res.get_json() == fresh[0].get_json()
            else:
                assert res.status_code == 409, res.get_json()
                assert res.get_json()["code"] == "idempotency_key_in_use"
        with app.app_context():
            assert db.session.execute(select(func.count()).select_from(Claim).where(
                Claim.wish_id == wish["id"])).scalar_one() == 1

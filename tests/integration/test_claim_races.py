"""Races against a running gunicorn on PostgreSQL: many donors on one wish, proof vs deadline."""
from __future__ import annotations

import io
import random
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import func, select, update

from app.claims.models import Claim, Proof
from app.extensions import db
from tests.concurrency import run_together
from tests.media.conftest import encode, scene

pytestmark = pytest.mark.usefixtures("needs_postgres")


def test_fifty_donors_claim_one_wish_at_once_twenty_times_exactly_one_wins(
        app, actors, processes):
    # 1,000 claims from one address (each donor 20) in seconds: a race, not a crowd; the
    # abuse limits (tests/api/test_rate_limits.py) are not what this measures
    base = processes.server(workers=2, threads=16, RATELIMIT_CLAIMS_USER="1000/minute",
                            RATELIMIT_CLAIMS_ADDRESS="100000/minute")
    caseworker, moderator = actors.caseworker(), actors.moderator()
    donors = [actors.donor() for _ in range(50)]
    sessions = [requests.Session() for _ in donors]
    for round_ in range(20):
        wish = actors.open_wish(caseworker, moderator)
        url = f"{base}/api/v1/wishes/{wish['id']}/claims"
        calls = [
            (lambda s=s, d=d: s.post(url, timeout=30, headers={
                **d.headers, "Idempotency-Key": str(uuid.uuid4())}))
            for s, d in zip(sessions, donors)
        ]
        statuses = [r.status_code for r in run_together(calls)]
        assert statuses.count(201) == 1, (round_, sorted(statuses))
        assert set(statuses) == {201, 409}, sorted(statuses)
        with app.app_context():
            holding = db.session.execute(select(func.count()).select_from(Claim).where(
                Claim.wish_id == wish["id"], Claim.status.in_(["active", "delivered"]))
            ).scalar_one()
            assert holding == 1
        # free the winner's slot so the active-claim limit never decides a round
        with app.app_context():
            db.session.execute(update(Claim).where(Claim.wish_id == wish["id"])
                               .values(status="released"))
            db.session.commit()


def test_proof_upload_racing_the_deadline_has_exactly_one_outcome(app, actors, processes):
    from app.claims.service import sweep_due_claims

    base = processes.server(workers=2, threads=4)
    caseworker, moderator = actors.caseworker(), actors.moderator()
    photo = encode(scene((640, 480)), "JPEG")
    outcomes = set()
    for attempt in range(12):
        donor = actors.donor()
        wish = actors.open_wish(caseworker, moderator)
        res = requests.post(f"{base}/api/v1/wishes/{wish['id']}/claims", timeout=30,
                            headers={**donor.headers, "Idempotency-Key": str(uuid.uuid4())})
        claim_id = res.json()["id"]
        due = datetime.now(timezone.utc) + timedelta(milliseconds=400)
        with app.app_context():
            db.session.execute(update(Claim).where(Claim.id == claim_id).values(due_at=due))
            db.session.commit()
        jitter = random.uniform(-0.05, 0.05)

        def upload():
            time.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds() + jitter))
            return requests.post(
                f"{base}/api/v1/claims/{claim_id}/proofs", timeout=30,
                files={"photo": ("p.jpg", io.BytesIO(photo), "image/jpeg")},
                data={"note": "送到了"},
                headers={**donor.headers, "Idempotency-Key": str(uuid.uuid4())})

        def sweep():
            time.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()))
            with app.app_context():
                try:
                    return sweep_due_claims()
                finally:
                    db.session.remove()

        upload_res, _ = run_together([upload, sweep])
        with app.app_context():
            sweep_due_claims()  # whatever the race left due is now expired
            claim = db.session.get(Claim, claim_id)
            proofs = db.session.execute(select(func.count()).select_from(Proof).where(
                Proof.claim_id == claim_id)).scalar_one()
            if upload_res.status_code == 201:
                assert (claim.status, proofs, claim.wish.status) == ("delivered", 1, "delivered")
            else:
                assert upload_res.status_code == 409, upload_res.text
                assert upload_res.json()["code"] in ("claim_expired", "invalid_transition")
                assert (claim.status, proofs, claim.wish.status) == ("expired", 0, "open")
            outcomes.add(claim.status)
    assert outcomes  # at least one race ran to an end; both outcomes are allowed

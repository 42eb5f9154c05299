"""The auditor: passes on a healthy service, and names each invariant a fault or a bug breaks.

Each breach below is made the way a bug or an operator would make it — a direct SQL write that
skips our services — and the test checks that the right check, and only it, reports it.
"""
from __future__ import annotations

import io
import os
import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.audit import run_audit
from app.extensions import db
from app.media.storage import get_storage
from app.notifications.models import OutboxMessage
from app.types import utcnow
from tests.media.conftest import encode, exif_with, scene


@pytest.fixture
def staff(actors):
    return actors.caseworker(), actors.moderator()


def _audit(app):
    with app.app_context():
        return run_audit()


def _failed(report) -> set[str]:
    return {r.name for r in report.results if not r.ok}


def _claim(client, actors, staff):
    donor = actors.donor()
    wish = actors.open_wish(*staff)
    return donor, wish, actors.claim(donor, wish["id"])


def _upload_and_process(app, client, donor, claim_id) -> str:
    photo = encode(scene((900, 600)), "JPEG", exif=exif_with(orientation=6, gps=True))
    res = client.post(f"/api/v1/claims/{claim_id}/proofs",
                      data={"note": "已送到", "photo": (io.BytesIO(photo), "p.jpg")},
                      content_type="multipart/form-data",
                      headers={**donor.headers, "Idempotency-Key": str(uuid.uuid4())})
    assert res.status_code == 201, res.get_json()
    from app.claims.proofs import process_proof

    with app.app_context():
        assert process_proof(res.get_json()["id"]) == "ready"
    return res.get_json()["id"]


def _sql(app, statement: str, **params) -> int:
    with app.app_context(), db.engine.begin() as conn:
        return conn.execute(sa.text(statement), params).rowcount


def test_a_healthy_round_passes_every_check(app, client, actors, staff):
    donor, wish, claim = _claim(client, actors, staff)
    _upload_and_process(app, client, donor, claim["id"])
    client.post(f"/api/v1/claims/{claim['id']}/confirm", headers=staff[0].headers)
    other = actors.open_wish(*staff)
    actors.fulfil(actors.donor(), staff[0], other["id"])
    client.get("/api/v1/ledger/checkpoint")  # sign one

    report = _audit(app)
    assert report.ok, report.text()
    text = report.text()
    assert "audit: PASSED" in text and "2 confirmed claims" in text
    assert "2 entries, checkpoint 2" in text


def test_wish_and_claim_that_disagree_are_reported(app, client, actors, staff):
    _, wish, claim = _claim(client, actors, staff)
    assert _sql(app, "UPDATE wishes SET status = 'open' WHERE id = :id", id=wish["id"]) == 1

    report = _audit(app)
    assert _failed(report) == {"wish_and_claim_states_agree"}
    assert f"wish {wish['id']} is open with 1 active claims (expected 0)" in report.text()


def test_confirmed_claim_without_its_ledger_entry_is_reported(app, client, actors, staff):
    _, wish, claim = _claim(client, actors, staff)
    _sql(app, "UPDATE claims SET status = 'confirmed' WHERE id = :id", id=claim["id"])
    _sql(app, "UPDATE wishes SET status = 'fulfilled' WHERE id = :id", id=wish["id"])

    report = _audit(app)
    assert _failed(report) == {"confirmed_claim_has_one_ledger_entry"}
    assert f"confirmed claim {claim['id']} has no ledger entry" in report.text()


def test_active_claim_far_past_its_deadline_is_reported(app, client, actors, staff):
    _, _, claim = _claim(client, actors, staff)
    _sql(app, "UPDATE claims SET due_at = :due WHERE id = :id", id=claim["id"],
         due=utcnow() - timedelta(hours=2))
    assert _failed(_audit(app)) == {"claim_deadlines_kept"}


def test_a_ledger_row_changed_behind_the_trigger_is_reported(needs_postgres, app, client,
                                                            actors, staff):
    for _ in range(3):
        actors.fulfil(actors.donor(), staff[0], actors.open_wish(*staff)["id"])
    client.get("/api/v1/ledger/checkpoint")
    assert _audit(app).ok

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE ledger_entries DISABLE TRIGGER ALL"))
        conn.execute(sa.text(
            "UPDATE ledger_entries SET leaf = convert_to(replace(convert_from(leaf, 'UTF8'), "
            "'\"kind\"', '\"kind\" '), 'UTF8') WHERE \"index\" = 1"))
        conn.execute(sa.text("ALTER TABLE ledger_entries ENABLE TRIGGER ALL"))

    report = _audit(app)
    assert _failed(report) == {"ledger_verifies_against_checkpoint"}
    assert "entry 1: stored leaf hash does not match its bytes" in report.text()


def test_a_message_stuck_in_the_outbox_is_reported(app, client, actors, staff):
    donor = actors.donor()
    with app.app_context():
        from app.auth.models import User

        user_id = db.session.execute(sa.select(User.id).where(User.role == "donor")).scalar()
        db.session.add(OutboxMessage(dedupe_key="stuck-1", user_id=user_id, topic="claim_created",
                                     payload={}, status="pending",
                                     next_attempt_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
    assert donor  # the message belongs to a real donor
    report = _audit(app)
    assert _failed(report) == {"outbox_not_stuck"}


def test_orphan_files_and_photos_with_metadata_are_reported(app, client, actors, staff):
    donor, _, claim = _claim(client, actors, staff)
    proof_id = _upload_and_process(app, client, donor, claim["id"])
    assert _audit(app).ok

    with app.app_context():
        storage = get_storage()
        storage.put("proofs/nobody/stray.jpg", encode(scene((64, 64)), "JPEG"), "image/jpeg")
        old = time.time() - 3600
        os.utime(storage._path("proofs/nobody/stray.jpg"), (old, old))
        # A served image replaced by one that still carries GPS tags.
        storage.put(f"proofs/{proof_id}/full.jpg",
                    encode(scene((64, 64)), "JPEG", exif=exif_with(gps=True)), "image/jpeg")

    report = _audit(app)
    assert _failed(report) == {"photos_owned_and_clean"}
    text = report.text()
    assert "stored file proofs/nobody/stray.jpg belongs to no proof" in text
    assert f"proofs/{proof_id}/full.jpg: carries" in text and "exif" in text


def test_audit_command_exits_non_zero_on_a_breach(app, client, actors, staff):
    runner = app.test_cli_runner()
    _, wish, _ = _claim(client, actors, staff)
    ok = runner.invoke(args=["audit"])
    assert ok.exit_code == 0, ok.output
    assert "audit: PASSED" in ok.output

    _sql(app, "UPDATE wishes SET status = 'open' WHERE id = :id", id=wish["id"])
    bad = runner.invoke(args=["audit"])
    assert bad.exit_code == 1
    assert "FAIL  wish_and_claim_states_agree" in bad.output and "audit: FAILED" in bad.output


# ---- finding people ------------------------------------------------------------------------------

def _visit_task(app) -> str:
    """A visit task raised now (so not yet due); returns the alert id."""
    from tests.cases.helpers import ingest, item, subject_id

    now = utcnow()
    return ingest(app, [item(at=now - timedelta(hours=1), id_no=subject_id(),
                             self_paid_fen=2_500_000)], now=now)[0]["alert_id"]


def test_alerts_and_tasks_of_a_healthy_service_pass(app):
    _visit_task(app)
    report = _audit(app)
    assert report.ok, report.text()
    assert "1 open alerts" in report.text()


def test_an_open_alert_whose_task_was_closed_behind_its_back_is_reported(app):
    alert_id = _visit_task(app)
    _sql(app, "UPDATE tasks SET status = 'done' WHERE alert_id = :id", id=alert_id)

    report = _audit(app)
    assert _failed(report) == {"open_alert_has_open_task"}
    assert f"alert {alert_id} is open with no open visit task" in report.text()


def test_an_overdue_task_nobody_escalated_is_reported_and_escalation_clears_it(app):
    from workers.jobs import escalate_overdue_tasks

    alert_id = _visit_task(app)
    _sql(app, "UPDATE tasks SET due_at = :due WHERE alert_id = :id", id=alert_id,
         due=utcnow() - timedelta(days=2))
    assert _failed(_audit(app)) == {"overdue_tasks_escalated"}
    with app.app_context():
        assert escalate_overdue_tasks() == 1
    assert _audit(app).ok


def test_two_open_alerts_for_one_person_are_reported(needs_postgres, app):
    alert_id = _visit_task(app)
    # The partial unique index forbids it; an operator dropping it would not be told.
    _sql(app, "DROP INDEX uq_alerts_open_person")
    try:
        _sql(app, "INSERT INTO alerts (id, person_id, region_code, status, level, reasons, "
                  "opened_at) SELECT 'alr_twin', person_id, region_code, 'open', level, reasons, "
                  "opened_at FROM alerts WHERE id = :id", id=alert_id)
        _sql(app, "INSERT INTO tasks (id, kind, status, region_code, person_id, alert_id, "
                  "due_at, created_at) SELECT 'tsk_twin', kind, status, region_code, person_id, "
                  "'alr_twin', due_at, created_at FROM tasks WHERE alert_id = :id", id=alert_id)
        report = _audit(app)
        assert _failed(report) == {"one_open_alert_per_person"}
    finally:
        _sql(app, "DELETE FROM tasks WHERE id = 'tsk_twin'")
        _sql(app, "DELETE FROM alerts WHERE id = 'alr_twin'")
        _sql(app, "CREATE UNIQUE INDEX uq_alerts_open_person ON alerts (person_id) "
                  "WHERE status = 'open'")

"""A worker killed with SIGKILL in the middle of a proof-processing job (media queue).

RQ 3.0 never runs an abandoned job again: its entry stays in the queue's StartedJobRegistry until
the execution's TTL runs out, and the next registry maintenance (every 10 minutes) moves it to the
FailedJobRegistry. So the database has to be the truth: the sweeper re-finds every proof still
`processing` PROOF_REQUEUE_SECONDS after upload and rings its doorbell again.
"""
from __future__ import annotations

import os
import signal
import time
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from app.claims.models import Proof
from app.extensions import db
from tests.factories import open_wishes_through_services
from tests.faults.conftest import audit, claim_invariants, wait_for

pytestmark = pytest.mark.usefixtures("needs_postgres")


def _big_photo(seed: int) -> bytes:
    """An 8-megapixel PNG that stays small on disk: each takes the worker a few tenths of a
    second, long enough to be caught holding its row lock."""
    image = Image.linear_gradient("L").resize((3500, 2300)).convert("RGB")
    draw = ImageDraw.Draw(image)
    for i in range(4):
        x, y = (seed * 977 + i * 1531) % 2500, (seed * 613 + i * 877) % 1500
        draw.rectangle((x, y, x + 900, y + 700), fill=((seed * 40) % 256, 60 * i, 200))
    out = BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _proofs_waiting(app, n: int) -> list[str]:
    """n donors each claim a wish and upload a big photo, through the services, with no worker
    running: n media jobs wait in the queue."""
    from app.auth.models import User
    from app.auth.service import login_wechat
    from app.claims.proofs import submit_proof
    from app.claims.service import claim_wish

    wish_ids = open_wishes_through_services(app, n)
    with app.app_context():
        proof_ids = []
        for i, wish_id in enumerate(wish_ids):
            donor = db.session.get(User, login_wechat(f"dev:killed{i}")["user"].id)
            claim = claim_wish(donor, wish_id)
            proof_ids.append(submit_proof(donor, claim.id, _big_photo(i), "送到了").id)
        return proof_ids


def _locked(app) -> int:
    """Proofs still processing whose row a worker holds locked right now."""
    with app.app_context():
        processing = db.session.execute(
            select(func.count()).select_from(Proof).where(Proof.status == "processing")
        ).scalar_one()
        free = len(db.session.execute(select(Proof.id).where(Proof.status == "processing")
                                      .with_for_update(skip_locked=True)).all())
        db.session.rollback()
        db.session.remove()
        return processing - free


def _statuses(app, ids: list[str]) -> dict[str, str]:
    with app.app_context():
        rows = db.session.execute(select(Proof.id, Proof.status).where(Proof.id.in_(ids))).all()
        db.session.remove()
        return dict(rows)


def test_worker_killed_mid_proof_job_each_proof_is_processed_once(app, processes):
    from app.redis_conn import get_redis
    from app.queue import SERIALIZER

    n = 6
    ids = _proofs_waiting(app, n)
    settings = {"SLA_CHECK_SECONDS": "1", "PROOF_REQUEUE_SECONDS": "3",
                "MEDIA_ROOT": app.config["MEDIA_ROOT"]}
    worker = processes.worker(**settings)
    wait_for(lambda: "ready" in _statuses(app, ids).values(), 90, "a proof processed", 0.05)
    # Kill while a work horse holds a proof's row lock, i.e. mid-job (between reading the row
    # and committing its outcome).
    wait_for(lambda: _locked(app), 10, "a proof being processed", poll=0.005)
    with app.app_context():
        started = StartedJobRegistry("media", connection=get_redis(), serializer=SERIALIZER)
        os.killpg(worker.pid, signal.SIGKILL)  # worker, work horse, scheduler and ticker
        worker.wait()
        killed_at = time.monotonic()
        abandoned = started.get_job_ids(cleanup=False)
    done_at_kill = list(_statuses(app, ids).values()).count("ready")
    assert abandoned, "no job was running at the kill"
    assert done_at_kill < n, "every proof was done before the kill; make n larger"

    processes.worker(**settings)
    wait_for(lambda: set(_statuses(app, ids).values()) == {"ready"}, 60,
             "every proof to be processed", poll=0.1)
    recovered = time.monotonic() - killed_at
    print(f"\nkilled with {done_at_kill}/{n} proofs ready and {abandoned} running; "
          f"all {n} ready {recovered:.1f}s after the kill")

    # Exactly once: one clean image each, quarantine empty, one inbox notice per proof.
    media = Path(app.config["MEDIA_ROOT"])
    with app.app_context():
        for proof in db.session.execute(select(Proof).where(Proof.id.in_(ids))).scalars():
            assert proof.upload_key is None and proof.processed_at is not None
            assert (media / proof.image_key).is_file() and (media / proof.thumb_key).is_file()
            assert not (media / "quarantine" / proof.id).exists() or not any(
                (media / "quarantine" / proof.id).iterdir())
        from app.notifications.models import InboxNotification
        notices = db.session.execute(
            select(func.count()).select_from(InboxNotification)
            .where(InboxNotification.topic.in_(["proof_submitted", "proof_flagged"]))
        ).scalar_one()
        db.session.remove()
    assert notices == n, notices
    assert not claim_invariants(app)
    audit(app)

"""Doorbells collapse: ringing again while a job waits adds nothing (real Redis, job functions
called directly, no worker). Issue 9 item 6: a sweeper that re-rang every proof still processing
on every sweep left 72,000 jobs in the media queue after a burst of 300 deliveries."""
from __future__ import annotations

from datetime import timedelta
from io import BytesIO

from PIL import Image
from rq.job import JobStatus

from app.extensions import db
from tests.factories import open_wishes_through_services


def _photo(seed: int) -> bytes:
    out = BytesIO()
    Image.new("RGB", (32, 32), ((seed * 37) % 256, 90, 160)).save(out, "PNG")
    return out.getvalue()


def _processing_proofs(app, n: int) -> list[str]:
    """n proofs uploaded through the services, with no worker running: still processing."""
    from app.auth.models import User
    from app.auth.service import login_wechat
    from app.claims.proofs import submit_proof
    from app.claims.service import claim_wish

    with app.app_context():
        ids = []
        for i, wish_id in enumerate(open_wishes_through_services(app, n)):
            donor = db.session.get(User, login_wechat(f"dev:bell{i}")["user"].id)
            claim = claim_wish(donor, wish_id)
            ids.append(submit_proof(donor, claim.id, _photo(i), None).id)
        return ids


def test_sweeping_many_times_leaves_at_most_one_media_job_per_processing_proof(
        app, monkeypatch):
    from app.queue import get_queue
    from workers.jobs import sweep

    n = 4
    ids = _processing_proofs(app, n)
    monkeypatch.setitem(app.config, "PROOF_REQUEUE_SECONDS", 0)  # every proof counts as stuck
    with app.app_context():
        for _ in range(25):  # 25 sweeps of a worker that has not got to the photos yet
            assert sweep()["requeued"] == n
        media = get_queue("media")
        assert media.count <= n, f"{media.count} media jobs queued for {n} proofs"
        assert sorted(job.args[0] for job in media.jobs) == sorted(ids)


def test_a_proof_job_that_ran_is_rung_again_by_the_sweeper(app, monkeypatch):
    """A finished or failed job no longer answers the bell: the proof gets a new one."""
    from app.queue import get_queue
    from workers.jobs import sweep

    (proof_id,) = _processing_proofs(app, 1)
    monkeypatch.setitem(app.config, "PROOF_REQUEUE_SECONDS", 0)
    with app.app_context():
        media = get_queue("media")
        job = media.fetch_job(f"proof-{proof_id}")
        media.remove(job)
        job.set_status(JobStatus.FAILED)  # e.g. its worker died and RQ failed it
        assert media.count == 0
        sweep()
        assert media.job_ids == [f"proof-{proof_id}"]
        assert media.fetch_job(f"proof-{proof_id}").get_status() == JobStatus.QUEUED


def _start(job, beat) -> None:
    """What a worker writes when it takes a job, with its last heartbeat at `beat`."""
    pipe = job.connection.pipeline()
    job.prepare_for_execution("worker-1", pipe)
    job.heartbeat(beat, 60, pipeline=pipe)
    pipe.execute()


def test_a_bell_rung_while_its_job_runs_asks_for_one_more_run_only_with_again(app):
    from datetime import datetime, timezone

    from app.queue import again_key, get_queue, ring
    from app.redis_conn import get_redis

    with app.app_context():
        queue = get_queue("ledger")
        assert ring("ledger", "workers.jobs.sign_checkpoint", key="probe-bell", again=True)
        assert not ring("ledger", "workers.jobs.sign_checkpoint", key="probe-bell", again=True)
        assert queue.count == 1
        # A worker takes it: running, with a fresh heartbeat.
        job = queue.fetch_job("probe-bell")
        queue.remove(job)
        _start(job, beat=datetime.now(timezone.utc))
        assert job.get_status() == JobStatus.STARTED
        assert not ring("ledger", "workers.jobs.sign_checkpoint", key="probe-bell")
        assert get_redis().get(again_key("probe-bell")) is None
        # It may have read the tree before this ring's commit: once more, after it ends.
        assert not ring("ledger", "workers.jobs.sign_checkpoint", key="probe-bell", again=True)
        assert get_redis().get(again_key("probe-bell")) is not None
        assert queue.count == 0


def test_a_running_job_whose_worker_stopped_beating_is_replaced(app):
    """A job left `started` by a killed worker (RQ never reruns it) does not block its bell."""
    from datetime import datetime, timezone

    from app.queue import ABANDONED_AFTER_SECONDS, get_queue, ring

    with app.app_context():
        queue = get_queue("media")
        ring("media", "workers.jobs.process_proof", ("prf_x",), key="proof-prf_x")
        job = queue.fetch_job("proof-prf_x")
        queue.remove(job)
        _start(job, beat=datetime.now(timezone.utc) - timedelta(
            seconds=ABANDONED_AFTER_SECONDS + 5))
        assert ring("media", "workers.jobs.process_proof", ("prf_x",), key="proof-prf_x")
        assert queue.job_ids == ["proof-prf_x"]


def test_a_claim_deadline_scheduled_twice_is_one_scheduled_job(app):
    from app.auth.models import User
    from app.auth.service import login_wechat
    from app.claims.models import Claim
    from app.claims.service import _schedule, claim_wish
    from app.queue import get_queue

    (wish_id,) = open_wishes_through_services(app, 1)
    with app.app_context():
        donor = db.session.get(User, login_wechat("dev:twice")["user"].id)
        claim_id = claim_wish(donor, wish_id).id
        registry = get_queue("default").scheduled_job_registry
        before = registry.count
        _schedule(db.session.get(Claim, claim_id))  # e.g. a retried commit rings again
        db.session.commit()
        assert registry.count == before

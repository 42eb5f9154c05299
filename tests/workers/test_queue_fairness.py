"""No queue starves another: a live `python -m workers` with a backlog of slow photo jobs still
signs the ledger's checkpoint within seconds of an append (issue 9 item 6: the checkpoint waited
9 minutes behind 72,000 media jobs, because the worker drained its queues in strict priority)."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from app.extensions import db

SLOW = "tests.workers.test_queue_fairness.slow_photo"


def slow_photo(n: int) -> int:
    """Stands in for a proof's re-encode: a tenth of a second of work, counted in Redis."""
    from app.redis_conn import get_redis

    time.sleep(0.1)
    get_redis().incr("probe:photos")
    return n


def test_a_backlog_of_slow_media_jobs_does_not_keep_the_checkpoint_from_being_signed(
        app, processes):
    from app.ledger import log as ledger_log
    from app.ledger.models import LedgerCheckpoint
    from app.queue import enqueue, get_queue
    from app.redis_conn import get_redis

    with app.app_context():
        redis_client = get_redis()
        for n in range(300):  # 30 s of photos for one worker
            enqueue("media", SLOW, (n,))
        # Only the doorbell may sign: the periodic safety net and sweeps stay out of the way.
        worker = processes.worker(LEDGER_CHECKPOINT_SECONDS="3600", SLA_CHECK_SECONDS="3600")
        deadline = time.monotonic() + 30
        while int(redis_client.get("probe:photos") or 0) < 3:  # the worker is into the backlog
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker did not start on the photos"
            time.sleep(0.05)

        ledger_log.append("test", {"kind": "test", "n": 1}, "test", "fairness-1")
        db.session.commit()
        appended = time.monotonic()

        def signed() -> int:
            size = db.session.execute(select(func.max(LedgerCheckpoint.size))).scalar()
            db.session.rollback()
            return size or 0

        while signed() < 1:
            waited = time.monotonic() - appended
            assert waited < 5, (f"checkpoint still unsigned {waited:.1f}s after the append, "
                                f"{get_queue('media').count} photos still queued")
            time.sleep(0.05)
        left = get_queue("media").count
        print(f"\ncheckpoint signed {time.monotonic() - appended:.2f}s after the append, "
              f"{left} photos still queued")
        assert left > 100  # signed in the middle of the backlog

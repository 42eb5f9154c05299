"""`python -m workers` as a real process: jobs enqueued after commit run inside the app context;
jobs enqueued in a transaction that rolls back never reach Redis. Real Redis, no fakes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
PROBE = "tests.workers.test_worker_starts.record_display_name"


def record_display_name(user_id: str, tag: str) -> str:
    """The job under test: reads a committed row and writes what it saw to Redis.
    Needs the app context (db session, redis) that the worker provides."""
    from app.auth.models import User
    from app.extensions import db
    from app.redis_conn import get_redis

    name = db.session.get(User, user_id).display_name
    get_redis().set(f"probe:{tag}", name)
    return name


@pytest.fixture
def start_worker(app, database_url, redis_url, tmp_path):
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "REDIS_URL", "INSTANCE_PATH", "APP_ENV")}
        env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, APP_ENV="development",
                   INSTANCE_PATH=str(tmp_path / "instance"), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env,
                                stdout=open(tmp_path / "worker.log", "wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:  # never leave a worker (or its scheduler) behind
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def _wait_for(redis_client, key: str, proc: subprocess.Popen, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = redis_client.get(key)
        if value is not None:
            return value.decode()
        assert proc.poll() is None, "the worker exited early"
        time.sleep(0.1)
    raise AssertionError(f"no job wrote {key} within {timeout}s")


def _moderator(display_name: str):
    from app.auth.service import create_staff

    return create_staff(f"probe{time.monotonic_ns() % 10**9}", "moderator", PASSWORD,
                        display_name=display_name)


def test_job_enqueued_after_commit_runs_in_a_real_worker_with_app_context(app, start_worker):
    from app.extensions import db
    from app.queue import enqueue_after_commit, get_queue
    from app.redis_conn import get_redis

    worker = start_worker()
    with app.app_context():
        user = _moderator("提交前")
        user.display_name = "提交后"
        enqueue_after_commit(db.session, "default", PROBE, user.id, "committed")
        assert get_queue("default").count == 0  # nothing rings before the commit
        db.session.commit()
        # The worker sees the committed row, not the state at enqueue time.
        assert _wait_for(get_redis(), "probe:committed", worker) == "提交后"
    assert _stop(worker) == 0


def test_job_enqueued_in_a_rolled_back_transaction_is_never_enqueued(app, start_worker):
    from app.extensions import db
    from app.queue import enqueue_after_commit, get_queue
    from app.redis_conn import get_redis

    worker = start_worker()
    with app.app_context():
        user = _moderator("回滚测试")
        user_id = user.id
        user.display_name = "不会提交"
        enqueue_after_commit(db.session, "default", PROBE, user_id, "rolled-back")
        db.session.rollback()
        assert get_queue("default").count == 0
        # The next commit in the same session must not resurrect the dropped job.
        enqueue_after_commit(db.session, "default", PROBE, user_id, "sentinel")
        db.session.commit()
        assert _wait_for(get_redis(), "probe:sentinel", worker) == "回滚测试"
        assert get_redis().get("probe:rolled-back") is None
        # exactly one probe ran (the periodic claims sweep shares the default queue)
        queue = get_queue("default")
        finished = [job for job in queue.job_class.fetch_many(
            queue.finished_job_registry.get_job_ids(), connection=queue.connection,
            serializer=queue.serializer) if job]
        assert [job.args[1] for job in finished if job.func_name == PROBE] == ["sentinel"]
    assert _stop(worker) == 0


def test_job_scheduled_after_commit_is_run_by_the_worker_scheduler_at_its_time(
        app, start_worker):
    from datetime import datetime, timedelta, timezone

    from app.extensions import db
    from app.queue import get_queue, schedule_after_commit
    from app.redis_conn import get_redis

    worker = start_worker()
    with app.app_context():
        user = _moderator("定时任务")
        at = datetime.now(timezone.utc) + timedelta(seconds=2)
        schedule_after_commit(db.session, at, "default", PROBE, user.id, "scheduled")
        assert get_queue("default").scheduled_job_registry.count == 0  # not before the commit
        db.session.commit()
        assert get_queue("default").scheduled_job_registry.count == 1
        assert get_queue("default").count == 0  # waiting for its time, not on the queue yet
        assert _wait_for(get_redis(), "probe:scheduled", worker) == "定时任务"
        assert datetime.now(timezone.utc) >= at
    assert _stop(worker) == 0


def test_jobs_take_ids_not_orm_objects_and_only_known_queues(app):
    from app.extensions import db
    from app.queue import enqueue_after_commit

    with app.app_context():
        user = _moderator("对象")
        with pytest.raises(TypeError, match="IDs, not objects"):
            enqueue_after_commit(db.session, "default", PROBE, user, "x")
        with pytest.raises(ValueError, match="unknown queue"):
            enqueue_after_commit(db.session, "no-such-queue", PROBE, user.id, "x")
        with pytest.raises(TypeError, match="dotted path"):
            enqueue_after_commit(db.session, "default", record_display_name, user.id, "x")


def test_periodic_job_is_enqueued_once_per_interval_across_worker_processes(app):
    from app.queue import get_queue
    from app.redis_conn import get_redis
    from workers import Periodic, tick_periodic

    job = Periodic("probe-sweep", PROBE, every="SLA_CHECK_SECONDS")
    with app.app_context():
        redis_client = get_redis()
        now = time.time()
        # Two worker processes tick at the same moment: one bell, not two.
        assert tick_periodic(redis_client, app.config, [job], now) == ["probe-sweep"]
        assert tick_periodic(redis_client, app.config, [job], now + 0.5) == []
        assert get_queue("default").count == 1
        assert redis_client.ttl("periodic:probe-sweep") <= app.config["SLA_CHECK_SECONDS"]

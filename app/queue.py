"""Background jobs on RQ: enqueue only after the transaction commits; jobs get IDs, not objects.

A job is named by its dotted path (`"workers.sla.sweep"`) and receives plain JSON values (IDs,
numbers, strings). Queues use RQ's JSON serializer, never pickle, so a job payload is data that
any worker version can read and nobody can smuggle code through Redis.

Redis is a doorbell, not the truth: if an enqueue is lost (Redis down at commit time), the row
that needed the work is still in the database, and a periodic sweeper finds it again.

Doorbells (`ring`) carry a stable job id, so that ringing again adds nothing while a job is
already waiting: a sweeper that re-rings every proof still processing, every few seconds, used to
pile up tens of thousands of copies of the same job behind a slow queue.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus, validate_job_id
from rq.results import Result
from rq.serializers import JSONSerializer
from rq.utils import utcparse
from sqlalchemy.orm import Session, scoped_session

from app.redis_conn import get_redis
from app.uow import on_commit, pipeline_on_commit

# Purpose-named queues; a worker listens on all of them, taking turns (workers/__init__.py).
QUEUES: tuple[str, ...] = ("default", "notifications", "media", "ledger", "maintenance")

SERIALIZER = JSONSerializer

# A bell whose job is in one of these states is already answered: ringing again adds nothing.
_WAITING = {JobStatus.QUEUED.value, JobStatus.SCHEDULED.value, JobStatus.DEFERRED.value}
# A started job whose worker has not beaten its heart for this long was abandoned (the worker was
# killed: RQ 3.0 only notices minutes later and never reruns it): the bell may ring it again.
# The worker beats every JOB_HEARTBEAT_SECONDS while a job runs (workers/__init__.py).
JOB_HEARTBEAT_SECONDS = 5
ABANDONED_AFTER_SECONDS = 4 * JOB_HEARTBEAT_SECONDS


def _check_queue(name: str) -> None:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}; known: {', '.join(QUEUES)}")


def get_queue(name: str, connection: redis.Redis | None = None) -> Queue:
    _check_queue(name)
    return Queue(name, connection=connection or get_redis(), serializer=SERIALIZER)


def _check_job(func_path: str, args: tuple, kwargs: dict) -> None:
    """Fail in the caller (not later in a swallowed after-commit callback) on a bad job."""
    if not isinstance(func_path, str) or "." not in func_path:
        raise TypeError("a job is named by its dotted path, e.g. 'workers.sla.sweep'")
    try:
        json.dumps([args, kwargs])
    except (TypeError, ValueError) as exc:
        raise TypeError(f"job arguments must be plain JSON values (IDs, not objects): {exc}") \
            from None


def enqueue(queue_name: str, func_path: str, args: tuple = (), kwargs: dict | None = None,
            connection: redis.Redis | None = None, **options: Any):
    """Enqueue now. `options` are RQ's job options (job_id, job_timeout, result_ttl, ...).
    Inside a transaction, use `enqueue_after_commit` instead."""
    kwargs = kwargs or {}
    _check_job(func_path, args, kwargs)
    return get_queue(queue_name, connection).enqueue(func_path, args=args, kwargs=kwargs,
                                                     **options)


def again_key(job_id: str) -> str:
    """Set while a bell's job runs and was rung again: the worker runs it once more after."""
    return f"bell-again:{job_id}"


def ring(queue_name: str, func_path: str, args: tuple = (), kwargs: dict | None = None, *,
         key: str, again: bool = False, connection: redis.Redis | None = None,
         **options: Any) -> bool:
    """Enqueue a doorbell under the stable job id `key`, unless it is already waiting; return
    whether a job was enqueued.

    A job with that id that is queued (or scheduled) answers this ring too. One that is running
    answers it as well, unless `again`: a job that reads "everything due" (the outbox relay, the
    checkpoint signer) may have read before this ring's commit, so the worker runs it once more
    when it ends (`AppWorker`). A finished, failed or abandoned job is replaced.
    """
    kwargs = kwargs or {}
    _check_job(func_path, args, kwargs)
    validate_job_id(key)
    _check_queue(queue_name)
    connection = connection or get_redis()
    job_key = Job.key_for(key)  # the job class get_queue's queues use
    # The common case under load, a bell already waiting, in one round trip (and no Queue
    # object): a job seen waiting after this ring's commit runs after it, whatever happens to
    # it next.
    if _waiting(connection.hget(job_key, "status")):
        return False
    return _ring_watched(queue_name, func_path, args, kwargs, key, again, connection, options)


def _waiting(status: bytes | None) -> bool:
    """Whether a job's stored status (its hash's `status` field, as Redis answers it) is waiting."""
    return status is not None and status.decode() in _WAITING


def _ring_watched(queue_name: str, func_path: str, args: tuple, kwargs: dict, key: str,
                  again: bool, connection: redis.Redis, options: dict) -> bool:
    """`ring` past its quick look: the job's state read and acted on atomically."""
    job_key = Job.key_for(key)
    queue = get_queue(queue_name, connection)
    with queue.connection.pipeline() as pipe:
        while True:
            try:
                # Read the job's state and act on it atomically: WATCH makes EXEC fail (and us
                # read again) if the job changed in between, e.g. a worker finished it.
                pipe.watch(job_key)
                status, beat, started = (
                    v.decode() if v is not None else None
                    for v in pipe.hmget(job_key, "status", "last_heartbeat", "started_at"))
                if status in _WAITING:
                    pipe.reset()
                    return False
                running = status == JobStatus.STARTED.value and not _abandoned(beat or started)
                if running and not again:
                    pipe.reset()
                    return False
                job = None if running else queue.create_job(
                    func_path, args=args, kwargs=kwargs, job_id=key, **options)
                pipe.multi()
                if running:
                    pipe.set(again_key(key), 1, ex=24 * 3600)
                else:
                    # The job replaced: drop its old registry entries and stored results.
                    for registry in (queue.finished_job_registry, queue.failed_job_registry,
                                     queue.canceled_job_registry):
                        pipe.zrem(registry.key, key)
                    pipe.delete(job_key, Result.get_key(key))
                    queue.enqueue_job(job, pipeline=pipe)
                pipe.execute()
                return not running
            except redis.WatchError:
                continue


def _abandoned(heartbeat: str | None) -> bool:
    if not heartbeat:
        return True
    age = datetime.now(timezone.utc) - utcparse(heartbeat).replace(tzinfo=timezone.utc)
    return age.total_seconds() > ABANDONED_AFTER_SECONDS


def schedule(at: datetime, queue_name: str, func_path: str, args: tuple = (),
             kwargs: dict | None = None, connection: redis.Redis | None = None, **options: Any):
    """Put a job in RQ's scheduled registry; a worker's scheduler enqueues it at `at`."""
    kwargs = kwargs or {}
    _check_job(func_path, args, kwargs)
    # RQ keeps the time in whole seconds, rounded down: round up, so a deadline's job never runs
    # before the deadline (it would find nothing due and leave the work to the sweeper).
    if at.microsecond:
        at = at.replace(microsecond=0) + timedelta(seconds=1)
    queue = get_queue(queue_name, connection)
    if "job_id" not in options:
        return queue.enqueue_at(at, func_path, args=args, kwargs=kwargs, **options)
    # A stable id: the same deadline scheduled twice is one job (RQ refuses the second).
    try:
        return queue.enqueue_at(at, func_path, args=args, kwargs=kwargs, unique=True, **options)
    except DuplicateJobError:
        return None


def enqueue_after_commit(session: Session, queue_name: str, func_path: str,
                         *args: Any, dedupe_key: str | None = None, **kwargs: Any) -> None:
    """Enqueue `func_path(*args, **kwargs)` once `session` commits; nothing if it rolls back.
    With `dedupe_key`, asking again in the same transaction rings the bell only once."""
    _check_job(func_path, args, kwargs)
    connection = get_redis()  # taken now: the commit may happen outside an app context
    get_queue(queue_name, connection)  # an unknown queue fails here, not after the commit
    on_commit(session, lambda: enqueue(queue_name, func_path, args, kwargs,
                                       connection=connection), key=dedupe_key)


def ring_after_commit(session: Session, queue_name: str, func_path: str, *args: Any,
                      key: str, again: bool = False) -> None:
    """`ring` once `session` commits (nothing if it rolls back); once per transaction per key."""
    _check_job(func_path, args, {})
    validate_job_id(key)
    connection = get_redis()  # taken now: the commit may happen outside an app context
    _check_queue(queue_name)  # an unknown queue fails here, not after the commit
    job_key = Job.key_for(key)

    # The common case, a bell already waiting, is one HGET in the round trip the transaction
    # makes after its commit anyway (with the site's version bumps, app.uow.pipeline_on_commit);
    # anything else rings as `ring` does after its own look.
    def answer(replies) -> None:
        if isinstance(replies, Exception) or not _waiting(replies[0]):
            _ring_watched(queue_name, func_path, args, {}, key, again, connection, {})

    pipeline_on_commit(session, connection, lambda pipe: pipe.hget(job_key, "status"), answer,
                       key=f"ring:{key}")


def schedule_after_commit(session: Session, at: datetime, queue_name: str, func_path: str,
                          *args: Any, job_id: str | None = None, **kwargs: Any) -> None:
    """Schedule `func_path(*args, **kwargs)` for `at` once `session` commits; nothing on rollback.
    A deadline's truth stays in the database: this is only its doorbell. With `job_id`, the same
    id scheduled again (in this transaction or any later one) is one job. Every job a
    transaction schedules goes to Redis in one round trip after its commit."""
    _check_job(func_path, args, kwargs)
    if job_id is not None:
        validate_job_id(job_id)
    connection = get_redis()
    get_queue(queue_name, connection)
    batch = _schedule_batch(session, connection)
    if job_id is not None and any(job[4] == job_id for job in batch):
        return
    batch.append((at, queue_name, func_path, (args, kwargs), job_id))


_BATCH = "schedule_after_commit"


def _schedule_batch(session: Session, connection: redis.Redis) -> list:
    """The jobs this transaction schedules after its commit (a new list per transaction, with
    one after-commit callback that sends them all)."""
    real = session() if isinstance(session, scoped_session) else session
    transaction = real.get_transaction()
    held = real.info.get(_BATCH)
    if held is None or held[0] is not transaction:
        held = real.info[_BATCH] = (transaction, [])
        jobs = held[1]
        on_commit(real, lambda: schedule_many(jobs, connection))
    return held[1]


def schedule_many(jobs: list, connection: redis.Redis) -> None:
    """Put jobs `(at, queue, func_path, (args, kwargs), job_id)` in RQ's scheduled registries in
    one pipeline. A stable job id encodes its time (e.g. `expire-<claim>-<second>`), so
    scheduling it again writes the same job at the same time: still one job."""
    pipe = connection.pipeline()
    for at, queue_name, func_path, (args, kwargs), job_id in jobs:
        # RQ keeps the time in whole seconds, rounded down: round up (see schedule()).
        if at.microsecond:
            at = at.replace(microsecond=0) + timedelta(seconds=1)
        queue = get_queue(queue_name, connection)
        job = queue.create_job(func_path, args=args, kwargs=kwargs, job_id=job_id,
                               status=JobStatus.SCHEDULED)
        queue.schedule_job(job, at, pipeline=pipe)
    pipe.execute()

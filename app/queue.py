"""Background jobs on RQ: enqueue only after the transaction commits; jobs get IDs, not objects.

A job is named by its dotted path (`"workers.sla.sweep"`) and receives plain JSON values (IDs,
numbers, strings). Queues use RQ's JSON serializer, never pickle, so a job payload is data that
any worker version can read and nobody can smuggle code through Redis.

Redis is a doorbell, not the truth: if an enqueue is lost (Redis down at commit time), the row
that needed the work is still in the database, and a periodic sweeper finds it again.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy.orm import Session

from app.redis_conn import get_redis
from app.uow import on_commit

# Purpose-named queues; a worker listens on all of them, in this order of priority.
QUEUES: tuple[str, ...] = ("default", "notifications", "media", "ledger", "maintenance")

SERIALIZER = JSONSerializer


def get_queue(name: str, connection: redis.Redis | None = None) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}; known: {', '.join(QUEUES)}")
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


def schedule(at: datetime, queue_name: str, func_path: str, args: tuple = (),
             kwargs: dict | None = None, connection: redis.Redis | None = None, **options: Any):
    """Put a job in RQ's scheduled registry; a worker's scheduler enqueues it at `at`."""
    kwargs = kwargs or {}
    _check_job(func_path, args, kwargs)
    # RQ keeps the time in whole seconds, rounded down: round up, so a deadline's job never runs
    # before the deadline (it would find nothing due and leave the work to the sweeper).
    if at.microsecond:
        at = at.replace(microsecond=0) + timedelta(seconds=1)
    return get_queue(queue_name, connection).enqueue_at(at, func_path, args=args, kwargs=kwargs,
                                                        **options)


def enqueue_after_commit(session: Session, queue_name: str, func_path: str,
                         *args: Any, dedupe_key: str | None = None, **kwargs: Any) -> None:
    """Enqueue `func_path(*args, **kwargs)` once `session` commits; nothing if it rolls back.
    With `dedupe_key`, asking again in the same transaction rings the bell only once."""
    _check_job(func_path, args, kwargs)
    connection = get_redis()  # taken now: the commit may happen outside an app context
    get_queue(queue_name, connection)  # an unknown queue fails here, not after the commit
    on_commit(session, lambda: enqueue(queue_name, func_path, args, kwargs,
                                       connection=connection), key=dedupe_key)


def schedule_after_commit(session: Session, at: datetime, queue_name: str, func_path: str,
                          *args: Any, **kwargs: Any) -> None:
    """Schedule `func_path(*args, **kwargs)` for `at` once `session` commits; nothing on rollback.
    A deadline's truth stays in the database: this is only its doorbell."""
    _check_job(func_path, args, kwargs)
    connection = get_redis()
    get_queue(queue_name, connection)
    on_commit(session, lambda: schedule(at, queue_name, func_path, args, kwargs,
                                        connection=connection))

"""The background worker: RQ on every queue, with RQ's scheduler, each job inside the app context.

`python -m workers` runs `main()`. Jobs are thin entry points that take IDs and are safe to run
twice; they are enqueued after commit through `app.queue`. Periodic jobs are declared below as
data and rung by a small ticker process: every worker process runs one, and a Redis key per job
(SET NX EX) makes sure each job is enqueued once per interval however many workers are running.

RQ's own `rq cron` is not used for these: in RQ 3.0 it enqueues with the pickle serializer and
has no lock across processes, while our queues and workers speak JSON only.

The ticker and RQ's scheduler are child processes of the worker and die with it, even when it is
killed with SIGKILL (app.lifeline).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask
from rq import Worker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler
from rq.worker import DequeueStrategy

from app.lifeline import die_with_parent, orphaned
from app.queue import JOB_HEARTBEAT_SECONDS, QUEUES, SERIALIZER, again_key, ring

log = logging.getLogger("workers")


@dataclass(frozen=True)
class Periodic:
    """A job enqueued every `every` seconds; `every` may name a setting (e.g. SLA_CHECK_SECONDS).
    `bell` is its job id (app.queue.ring): a tick adds nothing while the last one still waits,
    and a safety net shares the id of the doorbell it backs up."""

    name: str
    func_path: str
    every: int | str
    queue: str = "default"
    bell: str | None = None

    @property
    def job_id(self) -> str:
        return self.bell or f"periodic-{self.name}"

    def interval(self, config: Mapping[str, Any]) -> int:
        seconds = config[self.every] if isinstance(self.every, str) else self.every
        return max(1, int(seconds))


# Periodic jobs, as data.
PERIODIC: list[Periodic] = [
    # The deadline's safety net: expires due claims, queues due reminders, requeues lost proofs.
    # A worker busy with a backlog of doorbells (photos after an outage) must still expire claims
    # on time (tests/faults/test_redis_outage.py saw it starved for 10 s behind the notifications
    # queue): the worker takes the queues in turn (main()).
    Periodic("claims-sweep", "workers.jobs.sweep", every="SLA_CHECK_SECONDS",
             queue="default"),
    Periodic("idempotency-purge", "workers.jobs.purge_idempotency_keys", every=3600,
             queue="maintenance"),
    # The outbox relay's safety net: messages whose doorbell was lost, and retries coming due.
    Periodic("notify-relay", "workers.jobs.relay_outbox", every="NOTIFY_RELAY_SECONDS",
             queue="notifications", bell="outbox-relay"),
    # The ledger's safety net: a checkpoint for entries whose signing doorbell was lost.
    Periodic("ledger-checkpoint", "workers.jobs.sign_checkpoint", every="LEDGER_CHECKPOINT_SECONDS",
             queue="ledger", bell="ledger-checkpoint"),
    # The 505 fund's safety net: pending donations are settled (a lost payment notice) or closed.
    Periodic("fund-reconcile", "workers.jobs.reconcile_donations", every="FUND_RECONCILE_SECONDS",
             queue="maintenance"),
    # Finding people: an overdue visit or verify task tells the town and the moderators, once.
    Periodic("cases-escalate", "workers.jobs.escalate_overdue_tasks",
             every="CASES_ESCALATION_SECONDS", queue="maintenance"),
]


# Claim deadlines and the claims sweep (app/claims/service.py schedules them there).
DEADLINE_QUEUE = "default"


class AppWorker(Worker):
    """An RQ worker whose jobs run inside the Flask app context (db session, config, redis)."""

    flask_app: Flask | None = None
    # RQ backs off up to 60 s between reconnection attempts while dequeueing: cap it, so a worker
    # is back within seconds of Redis (tests/faults/test_redis_outage.py).
    max_connection_wait_time = 5.0
    stop_asked = False  # set by SIGTERM/SIGINT: main() then stops instead of starting over

    def request_stop(self, signum, frame):
        self.stop_asked = True
        super().request_stop(signum, frame)

    def reorder_queues(self, reference_queue):
        """Round robin (see main()), except that the deadline queue is looked at first after
        every job: a claim's expiry and the claims sweep are due at a second, while one job of
        every other queue (an outbox relay sending a storm's messages, a photo) can take seconds.
        The deadline queue cannot starve the others: it holds one sweep per interval and one
        job per claim deadline or reminder second."""
        super().reorder_queues(reference_queue)
        first = [q for q in self._ordered_queues if q.name == DEADLINE_QUEUE]
        self._ordered_queues = first + [q for q in self._ordered_queues
                                        if q.name != DEADLINE_QUEUE]

    def perform_job(self, job, queue, execution) -> bool:
        from app.extensions import db

        app = self.flask_app
        if app is None:
            raise RuntimeError("AppWorker.flask_app is not set")
        with app.app_context():
            # A forked work horse must not reuse connections pooled by its parent.
            db.engine.dispose(close=False)
            try:
                return super().perform_job(job, queue, execution)
            finally:
                self._ring_again(job)

    def _ring_again(self, job) -> None:
        """A doorbell rung while its job ran (app.queue.ring with `again`): run it once more,
        now that this run has ended (its status is final, so the ring enqueues)."""
        try:
            if self.connection.delete(again_key(job.id)):
                ring(job.origin, job.func_name, tuple(job.args), job.kwargs, key=job.id,
                     again=True, connection=self.connection)
        except redis.RedisError as exc:  # the periodic safety net rings it later
            log.warning("could not ring %s again: %s", job.id, exc)

    def _start_scheduler(self, burst=False, logging_level="INFO",
                         date_format=DEFAULT_LOGGING_DATE_FORMAT,
                         log_format=DEFAULT_LOGGING_FORMAT):
        """RQ 3.0's own, with a scheduler process that dies with this worker (AppScheduler).
        A burst worker schedules in-process: RQ's is fine for it."""
        if burst:
            return super()._start_scheduler(burst, logging_level, date_format, log_format)
        self.scheduler = AppScheduler(
            self.queues, connection=self.connection, serializer=self.serializer,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format, log_format=log_format)
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            self.scheduler.start()


class AppScheduler(RQScheduler):
    """RQ's scheduler, forked by the worker; dies with the worker (SIGTERM: it releases its
    locks on the way out, so another worker's scheduler takes over at once)."""

    parent_pid = 0

    def start(self):
        self.parent_pid = os.getpid()
        return super().start()

    def _install_signal_handlers(self):  # the first thing the forked process does
        super()._install_signal_handlers()
        die_with_parent(self.parent_pid)


def tick_periodic(connection: redis.Redis, config: Mapping[str, Any],
                  jobs: list[Periodic], now: float | None = None) -> list[str]:
    """Enqueue every periodic job whose interval has passed; return the names enqueued."""
    now = time.time() if now is None else now
    enqueued = []
    for job in jobs:
        interval = job.interval(config)
        # Whoever sets the key first (across all worker processes) rings this interval's bell.
        key = f"periodic:{job.name}"
        if connection.set(key, int(now), nx=True, ex=interval):
            # Nothing new while the last tick's job still waits or runs; the interval then
            # starts again at the next tick (a second later), not a whole interval later.
            if ring(job.queue, job.func_path, key=job.job_id, connection=connection):
                enqueued.append(job.name)
            else:
                connection.delete(key)
    return enqueued


def _run_periodic(redis_url: str, config: dict[str, Any], jobs: list[Periodic],
                  parent_pid: int) -> None:
    from app.redis_conn import connect

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent_pid)  # even if the parent is SIGKILLed
    connection = connect(redis_url)  # a fresh connection: never share sockets across a fork
    log.info("periodic ticker started for %s", ", ".join(j.name for j in jobs))
    while not orphaned(parent_pid):  # where prctl is missing (not Linux)
        try:
            for name in tick_periodic(connection, config, jobs):
                log.info("periodic job %s enqueued", name)
        except redis.RedisError as exc:
            log.warning("periodic ticker cannot reach redis (%s); retrying", exc)
        time.sleep(1)


def start_periodic(app: Flask, jobs: list[Periodic]) -> multiprocessing.Process | None:
    if not jobs:
        log.info("no periodic jobs declared")
        return None
    config = {key: app.config[key] for key in app.config if key.isupper()}
    process = multiprocessing.get_context("fork").Process(
        target=_run_periodic, args=(app.config["REDIS_URL"], config, jobs, os.getpid()),
        name="periodic-ticker", daemon=True)
    process.start()
    return process


def main() -> int:
    from app import create_app

    app = create_app()
    AppWorker.flask_app = app
    connection = app.extensions["redis"]
    log.info("worker for queues %s (json serializer, scheduler on)", ", ".join(QUEUES))
    ticker = start_periodic(app, PERIODIC)
    try:
        while True:
            worker = None
            try:
                worker = AppWorker(list(QUEUES), connection=connection, serializer=SERIALIZER,
                                   job_monitoring_interval=JOB_HEARTBEAT_SECONDS)
                # Round robin: after a job from one queue, the next dequeue starts at the queue
                # after it, so no queue waits for more than one job of each other queue. In
                # strict priority order (RQ's default) a backlog of 300 photos kept the ledger's
                # checkpoint unsigned for minutes. Measured (tests/workers/test_queue_fairness.py:
                # one worker, 300 photo jobs of 0.1 s, then a ledger append): signed 0.3 s after
                # the append round robin; in strict order 31 photos ran in the first 5 s, so
                # ~50 s. A worker per queue group would cut the 0.3 s to the fork time alone,
                # but costs a process and a database pool per group on a 2-core machine, and a
                # group's own backlog would still be served in order; the bound round robin
                # gives (one job of each other queue) is what the README's "seconds" needs.
                # More throughput: run more `python -m workers`.
                worker.work(with_scheduler=True, dequeue_strategy=DequeueStrategy.ROUND_ROBIN,
                            logging_level=str(app.config["LOG_LEVEL"]).upper())
            except redis.RedisError as exc:
                log.warning("worker lost Redis: %s", exc)
            if worker is not None and worker.stop_asked:
                break
            # RQ quits its loop (and its scheduler process dies) when Redis goes away between
            # two dequeues; the database still holds all the work, so start over once Redis
            # answers: the periodic sweeps then find whatever lost its doorbell.
            log.warning("worker stopped without being asked to; starting again once Redis "
                        "answers")
            _wait_for_redis(connection)
    finally:
        if ticker is not None:
            ticker.terminate()
            ticker.join(5)
    log.info("worker stopped")
    return 0


def _wait_for_redis(connection: redis.Redis) -> None:
    # The last worker's signal handlers are gone with it: SIGTERM/SIGINT stop us here at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    time.sleep(1)  # never spin, even if the worker quit for another reason
    while True:
        try:
            connection.ping()
            return
        except redis.RedisError:
            time.sleep(0.5)

"""In-process profiling helpers shared by the bench/*/profile.py scripts: counters of what a
request or batch does (SQL statements, their time, pool checkouts, Redis round trips, threads,
garbage collections) and an optional pyinstrument run around the timed part."""
from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def counters(app, *, sql_time: bool = False, pool: bool = False, redis_calls: bool = False,
             threads: bool = False, collections: bool = False, width: int = 150) -> Counter:
    """A Counter filled from now on: `sql <VERB>` and `sql (all)` always; with `sql_time`,
    milliseconds by statement head; with `pool`, pool checkouts; with `redis_calls`, Redis
    commands and round trips (a pipeline counts once); with `threads`, threads started; with
    `collections`, time and runs of each GC generation. While `counts["trace"]` is set, each
    statement or command is printed too."""
    from sqlalchemy import event

    from app.extensions import db
    counts: Counter = Counter()
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _sql(conn, cursor, statement, parameters, context, executemany):
        verb = statement.lstrip().split(None, 1)[0].upper()
        if counts["trace"]:
            print("SQL  ", " ".join(statement.split())[:width],
                  f"(executemany {len(parameters)})" if executemany else "")
        counts[f"sql {verb}"] += 1
        counts["sql (all)"] += 1
        if sql_time:
            conn.info["bench_started"] = (time.perf_counter(), statement.lstrip()[:24])

    if sql_time:
        @event.listens_for(engine, "after_cursor_execute")
        def _sql_done(conn, cursor, statement, parameters, context, executemany):
            started, head = conn.info.pop("bench_started")
            counts[f"ms  {' '.join(head.split()[:3])}"] += (time.perf_counter() - started) * 1000

    if pool:
        @event.listens_for(engine, "engine_connect")
        def _connect(conn):
            counts["pool checkouts"] += 1
            if counts["trace"]:
                print("POOL checkout")

    if redis_calls:
        import redis
        original, original_pipe = redis.Redis.execute_command, redis.client.Pipeline.execute

        def execute_command(self, *a, **kw):
            counts[f"redis {a[0]}"] += 1
            if counts["trace"]:
                print("REDIS", " ".join(str(x) for x in a)[:width])
            counts["redis round trips"] += 1
            return original(self, *a, **kw)

        def pipe_execute(self, *a, **kw):
            counts["redis round trips"] += 1
            counts["redis pipelines"] += 1
            if counts["trace"]:
                print("REDIS pipeline",
                      [" ".join(str(x) for x in c[0])[:80] for c in self.command_stack])
            return original_pipe(self, *a, **kw)

        redis.Redis.execute_command = execute_command
        redis.client.Pipeline.execute = pipe_execute

    if threads:
        start = threading.Thread.start

        def thread_start(self, *a, **kw):
            counts["threads started"] += 1
            return start(self, *a, **kw)

        threading.Thread.start = thread_start

    if collections:
        began = {}

        def _gc(phase, info):
            if phase == "start":
                began["at"] = time.perf_counter()
            else:
                took = (time.perf_counter() - began["at"]) * 1000
                counts[f"gc gen{info['generation']} (ms)"] += took
                counts[f"gc gen{info['generation']} runs"] += 1
        gc.callbacks.append(_gc)
    return counts


@contextlib.contextmanager
def profiled(enabled: bool, html: str | None = None) -> Iterator[bool]:
    """Run the block under pyinstrument (a bench-only tool) when `enabled`, then print its call
    tree and write its HTML flame graph to `html` if given. Yields whether it profiled."""
    if not enabled:
        yield False
        return
    from pyinstrument import Profiler
    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield True
    finally:
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        if html:
            Path(html).write_text(profiler.output_html())


@contextlib.contextmanager
def measured() -> Iterator[dict]:
    """Time the block: fills the yielded dict with `wall`, `cpu` (this process), `user` and
    `system` seconds once it ends."""
    import os

    took: dict = {}
    started, cpu, times = time.perf_counter(), time.process_time(), os.times()
    yield took
    now = os.times()
    took.update(wall=time.perf_counter() - started, cpu=time.process_time() - cpu,
                user=now.user - times.user, system=now.system - times.system)


def print_per_request(count: int, noun: str, took: dict, counts: Counter, profiled: bool,
                      statuses: Counter) -> None:
    """The per-request report of the request profilers: wall and CPU milliseconds each, then
    the counters divided by `count`."""
    each = {key: value / count * 1000 for key, value in took.items()}
    print(f"{count} {noun} in {took['wall']:.2f}s: {each['wall']:.2f} ms wall,"
          f" {each['cpu']:.2f} ms CPU of this process each"
          f" ({each['user']:.2f} user, {each['system']:.2f} system)"
          f"{' (profiled)' if profiled else ''}; statuses {dict(statuses)}")
    for name, value in sorted(counts.items()):
        print(f"  {name:<28} {value / count:6.2f} per request")


def profile_requests(count: int, noun: str, request, counts: Counter, args) -> None:
    """The request profilers' timed part: `request(n)` for n in range(count), answering its HTTP
    status, under pyinstrument unless `args.no_pyinstrument` (flame graph to `args.html`), with
    the counters emptied first; then the per-request report."""
    counts.clear()
    statuses: Counter = Counter()
    with profiled(not args.no_pyinstrument, args.html) as profiling, measured() as took:
        for n in range(count):
            statuses[request(n)] += 1
    print_per_request(count, noun, took, counts, profiling, statuses)


def close_database(app) -> None:
    """Give the profiled app's database connections back before its throwaway database goes."""
    with app.app_context():
        from app.extensions import db
        db.session.remove()
        db.engine.dispose()

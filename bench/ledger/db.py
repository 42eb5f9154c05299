"""The database-backed ledger (app.ledger.log) on a throwaway PostgreSQL database.

Append throughput is measured through `log.append`, one transaction per entry as in production
(advisory lock, node reads, inserts, commit). Growing a log to 10^6 entries that way would take far
too long for a bounded benchmark, so larger logs are bulk-loaded with COPY from a MemoryTree built
from the same leaves (the same rows `log.append` would write; the roots are checked to agree), and
proofs are then timed through `log.inclusion` / `log.consistency`: a size query plus one indexed
query for the O(log n) nodes, then assembly. Last, appends are timed again on the largest log
(at most 500): an append's cost must not grow with the log.
"""
from __future__ import annotations

import os
import time

import psycopg

from app.ledger import merkle
from app.ledger.entries import canonical
from bench import harness

APPENDS = 1000


def _entry(i: int) -> dict:
    return {"kind": "in_kind_fulfilment", "i": i, "value_fen": 80000}


def _copy(url: str, tree: merkle.MemoryTree, leaves: list[bytes], start: int, end: int) -> None:
    """Rows for leaves [start, end) and every perfect subtree they complete."""
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        with conn.cursor().copy("COPY ledger_entries (index, leaf, leaf_hash, kind, source_type, "
                                "source_id, created_at) FROM STDIN") as cp:
            for i in range(start, end):
                cp.write_row((i, leaves[i], tree.get_node(0, i), "in_kind_fulfilment", "bench",
                              f"b{i}", "2026-01-01T00:00:00Z"))
        with conn.cursor().copy("COPY ledger_nodes (level, index, hash) FROM STDIN") as cp:
            for i in range(start, end):
                cp.write_row((0, i, tree.get_node(0, i)))
                for level, j in merkle.completed_by(i):
                    cp.write_row((level, j, tree.get_node(level, j)))
        conn.execute("ANALYZE ledger_entries")
        conn.execute("ANALYZE ledger_nodes")


def measure(sizes: list[int], rng, median_us, pg_url: str, redis_url: str,
            appends: int = APPENDS) -> list[dict]:
    from app import create_app
    from app.extensions import db
    from app.ledger import log

    leaves = [canonical(_entry(i)) for i in range(max(sizes))]
    tree = merkle.MemoryTree()
    for leaf in leaves:
        tree.append(leaf)
    rows = []
    with harness.throwaway_database(pg_url, "wxy_bench_ledger") as url:
        harness.migrate(url, redis_url)
        app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"})
        with app.app_context():
            if appends > max(sizes):
                raise SystemExit(f"--appends {appends} is more than the largest size")
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(appends):
                log.append("in_kind_fulfilment", _entry(i), "bench", f"b{i}")
                db.session.commit()
            append_rate = appends / (time.perf_counter() - t0)
            append_cpu_ms = (time.process_time() - c0) / appends * 1e3
            loaded = appends  # a size below it is a prefix of the appended log
            for n in sizes:
                if n > loaded:
                    _copy(url, tree, leaves, loaded, n)
                    loaded = n
                db.session.remove()
                if log.root(n) != tree.root(n):
                    raise SystemExit(f"database root differs from MemoryTree at n={n}")
                indexes = [rng.randrange(n) for _ in range(301)]
                firsts = [rng.randrange(1, n + 1) for _ in range(301)]
                inc = median_us(log.inclusion, [(i, n) for i in indexes])
                con = median_us(log.consistency, [(f, n) for f in firsts])
                rows.append({"n": n, "db_append": append_rate, "appends": appends,
                             "append_cpu_ms": append_cpu_ms, "db_inclusion_us": inc[1],
                             "db_consistency_us": con[1]})
            # Appends again on the largest log: their cost must not grow with it.
            n = max(sizes)
            t0, c0 = time.perf_counter(), time.process_time()
            late = min(appends, 500)
            for i in range(n, n + late):
                log.append("in_kind_fulfilment", _entry(i), "bench", f"b{i}")
                db.session.commit()
            rows[-1]["db_append_at_n"] = late / (time.perf_counter() - t0)
            rows[-1]["append_cpu_ms_at_n"] = (time.process_time() - c0) / late * 1e3
            rows[-1]["appends_at_n"] = late
            db.session.remove()
            db.engine.dispose()
    return rows


def default_urls() -> tuple[str, str]:
    return (os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
            os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"))

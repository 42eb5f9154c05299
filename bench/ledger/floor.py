"""The database's floor for ledger appends: what PostgreSQL and the driver alone allow.

On a throwaway database migrated like production, time sequential appends of one entry per
transaction made of the same statements `app.ledger.log.append` sends (BEGIN, the advisory lock,
the look-up, the CTE INSERT of the entry and its nodes, COMMIT), with the same hashing, over one
raw psycopg connection: no SQLAlchemy, no Flask, no Redis. Then a bare one-row INSERT + COMMIT.
Run it in the same minutes as `bench.ledger.run --db-only`: the app's append rate divided by this
floor is the app's own overhead.

    python -m bench.ledger.floor                 # 2000 appends, then 2000 bare commits
    python -m bench.ledger.floor --appends 1000 --pipeline   # the statements pipelined
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, as a script too

import psycopg  # noqa: E402

from app.ledger import merkle  # noqa: E402
from app.ledger.canonical import canonical  # noqa: E402
from bench import harness  # noqa: E402
from bench.ledger.db import _entry, default_urls  # noqa: E402

LOCK = "SELECT pg_advisory_xact_lock(6221031)"  # app.ledger.log.LOCK_KEY, 0x5EDCE7


def _statements():
    from app.ledger import log
    return log._LOOKUP, log._INSERT  # in psycopg's parameter style


def _backend_cpu_ms(conn) -> float:
    """CPU (user + system) of this connection's backend so far, from /proc (same machine)."""
    pid = conn.info.backend_pid
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1e3 / os.sysconf("SC_CLK_TCK")


def appends(conn, n: int, start: int, pipeline: bool) -> None:
    lookup, insert = _statements()
    for k in range(start, start + n):
        params = {"source_type": "bench", "source_id": f"b{k}"}
        if pipeline:
            with conn.pipeline():
                cur = conn.cursor()
                cur.execute(LOCK)
                cur2 = conn.cursor()
                cur2.execute(lookup, params)
            rows = cur2.fetchall()
        else:
            conn.execute(LOCK)
            rows = conn.execute(lookup, params).fetchall()
        index, lefts = None, {}
        for level, i, hash_, found in rows:
            if level == -1:
                index = i
            elif hash_ is not None:
                lefts[(level, i)] = bytes(hash_)
        leaf = canonical(_entry(k))
        leaf_hash = merkle.leaf_hash(leaf)
        levels, indexes, hashes = [0], [index], [leaf_hash]
        right = leaf_hash
        for level, i in merkle.completed_by(index):
            right = merkle.node_hash(lefts[(level - 1, 2 * i)], right)
            levels.append(level)
            indexes.append(i)
            hashes.append(right)
        row = {"index": index, "leaf": leaf, "leaf_hash": leaf_hash, "kind": "in_kind_fulfilment",
               "source_type": "bench", "source_id": f"b{k}",
               "created_at": datetime.now(timezone.utc),
               "levels": levels, "indexes": indexes, "hashes": hashes}
        if pipeline:
            with conn.pipeline():
                conn.execute(insert, row)
                conn.commit()
        else:
            conn.execute(insert, row)
            conn.commit()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=2000)
    parser.add_argument("--pipeline", action="store_true",
                        help="also time the statements in two pipelines (lock + look-up; "
                             "INSERT + COMMIT)")
    args = parser.parse_args(argv)
    pg_url, redis_url = default_urls()
    with harness.throwaway_database(pg_url, "wxy_bench_floor") as url:
        harness.migrate(url, redis_url)
        with psycopg.connect(url) as conn:
            runs = [("the append's statements, raw psycopg", False)]
            if args.pipeline:
                runs.append(("the same, pipelined (2 round trips)", True))
            start = 0
            for label, pipelined in runs:
                appends(conn, 50, start, pipelined)  # warm-up: prepared plans, caches
                start += 50
                t0, c0, b0 = time.perf_counter(), time.process_time(), _backend_cpu_ms(conn)
                appends(conn, args.appends, start, pipelined)
                wall = time.perf_counter() - t0
                start += args.appends
                print(f"{label}: {args.appends / wall:,.0f} appends/s; client CPU "
                      f"{(time.process_time() - c0) / args.appends * 1e3:.2f} ms, backend CPU "
                      f"{(_backend_cpu_ms(conn) - b0) / args.appends:.2f} ms an append")
            conn.execute("CREATE TABLE floor_bare_logged (id bigint PRIMARY KEY, body text)")
            conn.commit()
            t0 = time.perf_counter()
            for i in range(args.appends):
                conn.execute("INSERT INTO floor_bare_logged VALUES (%s, %s)", (i, "x" * 60))
                conn.commit()
            wall = time.perf_counter() - t0
            print(f"bare one-row INSERT + COMMIT: "
                  f"{args.appends / wall:,.0f}/s")


if __name__ == "__main__":
    main()

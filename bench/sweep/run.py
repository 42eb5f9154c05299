"""bench/sweep: the deadline sweeper with 100 due claims among 1,000,000, against 100 among 100.

One command, from the repository root with the virtualenv active:

    python bench/sweep/run.py                 # ~1.5 min: 1,000,000 claims, 7 repetitions
    python bench/sweep/run.py --quick         # ~20 s: 100,000 claims, 3 repetitions
    python bench/sweep/run.py --claims 5000000

Two throwaway databases, migrated, dropped at the end: "small" holds 100 active claims, all due;
"large" holds `--claims` active claims (each on its own `claimed` wish, as the partial unique
index requires) of which the same 100 are due and the rest due within the next 48 hours. Rows go
in with INSERT ... SELECT generate_series, then VACUUM ANALYZE.

Each repetition re-arms both (the 100 claims back to `active` and due, their wishes `claimed`,
the audit, outbox and inbox rows the last sweep wrote deleted, VACUUM ANALYZE), then times
`app.claims.service.sweep_due_claims()` in an app context on each, alternating which goes first.
The outbox/inbox rows and RQ calls the sweep makes are part of what is timed. It prints the
median for each, their ratio (goal: near 1), an idle tick (nothing due), and EXPLAIN ANALYZE of
the sweeper's own query (captured from the engine) on the large database.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from bench import common_claims as common  # noqa: E402
from bench import harness  # noqa: E402

DONORS = 1000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 claims, 3 repetitions")
    parser.add_argument("--claims", type=int, help="claims in the large database "
                        "(default 1,000,000; quick 100,000)")
    parser.add_argument("--due", type=int, default=100, help="due claims in each database")
    parser.add_argument("--reps", type=int, help="timed repetitions (default 7, quick 3)")
    parser.add_argument("--pg", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"),
        help="a Redis database of the benchmark's own (flushed before, between and after)")
    parser.add_argument("--keep", action="store_true", help="do not drop the databases")
    args = parser.parse_args(argv)
    args.claims = args.claims or (100_000 if args.quick else 1_000_000)
    args.reps = args.reps or (3 if args.quick else 7)
    if args.claims < args.due:
        parser.error("--claims must be at least --due")
    return args


def populate(url: str, redis_url: str, claims: int, due: int) -> float:
    """`claims` claimed wishes with one active claim each; the first `due` are due."""
    started = time.monotonic()
    harness.migrate(url, redis_url)
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        caseworker, beneficiary = common.insert_staff(conn)
        common.insert_donors(conn, DONORS)
        # Due ones a minute ago and earlier; the rest spread over the next 48 hours.
        due_sql = (f"CASE WHEN n <= {due} THEN now() - interval '1 minute' - n * interval '1 s'"
                   f" ELSE now() + interval '1 hour' + n * interval '47 hours' / {claims} END")
        common.insert_wishes(conn, "c", 1, claims, "claimed", caseworker, beneficiary, due_sql)
        conn.execute(
            "INSERT INTO claims (id, wish_id, donor_id, status, claimed_at, due_at,"
            " dispute_count)"
            " SELECT 'clm_c_' || w.n, w.id, 'usr_donor_' || (1 + w.n %% %s), 'active',"
            "  w.due_at - interval '48 hours', w.due_at, 0"
            " FROM (SELECT id, due_at, substr(id, 7)::int AS n FROM wishes"
            "       WHERE id LIKE 'wsh\\_c\\_%%') AS w", (DONORS,))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def rearm(url: str, due: int) -> None:
    """Put the `due` claims back to active and due, and delete what their last expiry wrote."""
    ids = [f"clm_c_{n}" for n in range(1, due + 1)]
    wish_ids = [f"wsh_c_{n}" for n in range(1, due + 1)]
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM outbox WHERE dedupe_key LIKE 'claim-expired:%'")
        conn.execute("DELETE FROM inbox_notifications WHERE dedupe_key LIKE 'claim-expired:%'")
        conn.execute("DELETE FROM transitions WHERE entity_type = 'claim' AND entity_id = ANY(%s)",
                     (ids,))
        conn.execute("DELETE FROM transitions WHERE entity_type = 'wish' AND entity_id = ANY(%s)",
                     (wish_ids,))
        conn.execute("UPDATE wishes SET status = 'claimed', due_at = now() - interval '1 minute'"
                     " WHERE id = ANY(%s)", (wish_ids,))
        conn.execute("UPDATE claims SET status = 'active', ended_at = NULL,"
                     " due_at = now() - interval '1 minute' WHERE id = ANY(%s)", (ids,))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE claims, wishes, outbox, inbox_notifications,"
                     " transitions")


def time_sweep(app, expect: int) -> float:
    from app.claims.service import sweep_due_claims
    from app.extensions import db
    with app.app_context():
        started = time.perf_counter()
        expired = sweep_due_claims()
        seconds = time.perf_counter() - started
        db.session.remove()
    if expired != expect:
        raise harness.BenchError(f"the sweeper expired {expired} claims, expected {expect}")
    return seconds


def capture_query(app) -> dict:
    """Listen on the app's engine for the sweeper's SELECT ... FOR UPDATE SKIP LOCKED."""
    from app.extensions import db
    seen: dict = {}
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "before_cursor_execute")
    def _grab(_conn, _cursor, statement, parameters, _context, _many):
        if "SKIP LOCKED" in statement and "FROM claims" in statement and "sql" not in seen:
            seen.update(sql=statement, params=parameters)
    return seen


def explain(app, query: dict) -> str:
    from app.extensions import db
    with app.app_context():
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"],
                                        query["params"]).fetchall()
            conn.rollback()  # the EXPLAIN ANALYZE took the row locks: let them go
        db.session.remove()
    return "\n".join(row[0] for row in rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.sigterm_as_interrupt()
    common.flush_redis(args.redis)
    sizes = {"small": args.due, "large": args.claims}
    times: dict[str, list[float]] = {"small": [], "large": []}
    idle: dict[str, float] = {}
    with harness.throwaway_database(args.pg, "wxy_bench_sweep_small", args.keep) as small, \
            harness.throwaway_database(args.pg, "wxy_bench_sweep_large", args.keep) as large:
        urls = {"small": small, "large": large}
        for side in ("small", "large"):
            seconds = populate(urls[side], args.redis, sizes[side], args.due)
            print(f"{side}: {sizes[side]:,} active claims, {args.due} due, "
                  f"populated in {seconds:.1f}s")
        apps = {side: common.make_app(urls[side], args.redis) for side in urls}
        query = capture_query(apps["large"])
        for rep in range(args.reps + 1):  # repetition 0 warms up (connections, caches, imports)
            order = ("small", "large") if rep % 2 == 0 else ("large", "small")
            for side in order:
                rearm(urls[side], args.due)
                common.flush_redis(args.redis)
                seconds = time_sweep(apps[side], args.due)
                if rep:
                    times[side].append(seconds)
            if rep:
                print(f"  rep {rep}: small {times['small'][-1] * 1000:7.1f} ms   "
                      f"large {times['large'][-1] * 1000:7.1f} ms")
        for side in ("small", "large"):
            idle[side] = statistics.median(time_sweep(apps[side], 0) for _ in range(5))
        rearm(urls["large"], args.due)
        plan = explain(apps["large"], query)
        for app in apps.values():
            with app.app_context():
                from app.extensions import db
                db.engine.dispose()
    common.flush_redis(args.redis)
    return report(args, sizes, times, idle, plan)


def report(args, sizes, times, idle, plan) -> int:
    median = {side: statistics.median(values) for side, values in times.items()}
    ratio = median["large"] / median["small"]
    print()
    print(f"{'active claims':>13} {'due':>5} {'reps':>4} {'median ms':>9} {'min ms':>7} "
          f"{'max ms':>7} {'ms/claim':>8} {'idle tick ms':>12}")
    for side in ("small", "large"):
        values = times[side]
        print(f"{sizes[side]:>13,} {args.due:>5} {len(values):>4} {median[side] * 1000:>9.1f} "
              f"{min(values) * 1000:>7.1f} {max(values) * 1000:>7.1f} "
              f"{median[side] * 1000 / args.due:>8.2f} {idle[side] * 1000:>12.2f}")
    print(f"\nratio {sizes['large']:,} / {sizes['small']:,}: {ratio:.2f} (goal: near 1)")
    uses_index = "ix_claims_due" in plan
    print(f"\nEXPLAIN ANALYZE of the sweeper's query on {sizes['large']:,} claims "
          f"(uses ix_claims_due: {'yes' if uses_index else 'NO'}):")
    print("  " + plan.replace("\n", "\n  "))
    path = harness.save_results("sweep", {
        "benchmark": "sweep", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "claims": sizes, "due": args.due, "times_s": times, "median_s": median, "ratio": ratio,
        "idle_tick_s": idle, "uses_ix_claims_due": uses_index, "plan": plan,
        "load": os.getloadavg(),
    })
    print(f"results: {path}")
    return 0 if uses_index else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except harness.BenchError as exc:
        sys.exit(f"bench/sweep: {exc}")

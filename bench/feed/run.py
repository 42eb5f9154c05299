"""bench/feed: the public feed and a wish card under gunicorn, against a bare Flask endpoint.

One command, from the repository root with the virtualenv active:

    python bench/feed/run.py            # ~4 min: 100,000 wishes, 2 rounds x 10 s per endpoint
    python bench/feed/run.py --quick    # ~1 min: 1 round x 3 s

It creates a throwaway PostgreSQL database, builds the schema with the migrations, inserts
100,000 wishes (populate.py), starts the app (`wsgi:app`) and the baseline (baseline_app.py, a
bare Flask endpoint returning a constant body of the same size as the real response) under the
same gunicorn settings, warms both up, then runs wrk against each endpoint and its baseline in
turn and prints req/s, p50/p99 latency and the ratio app/baseline. Raw results go to
bench/results/. Everything started is stopped on exit or Ctrl-C, and the database is dropped.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from bench import harness  # noqa: E402
from bench.feed.populate import populate  # noqa: E402

HERE = Path(__file__).resolve().parent
FEED = "/api/v1/wishes"
FILTERED = "/api/v1/wishes?region=350505101&kind=goods&sort=newest"
HOT_CARDS = 100  # the card endpoint on the wishes of the first five feed pages
CARDS = 1000  # and on this many different open wishes, at random


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s per endpoint")
    parser.add_argument("--seconds", type=float, help="duration of each run (default 10)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 2)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="gunicorn workers for both apps (default: the number of cores)")
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn --threads (gthread)")
    parser.add_argument("--wishes", type=int, default=100_000)
    parser.add_argument("--pg", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server URL (any database on it); env BENCH_PG_URL")
    parser.add_argument("--redis", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        help="a Redis URL for the app (default db 14, off the tests' 15); env BENCH_REDIS_URL")
    parser.add_argument("--database", help="use this already populated database as it is")
    parser.add_argument("--app-dir", type=Path, default=harness.ROOT,
                        help="run the app from this checkout (to compare before/after a change)")
    parser.add_argument("--keep", action="store_true", help="do not drop the throwaway database")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy flame graphs of the app in round 1 (pip install py-spy)")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
    return args


def prepare(url: str, args: argparse.Namespace) -> None:
    started = time.monotonic()
    harness.migrate(url, args.redis, args.app_dir)
    counts = populate(url, args.wishes)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    print(f"database ready in {time.monotonic() - started:.1f}s: {sum(counts.values())} wishes, "
          f"{counts.get('open', 0)} open")


def card_paths(url: str, order: str, count: int) -> list[str]:
    with psycopg.connect(url) as conn:
        ids = [row[0] for row in conn.execute(
            "SELECT id FROM wishes WHERE status = 'open' AND NOT hidden"
            f" ORDER BY {order} LIMIT %s", (count,))]
    if not ids:
        raise harness.BenchError("no open wish in the database")
    return [f"{FEED}/{wish_id}" for wish_id in ids]


def capture(app: harness.Server, paths: list[str]) -> bytes:
    """The body the baseline will serve: a real response, of median size over a few paths."""
    bodies = []
    for path in paths[:25]:
        status, body = harness.fetch(app.base + path)
        if status != 200:
            raise harness.BenchError(f"{path} answered {status}: {body[:300]!r}")
        bodies.append(body)
    return sorted(bodies, key=len)[len(bodies) // 2]


def measure(args, url: str, work: Path, endpoints: list | None = None) -> dict:
    """Each (label, slug, paths) endpoint against a bare one serving a body of the same size
    (default: the feed's endpoints; bench/site passes the public pages)."""
    endpoints = endpoints or [
        ("feed (default sort)", "feed", [FEED]),
        ("feed (town+kind, newest)", "filtered", [FILTERED]),
        # What a crowd taps: the cards on the first five pages of the feed.
        (f"card (first {HOT_CARDS} of the feed)", "card",
         card_paths(url, "level_rank, published_at, id", HOT_CARDS)),
        # The long tail: any open wish, so most reads start as cache misses.
        (f"card ({CARDS} random open)", "card_tail", card_paths(url, "random()", CARDS)),
    ]
    gunicorn = harness.Gunicorn(args.workers, args.worker_class, args.threads)
    load_before = os.getloadavg()
    servers = []
    try:
        app = gunicorn.start("app", "wsgi:app", harness.app_env(
            url, args.redis, INSTANCE_PATH=str(work / "instance")), "/api/v1/healthz", work,
            chdir=args.app_dir)
        servers.append(app)
        baseline_dir = work / "baseline"
        baseline_dir.mkdir()
        sizes = {}
        for _label, slug, paths in endpoints:
            body = capture(app, paths)
            (baseline_dir / f"{slug}.json").write_bytes(body)
            sizes[slug] = len(body)
        baseline = gunicorn.start("baseline", "baseline_app:app",
                                  {**os.environ, "BENCH_BASELINE_DIR": str(baseline_dir)},
                                  f"/{endpoints[0][1]}", work, chdir=HERE)
        servers.append(baseline)
        print(f"gunicorn {gunicorn.describe()}; wrk -t{args.wrk_threads} -c{args.connections}, "
              f"{args.rounds} round(s) x {args.seconds:g} s; bodies "
              + ", ".join(f"{k} {v} B" for k, v in sizes.items()))

        def load(server, paths, seconds, profile_as=None):
            spy = _start_profile(server, seconds, profile_as) if profile_as else None
            try:
                return harness.wrk(server, paths, seconds=seconds,
                                   connections=args.connections, threads=args.wrk_threads,
                                   work_dir=work)
            finally:
                if spy is not None:
                    try:
                        spy.wait(timeout=seconds + 30)
                    finally:
                        spy.kill()  # no-op once it has finished

        for _label, slug, paths in endpoints:  # warm-up: imports, pools, caches
            load(app, paths, max(1.0, args.seconds / 3))
            load(baseline, [f"/{slug}"], max(1.0, args.seconds / 3))
        runs = {slug: {"app": [], "baseline": []} for _l, slug, _p in endpoints}
        for round_no in range(args.rounds):
            for _label, slug, paths in endpoints:
                order = [("app", app, paths), ("baseline", baseline, [f"/{slug}"])]
                for side, server, side_paths in (order if round_no % 2 == 0 else order[::-1]):
                    profile_as = (f"feed-profile-{slug}" if args.profile and round_no == 0
                                  and side == "app" else None)
                    runs[slug][side].append(load(server, side_paths, args.seconds, profile_as))
                    print(f"  round {round_no + 1} {slug:<9} {side:<8} "
                          f"{runs[slug][side][-1]['rps']:>7.0f} req/s")
    finally:
        for server in reversed(servers):
            server.stop()
    return {"endpoints": endpoints, "runs": runs, "sizes": sizes, "gunicorn": gunicorn.describe(),
            "load": {"before": load_before, "after": os.getloadavg()}}


def _start_profile(server: harness.Server, seconds: float, name: str) -> subprocess.Popen:
    spy = shutil.which("py-spy")
    if spy is None:
        raise harness.BenchError("--profile needs py-spy: pip install py-spy (bench only)")
    harness.RESULTS.mkdir(exist_ok=True)
    out = harness.RESULTS / f"{name}.svg"
    print(f"  profiling into {out}")
    return subprocess.Popen([spy, "record", "--pid", str(server.process.pid), "--subprocesses",
                             "--duration", str(max(1, round(seconds))), "--rate", "200",
                             "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(args, measured: dict, name: str = "feed") -> None:
    rows, saved = [], []
    for label, slug, _paths in measured["endpoints"]:
        app = harness.combine(measured["runs"][slug]["app"])
        base = harness.combine(measured["runs"][slug]["baseline"])
        ratio = app["rps"] / base["rps"]
        failed = sum(app["errors"].values()) + sum(base["errors"].values())
        note = f"{measured['sizes'][slug]} B" + (f"; {failed} ERRORS" if failed else "")
        rows.append({"endpoint": label, **_row(app), "ratio": ratio, "note": note})
        rows.append({"endpoint": "  bare Flask, same size", **_row(base), "ratio": None})
        saved.append({"endpoint": label, "slug": slug, "body_bytes": measured["sizes"][slug],
                      "ratio": ratio, "app": app, "baseline": base})
    print()
    harness.print_table(rows)
    worst = min(item["ratio"] for item in saved)
    print(f"\nworst ratio {worst:.2f} (goal 0.50 or better)")
    busy = max(measured["load"]["before"][0], measured["load"]["after"][0])
    if busy > (os.cpu_count() or 1) / 2:
        print(f"note: load average reached {busy:.1f} on {os.cpu_count()} cores: other work "
              "shared the machine, so req/s (and the ratios) are lower than on a quiet one; "
              "cpu us/req is less affected.")
    path = harness.save_results(name, {
        "benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "settings": {"gunicorn": measured["gunicorn"], "connections": args.connections,
                     "wrk_threads": args.wrk_threads, "seconds": args.seconds,
                     "rounds": args.rounds, "wishes": args.wishes,
                     "app_dir": str(args.app_dir)},
        "load_average": measured["load"],
        "results": saved})
    if args.profile:
        print("note: py-spy sampled the app in round 1, so its numbers there include the "
              "profiler's overhead")
    print(f"raw results: {path.relative_to(harness.ROOT)}")


def _row(summary: dict) -> dict:
    return {"rps": summary["rps"], "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"],
            "cpu_us": summary["cpu_us_per_request"]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        harness.need_wrk()
        harness.sigterm_as_interrupt()
        work = Path(tempfile.mkdtemp(prefix="wxy-bench-feed-"))
        try:
            if args.database:
                measured = measure(args, args.database, work)
            else:
                with harness.throwaway_database(args.pg, "wxy_bench", keep=args.keep) as url:
                    prepare(url, args)
                    measured = measure(args, url, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        report(args, measured)
    except harness.BenchError as exc:
        print(f"bench/feed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench/feed: interrupted; servers stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""bench/signals/profile.py: where one batch of 1000 signals' time goes, in this process.

    python bench/signals/profile.py                  # service and API, pyinstrument trees
    python bench/signals/profile.py --no-pyinstrument --way api   # e.g. under py-spy record

A throwaway database, migrated; `--history` signals (bench/signals' generator) ingested first
so that the persons have a year of spend, then `--batches` batches of 1000 new signals of those
persons are timed, either straight through `ingest_signals` (`--way service`, what the CSV
import calls) or through `POST /api/v1/signals` with the Flask test client (`--way api`: JSON,
the envelope schema, the token check and the answer's serialisation on top, no HTTP). Prints the
call tree (pyinstrument, a bench-only tool) and per batch the SQL statements by verb.
"""
from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from bench import harness, inprocess  # noqa: E402
from bench.signals import run as signals_run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--way", choices=("service", "api", "both"), default="both")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--history", type=int, default=20_000)
    parser.add_argument("--persons", type=int, default=5_000)
    parser.add_argument("--html", help="write pyinstrument's HTML flame graph here (last way)")
    parser.add_argument("--no-pyinstrument", action="store_true")
    parser.add_argument("--trace", action="store_true", help="print the SQL of one batch")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument("--pg", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"))
    args = parser.parse_args()
    now = datetime.now(signals_run.CHINA)
    with tempfile.TemporaryDirectory(prefix="bench-signals-profile-") as tmp, \
            harness.throwaway_database(args.pg, "bench_signals_profile",
                                       keep=args.keep) as url:
        harness.migrate(url, args.redis)
        os.environ["LOG_LEVEL"] = "WARNING"
        from app import create_app
        from app.cases.signals import SignalSource, ingest_signals
        from app.partners.service import create_client

        app = create_app({"DATABASE_URL": url, "REDIS_URL": args.redis, "APP_ENV": "development",
                          "INSTANCE_PATH": str(Path(tmp) / "instance")})
        with app.app_context():
            client, secret = create_client("bench 医保", "medical_insurance", None)
            client_id = client.client_id
        source = SignalSource(client_id=client_id, department="medical_insurance",
                              region_code=None)
        history = signals_run.items("hist", args.history, args.persons, now, seed=3)
        for start in range(0, len(history), 1000):
            with app.app_context():
                ingest_signals(source, history[start:start + 1000])
        test_client = app.test_client()
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        token = test_client.post("/api/v1/oauth/token", data={"grant_type": "client_credentials"},
                                 headers={"Authorization": f"Basic {basic}"}).json["access_token"]
        import gc
        gc.collect()
        gc.freeze()  # as wsgi.py does
        counts = inprocess.counters(app, sql_time=True, collections=True, width=200)
        ways = ("service", "api") if args.way == "both" else (args.way,)
        for way in ways:
            def one(n: int) -> None:
                batch = signals_run.items(f"{way}-{n}", 1000, args.persons, now, seed=100 + n)
                if way == "service":
                    with app.app_context():
                        answers = ingest_signals(source, batch)
                else:
                    response = test_client.post("/api/v1/signals", json={"items": batch},
                                                headers={"Authorization": f"Bearer {token}"})
                    assert response.status_code == 200, response.get_data(as_text=True)[:300]
                    answers = response.json["items"]
                assert all(a["result"] == "accepted" for a in answers), answers[:3]

            one(-1)  # warm up
            if args.trace:
                counts["trace"] = 1
                one(-2)
                del counts["trace"]
            counts.clear()
            with inprocess.profiled(not args.no_pyinstrument, args.html) as profiling:
                started, cpu = time.perf_counter(), time.process_time()
                for n in range(args.batches):
                    one(n)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(f"{way}: {args.batches} batches of 1000 in {elapsed:.2f}s: "
                  f"{elapsed / args.batches / 1000 * 1e6:.0f} us wall, "
                  f"{cpu / args.batches / 1000 * 1e6:.0f} us CPU of this process a signal"
                  f"{' (profiled)' if profiling else ''}")
            for name, value in sorted(counts.items()):
                print(f"  {name:<32} {value / args.batches:8.1f} per batch")
        with app.app_context():
            from app.extensions import db
            db.session.remove()
            db.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

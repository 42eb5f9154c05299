"""bench/signals: signals in, through the API and through the CSV import, on PostgreSQL; and what
one batch costs the rules at 10^5 against 10^6 stored signals.

One command, from the repository root with the virtualenv active:

    python bench/signals/run.py            # 100,000 signals each way; rules at 10^5 vs 10^6
    python bench/signals/run.py --quick    # 20,000 each way; rules at 10^5 vs 10^6, 3 batches

A throwaway database, migrated, dropped at the end (`--keep` keeps it). Three measurements:

1. API: gunicorn (2 sync workers) serving the app; a partner client made with
   `flask partner-client create`, a token from POST /oauth/token, then `--signals` signals
   POSTed to /signals in batches of 1000 by `--senders` concurrent senders. Prints signals/s and
   the server's CPU per signal (gunicorn's processes; PostgreSQL's CPU is not in it).
2. CSV: the same number of signals, other external ids, written to a CSV file and imported with
   `flask signals import`; signals/s and the command's CPU per signal.
3. Rules: the table is filled (INSERT ... SELECT generate_series, to persons of their own, about
   ten signals each, so that only the table's size changes) to the small size, then a batch of
   1000 new signals for 1000 persons the API made (a year of history each is already there) is
   ingested `--reps` times in-process through `ingest_signals`, each with new external ids; the
   table is filled on to the large size and the same is timed again. Prints the median batch
   time per signal at each size and their ratio: near 1 means the cost follows the new signals,
   not the table (the spike rule reads each person's earlier spend through the
   (person_id, kind, observed_at) index).

The machine's load average is printed with the results: on a shared machine single runs move.
Target (issue 13): at least 2,000 signals a second.
"""
from __future__ import annotations

import argparse
import base64
import concurrent.futures as futures
import csv
import gc
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from bench import harness  # noqa: E402

TOWNS = ("350505001", "350505100", "350505101", "350505102", "350505103", "350505104",
         "350505106")
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
BATCH = 1000
CHINA = timezone(timedelta(hours=8))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="20,000 signals each way; 3 timed rule batches per size")
    parser.add_argument("--signals", type=int, help="signals through each way (default 100,000)")
    parser.add_argument("--persons", type=int, default=20_000, help="distinct subjects")
    parser.add_argument("--senders", type=int, default=2, help="concurrent API senders")
    parser.add_argument("--small", type=int, help="stored signals, small (default 10^5)")
    parser.add_argument("--large", type=int, help="stored signals, large (default 10^6)")
    parser.add_argument("--reps", type=int, help="timed rule batches per size (default 5, quick 3)")
    parser.add_argument("--pg", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"),
        help="a Redis database of the benchmark's own")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    args = parser.parse_args(argv)
    args.signals = args.signals or (20_000 if args.quick else 100_000)
    args.small = args.small or 100_000
    args.large = args.large or 1_000_000
    args.reps = args.reps or (3 if args.quick else 5)
    return args


# --- data --------------------------------------------------------------------------------------

def id_number(n: int) -> str:
    """A valid 18-character resident ID number (GB 11643 check digit), distinct per n for
    n below 20,000,000 (a birth date per n % 20,000, a serial per n // 20,000)."""
    birth = datetime(1940, 1, 1) + timedelta(days=n % 20_000)
    body = f"350505{birth:%Y%m%d}{n // 20_000 % 1000:03d}"
    return body + CHECK[sum(int(d) * w for d, w in zip(body, WEIGHTS)) % 11]


def subject(n: int) -> dict:
    return {"id_number": id_number(n), "name": f"测试{n}",
            "region_code": f"{TOWNS[n % len(TOWNS)]}{200 + n % 20:03d}"}


def items(prefix: str, count: int, persons: int, now: datetime, seed: int) -> list[dict]:
    """Monthly medical spend mostly below any threshold, some hospital stays; a few alert."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        n = rng.randrange(persons)
        at = now - timedelta(days=rng.randrange(1, 365), minutes=rng.randrange(1440))
        if i % 10 == 9:
            out.append({"external_id": f"{prefix}-{i}", "kind": "hospitalization",
                        "subject": subject(n), "observed_at": at.isoformat(),
                        "data": {"days": rng.randrange(1, 20)}})
        else:
            out.append({"external_id": f"{prefix}-{i}", "kind": "medical_spend",
                        "subject": subject(n), "observed_at": at.isoformat(),
                        "data": {"self_paid_fen": rng.randrange(10_000, 80_000),
                                 "period_days": 30}})
    return out


# --- 1. the API --------------------------------------------------------------------------------

def flask(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args],
                          cwd=harness.ROOT, env=env, capture_output=True, text=True,
                          timeout=3600, check=True)


def post(url: str, body: bytes, headers: dict) -> dict:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def through_api(env: dict, args, now: datetime, log_dir: Path) -> dict:
    made = flask(env, "partner-client", "create", "bench 医保", "--department",
                 "medical_insurance").stdout
    client_id = re.search(r"client_id: (\S+)", made).group(1)
    secret = re.search(r"client_secret: (\S+)", made).group(1)
    server = harness.Gunicorn(workers=2).start("app", "wsgi:app", env, "/api/v1/healthz",
                                               log_dir)
    try:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        token = post(server.base + "/api/v1/oauth/token", b"grant_type=client_credentials",
                     {"Authorization": f"Basic {basic}",
                      "Content-Type": "application/x-www-form-urlencoded"})["access_token"]
        data = items("api", args.signals, args.persons, now, seed=1)
        bodies = [json.dumps({"items": data[i:i + BATCH]}).encode()
                  for i in range(0, len(data), BATCH)]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        cpu0, started = server.cpu_seconds(), time.monotonic()
        with futures.ThreadPoolExecutor(args.senders) as pool:
            answers = list(pool.map(lambda b: post(server.base + "/api/v1/signals", b, headers),
                                    bodies))
        took, cpu = time.monotonic() - started, server.cpu_seconds() - cpu0
    finally:
        server.stop()
    results = [a["result"] for answer in answers for a in answer["items"]]
    return {"signals": len(data), "seconds": took, "per_second": len(data) / took,
            "cpu_us_per_signal": cpu / len(data) * 1e6,
            "accepted": results.count("accepted"), "rejected": results.count("rejected")}


# --- 2. the CSV import -------------------------------------------------------------------------

COLUMNS = ("external_id", "kind", "id_number", "name", "region_code", "observed_at",
           "self_paid_fen", "period_days", "days")


def through_csv(env: dict, args, now: datetime, folder: Path) -> dict:
    path = folder / "signals.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for item in items("csv", args.signals, args.persons, now, seed=2):
            data, who = item["data"], item["subject"]
            writer.writerow([item["external_id"], item["kind"], who["id_number"], who["name"],
                             who["region_code"], item["observed_at"],
                             data.get("self_paid_fen", ""), data.get("period_days", ""),
                             data.get("days", "")])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = flask(env, "signals", "import", str(path), "--department", "medical_insurance")
    took = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"signals": args.signals, "seconds": took, "per_second": args.signals / took,
            "cpu_us_per_signal": cpu / args.signals * 1e6, "report": done.stdout.strip()}


# --- 3. rule evaluation at two table sizes -----------------------------------------------------

def fill(url: str, upto: int) -> int:
    """Grow `signals` to `upto` rows, about ten per filler person of its own."""
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        have = conn.execute("SELECT count(*) FROM signals").fetchone()[0]
        if have >= upto:
            return have
        persons = conn.execute(
            "SELECT count(*) FROM persons WHERE id LIKE 'per_fill_%%'").fetchone()[0]
        want = (upto + 9) // 10
        conn.execute(
            "INSERT INTO persons (id, id_hash, region_code, created_at, updated_at)"
            " SELECT 'per_fill_' || n, md5('fill' || n) || md5(n::text), '350505101201', now(),"
            " now() FROM generate_series(%s::int, %s::int) n", (persons + 1, want))
        conn.execute(
            "INSERT INTO signals (client_id, external_id, department, kind, person_id,"
            " region_code, observed_at, data, received_at)"
            " SELECT 'bench:fill', 'fill-' || n, 'medical_insurance', 'medical_spend',"
            "  'per_fill_' || (1 + n %% %s::int), '350505101201',"
            "  now() - (n %% 365) * interval '1 day',"
            "  '{\"self_paid_fen\": 30000, \"period_days\": 30}'::json, now()"
            " FROM generate_series(%s::int, %s::int) n", (want, have + 1, upto))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE signals")
        conn.execute("VACUUM ANALYZE persons")
        # The fill's writes flushed now, not by a spread checkpoint during the timed batches.
        conn.execute("CHECKPOINT")
        return conn.execute("SELECT count(*) FROM signals").fetchone()[0]


def time_batches(app, args, size_tag: str, now: datetime) -> list[float]:
    from app.cases.signals import SignalSource, ingest_signals

    source = SignalSource(client_id="bench:rules", department="medical_insurance",
                          region_code=None)
    times = []
    for rep in range(args.reps):
        batch = [{"external_id": f"rules-{size_tag}-{rep}-{n}", "kind": "medical_spend",
                  "subject": subject(n), "observed_at": (now - timedelta(hours=1)).isoformat(),
                  "data": {"self_paid_fen": 40_000, "period_days": 30}}
                 for n in range(BATCH)]  # persons 0..999: the API gave them a history
        with app.app_context():
            started = time.perf_counter()
            answers = ingest_signals(source, batch)
            times.append(time.perf_counter() - started)
        assert all(a["result"] == "accepted" for a in answers), answers[:3]
    return times


def rules_cost(url: str, env: dict, args, now: datetime) -> dict:
    os.environ.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "REDIS_URL",
                                                              "APP_ENV", "LOG_LEVEL")})
    from app import create_app

    app = create_app()
    # As wsgi.py does for gunicorn: the app's objects (and this script's: the API and CSV parts'
    # data) out of the collector's sight, so that a full collection in a timed batch walks what
    # the batch made, not this process's whole heap (it was 130-290 ms when one fell in a batch).
    gc.collect()
    gc.freeze()
    out = {}
    for tag, size in (("small", args.small), ("large", args.large)):
        started = time.monotonic()
        stored = fill(url, size)
        fill_s = time.monotonic() - started
        times = time_batches(app, args, tag, now)
        out[tag] = {"stored": stored, "fill_seconds": fill_s,
                    "median_ms_per_batch": statistics.median(times) * 1000,
                    "us_per_signal": statistics.median(times) / BATCH * 1e6,
                    "batches_ms": [t * 1000 for t in times]}
    out["ratio_large_to_small"] = out["large"]["us_per_signal"] / out["small"]["us_per_signal"]
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.sigterm_as_interrupt()
    load_before = os.getloadavg()
    now = datetime.now(CHINA)
    folder = Path(tempfile.mkdtemp(prefix="bench-signals-"))
    with harness.throwaway_database(args.pg, "bench_signals", keep=args.keep) as url:
        env = harness.app_env(url, args.redis, INSTANCE_PATH=str(folder / "instance"))
        harness.migrate(url, args.redis)
        print(f"API: {args.signals:,} signals in batches of {BATCH}, {args.senders} senders ...",
              flush=True)
        api = through_api(env, args, now, folder)
        print(f"CSV: {args.signals:,} signals through `flask signals import` ...", flush=True)
        imported = through_csv(env, args, now, folder)
        print(f"rules: a batch of {BATCH} at {args.small:,} and {args.large:,} stored ...",
              flush=True)
        rules = rules_cost(url, env, args, now)
    load_after = os.getloadavg()
    print()
    print(f"{'way':<8} {'signals':>9} {'seconds':>8} {'signals/s':>10} {'cpu us/signal':>14}")
    for name, row in (("API", api), ("CSV", imported)):
        print(f"{name:<8} {row['signals']:>9,} {row['seconds']:>8.1f} {row['per_second']:>10.0f}"
              f" {row['cpu_us_per_signal']:>14.0f}")
    print(f"API answers: {api['accepted']:,} accepted, {api['rejected']:,} rejected")
    print("CSV report: " + imported["report"].replace("\n", "\n            "))
    print()
    for tag in ("small", "large"):
        row = rules[tag]
        print(f"rules at {row['stored']:>9,} stored: {row['median_ms_per_batch']:8.1f} ms a batch"
              f" of {BATCH}, {row['us_per_signal']:6.0f} us a signal (fill {row['fill_seconds']:.0f} s)")
    print(f"ratio large/small: {rules['ratio_large_to_small']:.2f} (near 1: the cost follows "
          "the new signals, not the table)")
    print(f"target >= 2,000 signals/s: API {'met' if api['per_second'] >= 2000 else 'NOT met'}, "
          f"CSV {'met' if imported['per_second'] >= 2000 else 'NOT met'}")
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} "
          f"({os.cpu_count()} CPUs)")
    saved = harness.save_results("signals", {"args": vars(args), "api": api, "csv": imported,
                                             "rules": rules, "load": [load_before, load_after]})
    print(f"results: {saved}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except harness.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

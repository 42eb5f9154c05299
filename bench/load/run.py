"""bench/load: a charity-day load against gunicorn + the RQ worker on PostgreSQL and Redis, then
the auditor (`flask --app wsgi audit`) on the same database.

One command, from the repository root with the virtualenv active:

    python bench/load/run.py                  # ~3 min: seeding, 60 s of load, drain, audit
    python bench/load/run.py --seconds 600    # a longer day
    python bench/load/run.py --users 150 --seconds 20   # a quick look

Simulated donors (locust, headless) browse (70 %: feed pages with filters and cursors, wish
cards, /stats, ledger entries and checkpoint), claim Zipf-popular wishes under contention (20 %;
a 409 is an expected answer) and upload delivery photos for claims they hold (10 %; a real JPEG,
multipart, with an Idempotency-Key). See locustfile.py for the mix, README.md for the figures.

Prints total throughput, per kind p50/p95/p99 and request rate, status counts (5xx, 409, 429),
the machine's load, and the auditor's verdict. Exits 1 if any request got a 5xx or no answer,
if an idempotent replay was wrong, or if the audit fails.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repo root

from bench import common_claims as common  # noqa: E402
from bench import harness  # noqa: E402
from bench.load import seed as seeding  # noqa: E402

BROWSE = ("feed", "feed (next page)", "card", "stats", "ledger entries", "ledger checkpoint")
CLAIM = ("claim", "claim (no claim held to prove)")
PROOF = ("proof", "proof (same key again)")
GROUPS = {"browse": BROWSE, "claim": CLAIM, "proof": PROOF}
# A claim may also meet the per-user claim limit (RATELIMIT_CLAIMS_USER, 10 a minute by default,
# kept for the bench): a simulated donor claims every few seconds at times, faster than a person,
# and the 429 is the limit doing its job. They are counted and printed ("429:"), not failures.
EXPECTED = {"claim": (201, 409, 429), "claim (no claim held to prove)": (201, 409, 429)}
# Rate limits (miniprogram_api/ratelimit.py, RATELIMIT_<GROUP>_<KEY> settings): every simulated user comes
# from 127.0.0.1, so the per-address limits would throttle the whole crowd as if it were one phone.
# The bench raises those for its server only. Per-user limits stay at their defaults: each
# simulated donor is its own user, as in production, so a 429 from them would be a real one.
GENEROUS = "1000000/minute"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="load duration (default 60)")
    parser.add_argument("--users", type=int, default=300, help="simulated donors (default 300)")
    parser.add_argument("--spawn-rate", type=float,
                        help="users started per second (default: all within 10 s)")
    parser.add_argument("--wait", default="1,4",
                        help="think time between a user's requests, min,max seconds")
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of wish choice")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn gthread threads")
    parser.add_argument("--rq-workers", type=int, default=2, help="`python -m workers` processes")
    parser.add_argument("--keep-alive", type=int, default=10,
                        help="gunicorn --keep-alive seconds (above the longest think time, as "
                             "a load balancer's upstream keep-alive would be)")
    parser.add_argument("--wishes", type=int,
                        help="open wishes to seed (default: enough for the run's claims)")
    parser.add_argument("--fulfilled", type=int, default=30,
                        help="wishes taken to fulfilled while seeding (ledger entries)")
    parser.add_argument("--held", type=int, default=1, help="claims each donor holds at start")
    parser.add_argument("--photos", type=int, default=40, help="distinct JPEGs to upload")
    parser.add_argument("--drain-timeout", type=float, default=180.0,
                        help="seconds to wait for the media queue after the load")
    parser.add_argument("--pg", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"),
        help="a Redis database of the benchmark's own (flushed before and after)")
    parser.add_argument("--keep", action="store_true", help="do not drop the throwaway database")
    args = parser.parse_args(argv)
    args.spawn_rate = args.spawn_rate or max(1.0, args.users / 10)
    if args.wishes is None:  # ~one claim attempt in three wins at the default mix and contention
        args.wishes = args.users * args.held + args.fulfilled + int(30 * args.seconds) + 200
    return args


# --- machine figures ---------------------------------------------------------------------------

def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return sum(fields) - idle, sum(fields)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def rate_limit_env() -> dict[str, str]:
    """Generous values for the per-address RATELIMIT_* settings the app declares."""
    from app.config import SETTINGS

    return {name: GENEROUS for name in SETTINGS
            if name.startswith("RATELIMIT_") and name.endswith("_ADDRESS")}


def user_limits() -> dict[str, str]:
    from app.config import SETTINGS

    return {name: default for name, (_parse, default) in SETTINGS.items()
            if name.startswith("RATELIMIT_") and not name.endswith("_ADDRESS")}


# --- the run -----------------------------------------------------------------------------------

def prepare(url: str, args, work: Path) -> dict:
    harness.migrate(url, args.redis)
    os.environ["INSTANCE_PATH"] = str(work / "instance")  # create_app reads it from here
    app = common.make_app(url, args.redis, INSTANCE_PATH=str(work / "instance"),
                          LOG_LEVEL="ERROR")
    import logging
    logging.getLogger("app").setLevel(logging.ERROR)  # look-alike photo warnings while seeding
    fixtures = seeding.seed(app, wishes=args.wishes, fulfilled=args.fulfilled,
                            donors=args.users, held=args.held)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    photos = work / "photos"
    photos.mkdir()
    for n in range(args.photos):
        (photos / f"{n:03d}.jpg").write_bytes(seeding.proof_jpeg(n))
    (work / "fixtures.json").write_text(json.dumps(fixtures))
    return fixtures


def queue_lengths(redis_url: str) -> dict[str, int]:
    import redis

    from app.queue import QUEUES, get_queue

    connection = redis.Redis.from_url(redis_url)
    return {name: get_queue(name, connection).count for name in QUEUES}


def drop_seeding_doorbells(redis_url: str) -> int:
    """Seeding rang one outbox-relay doorbell per transaction (hundreds, all but the first with
    nothing left to send). The database holds the work; the worker's periodic relay and sweep
    re-find it. Empty the queues so the load starts without that backlog."""
    import redis

    from app.queue import QUEUES, get_queue

    connection = redis.Redis.from_url(redis_url)
    dropped = 0
    for name in QUEUES:
        queue = get_queue(name, connection)
        dropped += queue.count
        queue.empty()
    return dropped


def start_worker(env: dict[str, str], work: Path, n: int) -> harness.Server:
    log = work / f"worker-{n}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "workers"], cwd=harness.ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(0.5)
    if process.poll() is not None:
        raise harness.BenchError(f"worker exited at start; see {log}:\n{log.read_text()[-2000:]}")
    return harness.Server(f"worker-{n}", 0, process, log)


def run_locust(args, server: harness.Server, work: Path) -> dict:
    record = work / "record.json"
    env = {**os.environ, "LOAD_FIXTURES": str(work / "fixtures.json"),
           "LOAD_PHOTOS": str(work / "photos"), "LOAD_RECORD": str(record),
           "LOAD_WAIT": args.wait, "LOAD_ZIPF": str(args.zipf)}
    argv = [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
            "--users", str(args.users), "--spawn-rate", f"{args.spawn_rate:g}",
            "--run-time", f"{max(1, round(args.seconds))}s", "--host", server.base,
            "--stop-timeout", "30", "--only-summary", "--exit-code-on-error", "0",
            "--loglevel", "WARNING"]
    log = work / "locust.log"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "wb") as out:
        done = subprocess.run(argv, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=args.seconds + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or not record.exists():
        raise harness.BenchError(f"locust failed ({done.returncode}); see its log:\n"
                                 + log.read_text()[-3000:])
    data = json.loads(record.read_text())
    data["locust_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    data["locust_log_tail"] = [ln for ln in log.read_text().splitlines()
                               if "CPU usage" in ln or "Traceback" in ln][:5]
    return data


def drain(url: str, args) -> tuple[float, int]:
    """Wait for the media worker to process every uploaded proof (the database says when)."""
    started = time.monotonic()
    while True:
        with psycopg.connect(url) as conn:
            left, = conn.execute(
                "SELECT count(*) FROM proofs WHERE status = 'processing'").fetchone()
        if left == 0 or time.monotonic() - started > args.drain_timeout:
            return time.monotonic() - started, left
        time.sleep(1)


def audit(url: str, args, work: Path) -> tuple[int, str]:
    env = harness.app_env(url, args.redis, INSTANCE_PATH=str(work / "instance"))
    env["LOG_LEVEL"] = "ERROR"
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "audit"],
                          cwd=harness.ROOT, env=env, capture_output=True, text=True, timeout=600)
    return done.returncode, (done.stdout + done.stderr).strip()


def keep_logs(work: Path) -> Path:
    """Copy the server's, workers' and locust's logs to bench/results/ (git-ignored)."""
    folder = harness.RESULTS / f"load-logs-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True, exist_ok=True)
    for log in work.glob("*.log"):
        shutil.copy(log, folder / log.name)
    return folder


def scan_logs(processes: list[harness.Server]) -> list[str]:
    """Lines of note in the server's and workers' logs: worker timeouts, tracebacks, errors."""
    found = []
    for proc in processes:
        for ln in proc.log.read_text(errors="replace").splitlines():
            if any(mark in ln for mark in ("WORKER TIMEOUT", "Traceback", "ERROR", "CRITICAL",
                                           "Worker was sent", "Exception")):
                found.append(f"{proc.name}: {ln.strip()[:200]}")
    return found


def db_counts(url: str) -> dict:
    with psycopg.connect(url) as conn:
        rows = {f"claims {s}": n for s, n in conn.execute(
            "SELECT status, count(*) FROM claims GROUP BY status ORDER BY status")}
        rows.update({f"proofs {s}": n for s, n in conn.execute(
            "SELECT status, count(*) FROM proofs GROUP BY status ORDER BY status")})
        rows["ledger entries"], = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.sigterm_as_interrupt()
    common.flush_redis(args.redis)
    gunicorn = harness.Gunicorn(args.workers, "gthread", args.threads,
                                extra=["--keep-alive", str(args.keep_alive)])
    limits = rate_limit_env()
    work = Path(tempfile.mkdtemp(prefix="wxy-bench-load-"))
    processes: list[harness.Server] = []
    try:
        with harness.throwaway_database(args.pg, "wxy_bench_load", args.keep) as url:
            started = time.monotonic()
            fixtures = prepare(url, args, work)
            t = fixtures["timings"]
            print(f"seeded through the services in {time.monotonic() - started:.0f}s: "
                  f"{len(fixtures['open_wishes'])} open wishes, {args.users} donors holding "
                  f"{args.held} claim(s) each, {fixtures['ledger_size']} ledger entries "
                  f"({', '.join(f'{k} {v:.0f}s' for k, v in t.items())})")
            dropped = drop_seeding_doorbells(args.redis)
            print(f"dropped {dropped} doorbell jobs rung while seeding (the periodic relay "
                  "re-finds their outbox rows)")
            env = harness.app_env(url, args.redis, SECRET_KEY=common.BENCH_SECRET_KEY,
                                  INSTANCE_PATH=str(work / "instance"), **limits)
            server = gunicorn.start("load-app", "wsgi:app", env, "/api/v1/healthz", work)
            processes.append(server)
            for n in range(args.rq_workers):  # INFO: each job's start and end, in the kept log
                processes.append(start_worker({**env, "LOG_LEVEL": "INFO"}, work, n))
            workers = processes[1:]
            print(f"gunicorn {gunicorn.describe()}; {args.rq_workers} RQ worker process(es); "
                  f"locust: {args.users} users, spawn {args.spawn_rate:g}/s, think time "
                  f"{args.wait.replace(',', '-')} s, {args.seconds:g} s")
            print("rate limits: raised for the bench, as all users share 127.0.0.1: "
                  + (", ".join(f"{k}={v}" for k, v in limits.items()) if limits
                     else "none declared by app/config.py (no RATELIMIT_* setting)"))
            print("             kept at their defaults (per user): "
                  + ", ".join(f"{k}={v}" for k, v in user_limits().items()))
            print(f"before: {uptime()}")
            cpu0, server_cpu0 = cpu_times(), server.cpu_seconds()
            worker_cpu0 = sum(w.cpu_seconds() for w in workers)
            load_started = time.time()
            data = run_locust(args, server, work)
            load_seconds = time.time() - load_started
            cpu1 = cpu_times()
            server_cpu = server.cpu_seconds() - server_cpu0
            up_after = uptime()
            backlog = queue_lengths(args.redis)
            print(f"after:  {up_after}")
            drained, left = drain(url, args)
            worker_cpu = sum(w.cpu_seconds() for w in workers) - worker_cpu0
            counts = db_counts(url)
            for proc in reversed(processes):
                proc.stop()
            audit_rc, audit_text = audit(url, args, work)
            log_lines = scan_logs(processes)
            kept_logs = keep_logs(work)
    except harness.BenchError as exc:
        print(f"bench/load: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench/load: interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        for proc in reversed(processes):
            proc.stop()
        common.flush_redis(args.redis)
        shutil.rmtree(work, ignore_errors=True)
    machine = {"busy_share": (cpu1[0] - cpu0[0]) / max(1.0, cpu1[1] - cpu0[1]),
               "cores": os.cpu_count(), "uptime_after": up_after,
               "server_cpu_s": server_cpu, "worker_cpu_s": worker_cpu,
               "locust_cpu_s": data["locust_cpu_s"], "load_seconds": load_seconds,
               "backlog_at_end": backlog}
    return report(args, data, machine, gunicorn.describe(), limits, (drained, left), counts,
                  audit_rc, audit_text, log_lines, kept_logs)


# --- the report --------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))]


def report(args, data, machine, gunicorn, limits, drained, counts, audit_rc, audit_text,
           log_lines, kept_logs) -> int:
    records = data["records"]  # (t, kind, status, code, ms)
    if not records:
        print("no requests were recorded")
        return 1
    t0, t1 = min(r[0] for r in records), max(r[0] for r in records)
    span = max(1e-9, t1 - t0)
    ramp = args.users / args.spawn_rate
    steady = [r for r in records if r[0] >= t0 + ramp]
    steady_span = max(1e-9, t1 - (t0 + ramp))
    by_kind: dict[str, list] = defaultdict(list)
    for r in records:
        by_kind[r[1]].append(r)
    statuses = Counter(r[2] for r in records)
    codes = Counter(f"{r[2]} {r[3]}".strip() for r in records if r[2] >= 400 or r[2] == 0)
    server_errors = sum(n for s, n in statuses.items() if s >= 500)
    no_answer = statuses.get(0, 0)
    wrong_replays = len(by_kind.get("WRONG replay", []))
    unexpected = sum(1 for r in records if r[1] != "WRONG replay" and r[2] != 0 and r[2] < 500
                     and r[2] not in EXPECTED.get(r[1], (200, 201)))

    print()
    print(f"{len(records)} requests in {span:.1f}s: {len(records) / span:.0f} req/s overall, "
          f"{len(steady) / steady_span:.0f} req/s once all {args.users} users were running "
          f"(after {ramp:.0f}s of ramp-up)")
    # Closed loop: each simulated user waits its think time between requests, so however fast
    # the server, the crowd cannot send more than users / mean think time.
    low, high = (float(x) for x in args.wait.split(","))
    ceiling = args.users / ((low + high) / 2)
    print(f"offered-load ceiling: {args.users} users / {(low + high) / 2:g} s mean think time = "
          f"{ceiling:.0f} req/s (a server answering instantly); measure higher rates with more "
          f"--users or a shorter --wait")
    head = (f"{'kind':<32} {'count':>6} {'share':>6} {'req/s':>6} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'p99 ms':>7} {'max ms':>7}  statuses")
    print(head)
    print("-" * len(head))
    rows = []

    def line(name: str, rs: list, indent: str = "") -> None:
        ms = [r[4] for r in rs if r[2] != 0]
        st = Counter(r[2] for r in rs)
        text = " ".join(f"{s}:{n}" for s, n in sorted(st.items()))
        print(f"{indent + name:<32} {len(rs):>6} {len(rs) / len(records):>6.1%} "
              f"{len(rs) / span:>6.1f} {pct(ms, 50):>7.1f} {pct(ms, 95):>7.1f} "
              f"{pct(ms, 99):>7.1f} {max(ms, default=0):>7.1f}  {text}")
        rows.append({"kind": name, "count": len(rs), "rps": len(rs) / span,
                     "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "p99_ms": pct(ms, 99),
                     "max_ms": max(ms, default=0), "statuses": dict(st)})

    for group, kinds in GROUPS.items():
        members = [r for k in kinds for r in by_kind.get(k, [])]
        line(group, members)
        for kind in kinds:
            if by_kind.get(kind):
                line(kind, by_kind[kind], "  ")
    line("all", [r for r in records if r[1] != "WRONG replay"])

    print()
    print(f"5xx: {server_errors}   no answer: {no_answer}   409: {statuses.get(409, 0)}   "
          f"429: {statuses.get(429, 0)}   unexpected 4xx: {unexpected}   "
          f"wrong idempotent replays: {wrong_replays}")
    for outcome, n in codes.most_common():
        print(f"  {outcome:<40} {n:>6}")
    print(f"wishes still believed open at the end: {data['open_left']}")
    cores = machine["cores"] or 1
    print(f"machine: {cores} cores, {machine['busy_share']:.0%} busy during the load; "
          f"gunicorn {machine['server_cpu_s'] / machine['load_seconds']:.2f} cores, "
          f"RQ worker {machine['worker_cpu_s'] / machine['load_seconds']:.2f}, "
          f"locust {machine['locust_cpu_s'] / machine['load_seconds']:.2f} "
          f"(the rest: PostgreSQL, Redis, other sessions); {machine['uptime_after']}")
    print("note: this machine is shared with other sessions running test suites, so these "
          "figures are noisy (compare runs at similar load averages).")
    for ln in data.get("locust_log_tail", []):
        print(f"locust: {ln}")
    print("RQ queue lengths when the load stopped: "
          + ", ".join(f"{k} {v}" for k, v in machine["backlog_at_end"].items()))
    print(f"media: {drained[1]} proofs still processing {drained[0]:.0f}s after the load "
          "(the auditor allows AUDIT_GRACE_SECONDS)" if drained[1] else
          f"media: every proof processed {drained[0]:.0f}s after the load")
    print("database: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"server/worker logs: {len(log_lines)} lines of note"
          + "".join(f"\n  {ln}" for ln in log_lines[:15])
          + f"\nlogs kept in {kept_logs.relative_to(harness.ROOT)}")
    print()
    print(audit_text)
    verdict_ok = audit_rc == 0
    print()
    problems = []
    if server_errors:
        problems.append(f"{server_errors} responses were 5xx")
    if no_answer:
        problems.append(f"{no_answer} requests got no answer")
    if wrong_replays:
        problems.append(f"{wrong_replays} idempotent replays were wrong")
    if unexpected:
        problems.append(f"{unexpected} unexpected 4xx answers")
    if not verdict_ok:
        ran = "audit: PASSED" in audit_text or "audit: FAILED" in audit_text
        problems.append(f"the audit failed (exit {audit_rc})" if ran else
                        f"the auditor could not run (exit {audit_rc}; see its output above)")
    print("LOAD " + ("PASS" if not problems else "FAIL: " + "; ".join(problems)))
    path = harness.save_results("load", {
        "benchmark": "load", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "args": {k: v for k, v in vars(args).items() if k not in ("pg", "redis")},
        "gunicorn": gunicorn, "rate_limits": limits, "machine": machine,
        "requests": len(records), "seconds": span, "rps": len(records) / span,
        "steady_rps": len(steady) / steady_span, "rows": rows, "statuses": dict(statuses),
        "codes": dict(codes), "db": counts, "audit_exit": audit_rc, "audit": audit_text,
        "log_lines": log_lines,
        "problems": problems})
    print(f"results: {path.relative_to(harness.ROOT)}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())

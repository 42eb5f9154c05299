"""bench/claims: a claim storm against gunicorn on PostgreSQL, then a check of the invariants.

One command, from the repository root with the virtualenv active:

    python bench/claims/run.py            # ~1.5 min: 500 donors, 200 wishes, 40 s of storm
    python bench/claims/run.py --quick    # ~30 s: 10 s of storm

A throwaway database (migrated, dropped at the end) gets 500 donors and 200 open wishes, put in
with SQL. The storm runs in rounds: `--connections` client threads send
`POST /api/v1/wishes/{id}/claims`, each with a random donor's token and a fresh Idempotency-Key,
on wishes picked Zipf-like among those still open (so several donors hit the hottest wish at the
same moment), until every wish is claimed. Between rounds the claims are released with SQL and the
wishes reopened. A few 201s are re-sent with the same key: they must be replayed, not re-run.

After each round, and at the end, the database is checked: no wish has two holding claims
(`active`/`delivered`), every wish with a holding claim is `claimed` and vice versa, every 201
is exactly one claim row, and no donor holds more than CLAIM_ACTIVE_LIMIT active claims.
PASS/FAIL is printed; the exit status is 1 on FAIL.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from bench import common_claims as common  # noqa: E402
from bench import harness  # noqa: E402

HOLDING = "('active', 'delivered')"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s of storm instead of 40 s")
    parser.add_argument("--seconds", type=float, help="storm duration (default 40, quick 10)")
    parser.add_argument("--donors", type=int, default=500)
    parser.add_argument("--wishes", type=int, default=200, help="open wishes per round")
    parser.add_argument("--connections", type=int, default=16, help="client threads")
    parser.add_argument("--zipf", type=float, default=1.1, help="Zipf exponent of wish choice")
    parser.add_argument("--replay", type=float, default=0.05,
                        help="share of 201s re-sent with the same Idempotency-Key")
    # The service's own settings (gunicorn.conf.py, scripts/run): 2 gthread workers of 4 threads,
    # an access log.
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn gthread threads")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class")
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                        help="gunicorn writes its access log, as scripts/run has it do (to a file "
                        "in the temporary folder; ~50 µs of CPU a request)")
    parser.add_argument("--active-limit", type=int, default=100_000,
                        help="CLAIM_ACTIVE_LIMIT for the server (high: the limit is not measured)")
    parser.add_argument("--pg", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"),
        help="a Redis database of the benchmark's own (flushed before and after)")
    parser.add_argument("--keep", action="store_true", help="do not drop the throwaway database")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (10.0 if args.quick else 40.0)
    return args


def prepare(url: str, args) -> tuple[list[str], list[str]]:
    """Schema, fixtures, and one access token per donor; returns (wish ids, tokens)."""
    harness.migrate(url, args.redis)
    with psycopg.connect(url) as conn:
        caseworker, beneficiary = common.insert_staff(conn)
        donors = common.insert_donors(conn, args.donors)
        common.insert_wishes(conn, "storm", 1, args.wishes, "open", caseworker, beneficiary)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    app = common.make_app(url, args.redis)
    with app.app_context():
        from app.auth.models import User
        from app.auth.tokens import issue_access_token
        from app.extensions import db
        users = {u.id: u for u in db.session.query(User).filter(User.id.in_(donors))}
        tokens = [issue_access_token(users[d])[0] for d in donors]
        db.session.remove()
        db.engine.dispose()
    return [f"wsh_storm_{n}" for n in range(1, args.wishes + 1)], tokens


class Storm:
    """One round: every thread claims wishes still believed open until none is left."""

    def __init__(self, port: int, wishes: list[str], tokens: list[str], args, conns: list):
        self.port, self.tokens, self.args, self.conns = port, tokens, args, conns
        self.open = list(wishes)  # in popularity order: rank 0 is the hottest
        self.cum = list(itertools.accumulate(1 / (r + 1) ** args.zipf for r in range(len(wishes))))
        self.lock = threading.Lock()
        self.latencies: list[tuple[float, str]] = []
        self.created: dict[str, str] = {}  # claim id -> wish id, from the 201s
        self.replays = Counter()
        self.problems: list[str] = []

    def run(self, deadline: float) -> float:
        started = time.monotonic()
        threads = [threading.Thread(target=self._client, args=(i, deadline), daemon=True)
                   for i in range(len(self.conns))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - started

    def _pick(self, rng: random.Random) -> str | None:
        with self.lock:
            if not self.open:
                return None
            return rng.choices(self.open, cum_weights=self.cum[:len(self.open)])[0]

    def _gone(self, wish_id: str) -> None:
        with self.lock:
            if wish_id in self.open:
                self.open.remove(wish_id)

    def _post(self, slot: int, wish_id: str, token: str, key: str):
        path = f"/api/v1/wishes/{wish_id}/claims"
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key,
                   "Content-Type": "application/json"}
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            conn = self.conns[slot]
            try:
                t0 = time.perf_counter()
                conn.request("POST", path, body=b"{}", headers=headers)
                response = conn.getresponse()
                body = response.read()
                return response.status, body, response.headers, time.perf_counter() - t0
            except (http.client.HTTPException, OSError):
                conn.close()
                self.conns[slot] = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                if attempt == 2:
                    raise

    def _client(self, slot: int, deadline: float) -> None:
        rng = random.Random(secrets.randbits(64))
        while time.monotonic() < deadline:
            wish_id = self._pick(rng)
            if wish_id is None:
                return
            token, key = rng.choice(self.tokens), secrets.token_urlsafe(16)
            try:
                status, body, headers, seconds = self._post(slot, wish_id, token, key)
            except (http.client.HTTPException, OSError) as exc:
                with self.lock:
                    self.latencies.append((0.0, f"error {type(exc).__name__}"))
                continue
            data = _json(body)
            outcome = str(status) if status == 201 else f"{status} {data.get('code', '?')}"
            with self.lock:
                self.latencies.append((seconds, outcome))
            if status == 201:
                with self.lock:
                    if data.get("id") in self.created:
                        self.problems.append(f"claim id {data.get('id')} returned twice")
                    self.created[data.get("id")] = wish_id
                self._gone(wish_id)
                if rng.random() < self.args.replay:
                    self._replay(slot, wish_id, token, key, data.get("id"))
            elif data.get("code") == "wish_already_claimed":
                self._gone(wish_id)

    def _replay(self, slot, wish_id, token, key, claim_id) -> None:
        status, body, headers, _s = self._post(slot, wish_id, token, key)
        ok = (status == 201 and _json(body).get("id") == claim_id
              and headers.get("Idempotent-Replayed") == "true")
        with self.lock:
            self.replays["replayed" if ok else "WRONG"] += 1
            if not ok:
                self.problems.append(f"replay of {key} answered {status} {body[:200]!r}")


def _json(body: bytes) -> dict:
    try:
        data = json.loads(body)
        return data if isinstance(data, dict) else {}
    except ValueError:
        return {}


def check(url: str, created: dict[str, str], tag: str, limit: int) -> list[str]:
    """The database's side of the story; returns what is wrong (empty: PASS)."""
    wrong = []
    with psycopg.connect(url) as conn:
        doubles = conn.execute(f"SELECT wish_id, count(*) FROM claims WHERE status IN {HOLDING}"
                               " GROUP BY wish_id HAVING count(*) > 1").fetchall()
        wrong += [f"{tag}: wish {w} has {n} holding claims" for w, n in doubles]
        not_claimed = conn.execute(
            f"SELECT c.wish_id, w.status FROM claims c JOIN wishes w ON w.id = c.wish_id"
            f" WHERE c.status IN {HOLDING} AND w.status <> 'claimed'").fetchall()
        wrong += [f"{tag}: wish {w} has a holding claim but is {s}" for w, s in not_claimed]
        orphans = conn.execute(
            f"SELECT w.id FROM wishes w WHERE w.status = 'claimed' AND NOT EXISTS"
            f" (SELECT 1 FROM claims c WHERE c.wish_id = w.id AND c.status IN {HOLDING})"
        ).fetchall()
        wrong += [f"{tag}: wish {w} is claimed without a holding claim" for (w,) in orphans]
        over = conn.execute("SELECT donor_id, count(*) FROM claims WHERE status = 'active'"
                            " GROUP BY donor_id HAVING count(*) > %s", (limit,)).fetchall()
        wrong += [f"{tag}: donor {d} holds {n} active claims, over the limit" for d, n in over]
        holding = dict(conn.execute(
            f"SELECT id, wish_id FROM claims WHERE status IN {HOLDING}").fetchall())
    if holding != created:
        wrong.append(f"{tag}: {len(created)} answers 201 but {len(holding)} holding claims, "
                     f"{len(set(holding.items()) ^ set(created.items()))} differ")
    return wrong


def reopen(url: str) -> None:
    """Between rounds: release every claim and reopen its wish (fixture work, with SQL)."""
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE claims SET status = 'released', ended_at = now()"
                     " WHERE status = 'active'")
        conn.execute("UPDATE wishes SET status = 'open', due_at = NULL WHERE status = 'claimed'")


def final_check(url: str, total_201: int) -> list[str]:
    with psycopg.connect(url) as conn:
        claims, = conn.execute("SELECT count(*) FROM claims").fetchone()
        audits, = conn.execute(
            "SELECT count(*) FROM transitions WHERE entity_type = 'claim' AND action = 'claim'"
        ).fetchone()
        outbox, = conn.execute(
            "SELECT count(*) FROM outbox WHERE topic = 'claim_created'").fetchone()
    return [f"all rounds: {total_201} answers 201 but {n} {what}"
            for n, what in ((claims, "claim rows"), (audits, "claim audit rows"),
                            (outbox, "claim_created outbox rows")) if n != total_201]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] * 1000


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.sigterm_as_interrupt()
    common.flush_redis(args.redis)
    gunicorn = harness.Gunicorn(args.workers, args.worker_class, args.threads)
    rounds, problems, latencies, replays = [], [], [], Counter()
    with tempfile.TemporaryDirectory(prefix="bench-claims-") as tmp, \
            harness.throwaway_database(args.pg, "wxy_bench_claims", args.keep) as url:
        work = Path(tmp)
        started = time.monotonic()
        wishes, tokens = prepare(url, args)
        print(f"database ready in {time.monotonic() - started:.1f}s: {args.donors} donors, "
              f"{len(wishes)} open wishes, {len(tokens)} tokens")
        env = harness.app_env(url, args.redis, SECRET_KEY=common.BENCH_SECRET_KEY,
                              CLAIM_ACTIVE_LIMIT=str(args.active_limit),
                              # thousands of claims from 127.0.0.1: throughput, not abuse limits
                              RATELIMIT_CLAIMS_USER="100000/minute",
                              RATELIMIT_CLAIMS_ADDRESS="1000000/minute",
                              INSTANCE_PATH=str(work / "instance"))
        if args.access_log:
            gunicorn.extra = ["--access-logfile", str(work / "access.log")]
        server = gunicorn.start("claims-app", "wsgi:app", env, "/api/v1/healthz", work)
        conns = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
                 for _ in range(args.connections)]
        load_before = os.getloadavg()
        # CPU from here on: not gunicorn's start-up (importing the app in each process, ~1 s
        # each), which a short storm would otherwise spread over its requests.
        cpu_start, pg_start, client_start = (server.cpu_seconds(), postgres_cpu(url),
                                             time.process_time())
        split_start = server.cpu_split()
        print(f"gunicorn {gunicorn.describe()}; {args.connections} client threads; "
              f"CLAIM_ACTIVE_LIMIT={args.active_limit}; storm of {args.seconds:g} s")
        try:
            deadline = time.monotonic() + args.seconds
            storm_seconds = 0.0
            while time.monotonic() < deadline:
                storm = Storm(server.port, wishes, tokens, args, conns)
                seconds = storm.run(deadline)
                storm_seconds += seconds
                tag = f"round {len(rounds) + 1}"
                wrong = storm.problems + check(url, storm.created, tag, args.active_limit)
                problems += wrong
                outcomes = Counter(o for _s, o in storm.latencies)
                rounds.append({"requests": len(storm.latencies), "created": len(storm.created),
                               "seconds": seconds, "left_open": len(storm.open),
                               "outcomes": dict(outcomes), "problems": wrong})
                latencies += storm.latencies
                replays += storm.replays
                print(f"  {tag}: {len(storm.latencies):>5} requests, {len(storm.created):>3} "
                      f"claims in {seconds:5.2f}s{'' if not storm.open else ' (cut by deadline)'}"
                      f"  {'PASS' if not wrong else 'FAIL'}")
                if time.monotonic() < deadline:
                    reopen(url)
            split = {k: v - split_start[k] for k, v in server.cpu_split().items()}
            cpu = {"gunicorn": server.cpu_seconds() - cpu_start, "gunicorn_start": cpu_start,
                   "postgres": postgres_cpu(url) - pg_start,
                   "client": time.process_time() - client_start}
        finally:
            for conn in conns:
                conn.close()
            server.stop()
        total_201 = sum(r["created"] for r in rounds)
        problems += final_check(url, total_201)
    common.flush_redis(args.redis)
    return report(args, rounds, latencies, replays, problems, storm_seconds, cpu,
                  gunicorn.describe(), load_before, split)


def postgres_cpu(url: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends of this benchmark's database (Linux
    /proc, the server on this machine; 0 elsewhere). The app's pool keeps its connections, so the
    difference over the storm is what its statements cost the server."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    with psycopg.connect(url, autocommit=True) as conn:
        pids = [pid for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()")]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / ticks


def report(args, rounds, latencies, replays, problems, storm_seconds, cpus, gunicorn,
           load_before, split) -> int:
    cpu = cpus["gunicorn"]
    outcomes = Counter(o for _s, o in latencies)
    total = len(latencies)
    created = outcomes.get("201", 0)
    all_s = [s for s, o in latencies if not o.startswith("error")]
    by = {"all": all_s, "201": [s for s, o in latencies if o == "201"],
          "409": [s for s, o in latencies if o.startswith("409")]}
    print()
    print(f"{'requests':>9} {'req/s':>7} {'claims':>7} {'claims/s':>8} {'rounds':>6} "
          f"{'cpu ms/req':>10}")
    print(f"{total:>9} {total / storm_seconds:>7.0f} {created:>7} "
          f"{created / storm_seconds:>8.1f} {len(rounds):>6} {cpu / max(1, total) * 1000:>10.2f}")
    per = {k: v / max(1, total) * 1000 for k, v in cpus.items()}
    print(f"cpu ms/req: gunicorn {per['gunicorn']:.2f} (storm only; with its start-up, as "
          f"measured before 2026-12-07 22:30: {per['gunicorn'] + per['gunicorn_start']:.2f}), "
          f"PostgreSQL backends {per['postgres']:.2f}, bench client {per['client']:.2f}; "
          f"the three: {per['gunicorn'] + per['postgres'] + per['client']:.2f}")
    n = max(1, total)
    print(f"gunicorn per request: user {split['user'] / n * 1000:.2f} ms, system "
          f"{split['system'] / n * 1000:.2f} ms; context switches {split['voluntary_switches'] / n:.1f}"
          f" voluntary, {split['involuntary_switches'] / n:.1f} involuntary")
    print()
    print(f"{'latency (ms)':<14} {'count':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    for name, values in by.items():
        print(f"{name:<14} {len(values):>7} {pct(values, 50):>7.1f} {pct(values, 90):>7.1f} "
              f"{pct(values, 99):>7.1f} {max(values, default=0) * 1000:>7.1f}")
    print()
    print("status codes:")
    for outcome, count in outcomes.most_common():
        print(f"  {outcome:<32} {count:>7}")
    print(f"  replays with the same key       {replays['replayed']:>7} correct, "
          f"{replays['WRONG']} wrong")
    busy = max(load_before[0], os.getloadavg()[0])
    if busy > (os.cpu_count() or 1) / 2:
        print(f"note: load average reached {busy:.1f} on {os.cpu_count()} cores: other work "
              "shared the machine.")
    print()
    for line in problems:
        print("  " + line)
    verdict = "PASS" if not problems else "FAIL"
    print(f"CHECK {verdict}: no wish with two holding claims; every holding claim's wish is "
          f"'claimed' and every 'claimed' wish has one; every 201 is one claim row; no donor "
          f"over CLAIM_ACTIVE_LIMIT "
          f"({len(rounds)} rounds, {created} claims)")
    path = harness.save_results("claims", {
        "benchmark": "claims", "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "args": {k: v for k, v in vars(args).items() if k not in ("pg", "redis")},
        "gunicorn": gunicorn, "storm_seconds": storm_seconds, "requests": total,
        "claims": created, "claims_per_s": created / storm_seconds,
        "requests_per_s": total / storm_seconds, "cpu_ms_per_request": cpu / max(1, total) * 1000,
        "cpu_ms_per_request_by_process": per, "gunicorn_split": split,
        "latency_ms": {k: {"p50": pct(v, 50), "p99": pct(v, 99)} for k, v in by.items()},
        "outcomes": dict(outcomes), "replays": dict(replays), "rounds": rounds,
        "problems": problems, "verdict": verdict,
        "median_round_seconds": statistics.median(r["seconds"] for r in rounds) if rounds else 0,
    })
    print(f"results: {path}")
    return 0 if not problems else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except harness.BenchError as exc:
        sys.exit(f"bench/claims: {exc}")

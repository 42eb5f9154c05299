"""bench/claims/profile.py: where one claim request's time goes, in this process.

    python bench/claims/profile.py                 # 300 claims, pyinstrument tree + counts
    python bench/claims/profile.py --html out.html # and the flame graph as HTML

Same fixtures as bench/claims (a throwaway database, 500 donors, 200 open wishes, reopened
between rounds), the same settings as its server, and the Flask test client instead of gunicorn,
so there is no client or network in the profile. Prints the pyinstrument call tree, and per
request the number of SQL statements, Redis round trips (a pipeline counts once) and threads
started. Needs pyinstrument (a bench-only tool: `pip install pyinstrument`).
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from bench import common_claims as common  # noqa: E402
from bench import harness, inprocess  # noqa: E402
from bench.claims import run as claims_run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=1,
                        help="claims on each wish in a row (2: every other answer is a 409, "
                        "about the storm's mix)")
    parser.add_argument("--html", help="write pyinstrument's HTML flame graph here")
    parser.add_argument("--no-pyinstrument", action="store_true",
                        help="counts only (e.g. to run under `py-spy record`, whose default "
                        "leaves out idle time: a CPU profile)")
    parser.add_argument("--no-counters", action="store_true",
                        help="no SQL/Redis/thread counting: the CPU figure without the counters' "
                        "own cost (~8 %% of it), to compare with gunicorn's")
    parser.add_argument("--trace", action="store_true",
                        help="print the SQL statements and Redis commands of one claim")
    parser.add_argument("--pg", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"))
    args = parser.parse_args()
    fixture_args = claims_run.parse_args(["--redis", args.redis])
    common.flush_redis(args.redis)
    with tempfile.TemporaryDirectory(prefix="bench-claims-profile-") as tmp, \
            harness.throwaway_database(args.pg, "wxy_bench_claims") as url:
        wishes, tokens = claims_run.prepare(url, fixture_args)
        app = common.make_app(url, args.redis, CLAIM_ACTIVE_LIMIT=100_000,
                              RATELIMIT_CLAIMS_USER="100000/minute",
                              RATELIMIT_CLAIMS_ADDRESS="1000000/minute",
                              INSTANCE_PATH=str(Path(tmp) / "instance"))
        counts = (Counter() if args.no_counters and not args.trace else
                  inprocess.counters(app, pool=True, redis_calls=True, threads=True))
        client = app.test_client()

        def one(n: int) -> int:
            wish = wishes[n // args.repeat % len(wishes)]
            if n and n % (len(wishes) * args.repeat) == 0:
                claims_run.reopen(url)
            response = client.post(
                f"/api/v1/wishes/{wish}/claims", json={},
                headers={"Authorization": f"Bearer {tokens[n % len(tokens)]}",
                         "Idempotency-Key": secrets.token_urlsafe(16)})
            return response.status_code

        for n in range(20):  # warm up (schemas, pools, first queries)
            one(n)
        claims_run.reopen(url)
        if args.trace:
            counts["trace"] = 1
            one(len(wishes) - 1)
            del counts["trace"]
        inprocess.profile_requests(  # from a fresh round
            args.claims, "requests", lambda n: one(n + len(wishes) * args.repeat), counts, args)
        inprocess.close_database(app)
    common.flush_redis(args.redis)
    return 0


if __name__ == "__main__":
    sys.exit(main())

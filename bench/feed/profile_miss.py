"""bench/feed/profile_miss.py: what one feed page costs when it is not cached, in this process.

    python bench/feed/profile_miss.py                   # 2000 misses, pyinstrument tree + counts
    python bench/feed/profile_miss.py --no-pyinstrument # CPU per miss only (or under py-spy)
    python bench/feed/profile_miss.py --hits            # the same requests, cache kept

bench/load's feed requests (filters drawn as its locustfile draws them, half of them the next page
by the cursor of the one before), through the Flask test client on a throwaway database filled as
bench/feed fills it (`--wishes`, default 100,000), each with this process's page cache emptied
first: what the charity-day mix pays on the ~17 feed invalidations a second of its claims.
Prints CPU per request, SQL statements and Redis round trips per request.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from bench import common_claims as common  # noqa: E402
from bench import harness, inprocess  # noqa: E402
from bench.feed.populate import TOWNS, populate  # noqa: E402

KINDS = ["goods", "service", "education"]
LEVELS = ["red", "orange", "yellow", "blue"]
CATEGORIES = ["elderly", "illness", "disability", "livelihood", "education", "housing", "child",
              "accident"]


def queries(rng: random.Random):
    """bench/load's feed requests: a new query with filters, or the next page of the last one."""
    last, cursor = "", None
    while True:
        if rng.random() < 0.5 or cursor is None:
            params = {}
            if rng.random() < 0.5:
                params["sort"] = "newest"
            for name, values, share in (("kind", KINDS, 0.3), ("level", LEVELS, 0.25),
                                        ("category", CATEGORIES, 0.15),
                                        ("region", sorted(TOWNS), 0.3)):
                if rng.random() < share:
                    params[name] = rng.choice(values)
            last = "&".join(f"{k}={v}" for k, v in params.items())
            query = last
        else:
            query = (last + "&" if last else "") + f"cursor={cursor}"
        cursor = yield query


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--wishes", type=int, default=100_000)
    parser.add_argument("--hits", action="store_true", help="keep the page cache (hits)")
    parser.add_argument("--html", help="write pyinstrument's HTML flame graph here")
    parser.add_argument("--no-pyinstrument", action="store_true")
    parser.add_argument("--trace", action="store_true",
                        help="print the SQL statements and Redis commands of one miss")
    parser.add_argument("--database", help="an already populated database (kept)")
    parser.add_argument("--pg", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    args = parser.parse_args()
    common.flush_redis(args.redis)
    if args.database:
        run(args, args.database)
    else:
        with harness.throwaway_database(args.pg, "wxy_bench_feedmiss") as url:
            harness.migrate(url, args.redis)
            populate(url, args.wishes)
            import psycopg
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")
            run(args, url)
    common.flush_redis(args.redis)
    return 0


def run(args, url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-feed-profile-") as tmp:
        app = common.make_app(url, args.redis, 
                              INSTANCE_PATH=str(Path(tmp) / "instance"))
        from app.wishes import feed_cache
        counts = inprocess.counters(app, pool=True, redis_calls=True)
        client = app.test_client()
        rng = random.Random(7)
        walk = queries(rng)
        query = next(walk)
        sizes = Counter()

        def one() -> int:
            nonlocal query
            if not args.hits:
                feed_cache._pages.clear()
            response = client.get("/api/v1/wishes" + (f"?{query}" if query else ""))
            data = response.get_json() if response.status_code == 200 else {}
            sizes[len(data.get("items", ()))] += 1
            query = walk.send(data.get("next_cursor"))
            return response.status_code

        for _ in range(200):  # warm up (schemas, pools, first queries, the version watch)
            one()
        if args.trace:
            counts["trace"] = 1
            one()
            del counts["trace"]
        sizes.clear()
        inprocess.profile_requests(args.requests, "feed requests" + (
            " (cache kept)" if args.hits else " (misses)"), lambda _: one(), counts, args)
        hits = app.wsgi_app.hits if hasattr(app.wsgi_app, "hits") else "?"
        print(f"  items per page: {dict(sorted(sizes.items()))}; answered before Flask: {hits}")
        inprocess.close_database(app)


if __name__ == "__main__":
    sys.exit(main())

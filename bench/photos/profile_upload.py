"""bench/photos/profile_upload.py: where one proof-photo upload's time goes, in this process.

    python bench/photos/profile_upload.py                  # 200 uploads, pyinstrument tree + counts
    python bench/photos/profile_upload.py --no-pyinstrument  # CPU per upload only (or under py-spy)
    python bench/photos/profile_upload.py --html out.html  # and the flame graph as HTML

The same requests as bench/load's proof task: `POST /api/v1/claims/{id}/proofs`, multipart with
a note and one of bench/load's generated JPEGs (800x600, ~40-70 KB), a fresh Idempotency-Key,
each on a claim the donor holds (seeded by bench/load/seed.py on a throwaway database). The
Flask test client stands in for gunicorn, so no client or network is in the profile; the RQ
media job is only enqueued (no worker runs here). Needs pyinstrument (bench-only).
"""
from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from bench import common_claims as common  # noqa: E402
from bench import harness, inprocess  # noqa: E402
from bench.load import seed as seeding  # noqa: E402
from bench.load.upload_body import multipart  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--photos", type=int, default=20, help="distinct JPEGs (as bench/load)")
    parser.add_argument("--html", help="write pyinstrument's HTML flame graph here")
    parser.add_argument("--no-pyinstrument", action="store_true",
                        help="counts only (e.g. to run under `py-spy record`)")
    parser.add_argument("--trace", action="store_true",
                        help="print the SQL statements and Redis commands of one upload")
    parser.add_argument("--pg", default=os.environ.get(
        "BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/7"))
    args = parser.parse_args()
    warm = 20
    donors = 50
    held = -(-(args.uploads + warm) // donors)
    common.flush_redis(args.redis)
    with tempfile.TemporaryDirectory(prefix="bench-proof-profile-") as tmp, \
            harness.throwaway_database(args.pg, "wxy_bench_proofs") as url:
        harness.migrate(url, args.redis)
        app = common.make_app(url, args.redis, INSTANCE_PATH=str(Path(tmp) / "instance"),
                              LOG_LEVEL="ERROR", CLAIM_ACTIVE_LIMIT=100_000,
                              RATELIMIT_UPLOADS_USER="100000/minute",
                              RATELIMIT_UPLOADS_ADDRESS="1000000/minute")
        logging.getLogger("app").setLevel(logging.ERROR)
        fixtures = seeding.seed(app, wishes=donors * held + 10, fulfilled=0, donors=donors,
                                held=held)
        jobs = [(d["token"], c) for n in range(held) for d in fixtures["donors"]
                for c in d["claims"][n:n + 1]]
        photos = [seeding.proof_jpeg(n) for n in range(args.photos)]
        print(f"photos: {len(photos)}, {min(map(len, photos)) // 1024}-"
              f"{max(map(len, photos)) // 1024} KB; {len(jobs)} held claims")
        counts = inprocess.counters(app, pool=True, redis_calls=True, threads=True)
        client = app.test_client()

        def one(n: int) -> int:
            token, claim_id = jobs[n]
            body, content_type = multipart(photos[n % len(photos)], "已送到受助人家中，老人很高兴")
            response = client.post(
                f"/api/v1/claims/{claim_id}/proofs", data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": content_type,
                         "Idempotency-Key": secrets.token_urlsafe(16)})
            return response.status_code

        for n in range(warm):
            assert one(n) == 201
        if args.trace:
            counts["trace"] = 1
            one(warm)
            del counts["trace"]
            warm += 1
        inprocess.profile_requests(args.uploads, "uploads", lambda n: one(warm + n), counts, args)
        inprocess.close_database(app)
    common.flush_redis(args.redis)
    return 0


if __name__ == "__main__":
    sys.exit(main())

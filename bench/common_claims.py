"""Fixtures shared by bench/claims and bench/sweep: staff, a beneficiary, donors and wishes
inserted in bulk with SQL (generate_series), and an in-process app bound to a given database.

Only fixtures go in this way; what a benchmark measures always runs through the app's own code.
Ids are `<prefix>_<tag>_<n>`, so a run's rows are easy to find and reset.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone

import psycopg

REGION = "350505101201"  # a village of 界山镇 (泉港区)
BENCH_SECRET_KEY = "bench-only-secret-key-0123456789-abcdefghijklmnop"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def insert_staff(conn: psycopg.Connection) -> tuple[str, str]:
    """One caseworker (in scope of REGION) and one beneficiary; returns their ids."""
    now = now_utc()
    caseworker, beneficiary = "usr_bench_cw", "ben_bench_1"
    conn.execute(
        "INSERT INTO users (id, role, display_name, username, active, token_version, created_at)"
        " VALUES (%s, 'caseworker', '界山镇协理员', 'bench-caseworker', true, 1, %s)",
        (caseworker, now))
    conn.execute("INSERT INTO staff_regions (user_id, region_code) VALUES (%s, %s)",
                 (caseworker, REGION[:9]))
    conn.execute(
        "INSERT INTO beneficiaries (id, region_code, alias, birth_year, categories, level,"
        " created_by, created_at, updated_at, erased)"
        " VALUES (%s, %s, '陈奶奶', 1948, '[\"elderly\"]', 'orange', %s, %s, %s, false)",
        (beneficiary, REGION, caseworker, now, now))
    return caseworker, beneficiary


def insert_donors(conn: psycopg.Connection, count: int) -> list[str]:
    """`count` WeChat donors `usr_donor_<n>`; returns their ids."""
    conn.execute(
        "INSERT INTO users (id, role, display_name, wechat_openid, active, token_version,"
        " created_at)"
        " SELECT 'usr_donor_' || n, 'donor', '爱心人士' || n, 'o-bench-' || n, true, 1, now()"
        " FROM generate_series(1, %s::int) AS n", (count,))
    return [f"usr_donor_{n}" for n in range(1, count + 1)]


def insert_wishes(conn: psycopg.Connection, tag: str, first: int, last: int, status: str,
                  caseworker: str, beneficiary: str, due_sql: str = "NULL") -> None:
    """Wishes `wsh_<tag>_<n>` for n in [first, last], published, in `status`; `due_sql` is an
    SQL expression in `n` for wishes.due_at (claimed wishes carry their claim's deadline)."""
    conn.execute(
        "INSERT INTO wishes (id, beneficiary_id, author_id, region_code, title, story, kind,"
        " item, estimated_value_fen, status, level, level_rank, category_mask, hidden,"
        " approved_by, created_at, updated_at, submitted_at, published_at, due_at)"
        f" SELECT 'wsh_{tag}_' || n, %(ben)s, %(cw)s, %(region)s, '陈奶奶的心愿：电风扇' || n,"
        " '家里只有两位老人相依为命，希望能得到一台电风扇。', 'goods', '一台电风扇',"
        " 15000, %(status)s, 'orange', 1, 1, false, %(cw)s,"
        " now() - interval '3 days', now() - interval '1 day', now() - interval '2 days',"
        f" now() - interval '1 day' + n * interval '1 millisecond', {due_sql}"
        " FROM generate_series(%(first)s::int, %(last)s::int) AS n",
        {"ben": beneficiary, "cw": caseworker, "region": REGION, "status": status,
         "first": first, "last": last})


def make_app(database_url: str, redis_url: str, **config):
    """The app, in this process, on `database_url` (as gunicorn would build it)."""
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from app import create_app
    return create_app({"DATABASE_URL": database_url, "REDIS_URL": redis_url,
                       "APP_ENV": "development", "SECRET_KEY": BENCH_SECRET_KEY, **config})


def flush_redis(redis_url: str) -> None:
    """Empty the benchmark's own Redis database (jobs the app scheduled, cache keys)."""
    import redis
    redis.Redis.from_url(redis_url).flushdb()

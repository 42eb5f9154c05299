"""A scratch PostgreSQL database for migration tests: made empty, handed over with an app bound
to it, dropped afterwards whatever happens."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa


@contextmanager
def scratch_database(app_config: dict[str, Any]) -> Iterator[Any]:
    """Yield an app on a new empty database (nothing migrated yet), inside its app context.

    Its sessions run with `session_replication_role = replica`: the tests write rows only, not
    the objects they point at, so foreign keys (triggers, which the replica role skips) are off.
    """
    from app import create_app
    from app.extensions import db

    server = app_config["DATABASE_URL"].rsplit("/", 1)[0]
    name = f"wxy_mig_{secrets.token_hex(4)}"
    admin = sa.create_engine(f"{server}/postgres".replace("postgresql://", "postgresql+psycopg://",
                                                          1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET session_replication_role = replica'))
    try:
        application = create_app({**app_config, "DATABASE_URL": f"{server}/{name}"})
        with application.app_context():
            try:
                yield application
            finally:
                db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

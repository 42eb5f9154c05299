"""Which failures are an outage (503, retry) and which are our bug (500)."""
from __future__ import annotations

import sqlite3

import psycopg
import pytest
import redis
from sqlalchemy import exc as sa_exc

from app.errors import is_transient_outage


def _wrapped(cls, orig):
    return cls("SELECT 1", {}, orig)


@pytest.mark.parametrize("error, outage", [
    (_wrapped(sa_exc.OperationalError, psycopg.OperationalError("server closed the connection")),
     True),
    (_wrapped(sa_exc.OperationalError, sqlite3.OperationalError("database is locked")), True),
    (_wrapped(sa_exc.OperationalError, sqlite3.OperationalError("unable to open database file")),
     True),
    # SQLite files bad SQL under OperationalError: a bug, not an outage (was a 503 on SQLite)
    (_wrapped(sa_exc.OperationalError, sqlite3.OperationalError("no such table: nope")), False),
    (_wrapped(sa_exc.OperationalError, sqlite3.OperationalError('near "SELEC": syntax error')),
     False),
    (_wrapped(sa_exc.ProgrammingError, psycopg.ProgrammingError("relation does not exist")),
     False),
    (_wrapped(sa_exc.IntegrityError, psycopg.IntegrityError("duplicate key")), False),
    (redis.ConnectionError("Connection refused"), True),
    (redis.TimeoutError("Timeout reading"), True),
    (RuntimeError("boom"), False),
])
def test_outage_or_bug(error, outage):
    assert is_transient_outage(error) is outage

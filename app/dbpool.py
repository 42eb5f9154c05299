"""Pessimistic disconnect checks only where a dead connection is likely: after it sat idle.

SQLAlchemy's `pool_pre_ping` sends a round trip on *every* checkout, and a request checks out a
connection once per transaction (an idempotent write has three): a busy server paid a ping for
connections it had used milliseconds before. Here a connection is pinged only when it comes out
of the pool after `DB_PING_IDLE_SECONDS` (1 s) or more of rest, when a database restart or an
idle timeout (firewall, PgBouncer) may have cut it unseen: a busy server reuses its connections
within milliseconds and pings none, a quiet one pings as pool_pre_ping did. A connection killed while the server is
busy fails on its next statement instead; SQLAlchemy then recognises the disconnect, invalidates
every connection of the pool opened before it (they are reconnected on their next checkout), and
the request answers 503 `database_unavailable` (app/errors.py), like any outage.
"""
from __future__ import annotations

import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

_RESTED_SINCE = "checked_in_at"


def ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """Install the check on `engine`'s pool (0: ping on every checkout, like pool_pre_ping)."""

    @event.listens_for(engine, "checkin")
    def _rested(dbapi_connection, record) -> None:
        record.info[_RESTED_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_rested(dbapi_connection, record, proxy) -> None:
        rested_since = record.info.get(_RESTED_SINCE)
        if rested_since is None or time.monotonic() - rested_since < idle_seconds:
            return  # new (just connected), or used a moment ago
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()  # end the transaction the ping opened (psycopg)
        except Exception as error:  # noqa: BLE001 - any failure: this connection is unusable
            # The pool discards the connection and checks out another (up to three times).
            raise exc.DisconnectionError(f"idle connection failed its ping: {error}") from error

"""Write notifications inside the caller's unit of work (app.uow), which commits them.

Both writers are idempotent on `dedupe_key`: writing the same event twice (two sweepers, a job
run twice) leaves one row, so each message goes out once. Each write is one
`INSERT ... ON CONFLICT (dedupe_key) DO NOTHING`: a concurrent writer of the same key wins and we
step back, without a look-up or a savepoint per message.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.notifications.models import InboxNotification, OutboxMessage
from app.queue import ring_after_commit

log = logging.getLogger(__name__)

RELAY_BELL = "outbox-relay"  # the relay job's id (app.queue.ring)
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


_STATEMENTS: dict[tuple[str, type], Any] = {}


def _insert_once(model, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose dedupe_key is new; return how many were inserted."""
    dialect = db.session.get_bind().dialect.name
    if len(rows) > 1:
        result = db.session.execute(_INSERTS[dialect](model.__table__).values(rows)
                                    .on_conflict_do_nothing(index_elements=["dedupe_key"]))
        return result.rowcount or 0
    # One row (a claim's notice, the common case): one statement built once per table, on the
    # table (Core, not SQLAlchemy's ORM bulk path), the row as its parameters.
    statement = _STATEMENTS.get((dialect, model))
    if statement is None:
        statement = _STATEMENTS[dialect, model] = _INSERTS[dialect](model.__table__) \
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
    return db.session.execute(statement, rows[0]).rowcount or 0


def notify_donor(user_id: str, topic: str, payload: dict[str, Any], dedupe_key: str) -> None:
    """Queue a WeChat subscribe message for a donor (sent by the outbox relay)."""
    inserted = _insert_once(OutboxMessage, [{"dedupe_key": dedupe_key, "user_id": user_id,
                                             "topic": topic, "payload": payload}])
    if inserted:
        # One doorbell, whatever the number of messages and transactions: the relay sends
        # everything pending when it runs, and runs once more if it was already running.
        ring_after_commit(db.session, "notifications", "workers.jobs.relay_outbox",
                          key=RELAY_BELL, again=True)


def notify_staff(user_ids: list[str], topic: str, title: str, body: str,
                 data: dict[str, Any], dedupe_key: str) -> None:
    """Put a message in each staff member's in-app inbox."""
    rows = [{"dedupe_key": f"{dedupe_key}:{user_id}", "user_id": user_id, "topic": topic,
             "title": title, "body": body, "data": data} for user_id in sorted(set(user_ids))]
    if rows:
        _insert_once(InboxNotification, rows)

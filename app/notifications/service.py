"""Write notifications inside the caller's transaction; the caller commits.

Both writers are idempotent on `dedupe_key`: writing the same event twice (two sweepers, a job
run twice) leaves one row, so each message goes out once.
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.notifications.models import InboxNotification, OutboxMessage
from app.queue import enqueue_after_commit

log = logging.getLogger(__name__)


def _exists(model, dedupe_key: str) -> bool:
    return db.session.execute(
        select(model.id).where(model.dedupe_key == dedupe_key)).first() is not None


def notify_donor(user_id: str, topic: str, payload: dict[str, Any], dedupe_key: str) -> None:
    """Queue a WeChat subscribe message for a donor (sent by the outbox relay)."""
    if _exists(OutboxMessage, dedupe_key):
        return
    try:
        with db.session.begin_nested():  # a concurrent writer of the same key wins; we step back
            db.session.add(OutboxMessage(dedupe_key=dedupe_key, user_id=user_id, topic=topic,
                                         payload=payload))
    except IntegrityError:
        return
    enqueue_after_commit(db.session, "notifications", "workers.jobs.relay_outbox")


def notify_staff(user_ids: list[str], topic: str, title: str, body: str,
                 data: dict[str, Any], dedupe_key: str) -> None:
    """Put a message in each staff member's in-app inbox."""
    for user_id in sorted(set(user_ids)):
        key = f"{dedupe_key}:{user_id}"
        if _exists(InboxNotification, key):
            continue
        try:
            with db.session.begin_nested():
                db.session.add(InboxNotification(dedupe_key=key, user_id=user_id, topic=topic,
                                                 title=title, body=body, data=data))
        except IntegrityError:
            continue

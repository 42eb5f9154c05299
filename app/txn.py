"""Run callbacks only after the current transaction commits (and drop them on rollback).

Used to ring Redis doorbells (enqueue jobs, invalidate caches) once the rows they point at exist:
a fast worker must never look for a row that is not there yet.
"""
from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
_KEY = "after_commit_callbacks"


def on_commit(session: Session, callback: Callable[[], None], key: str | None = None) -> None:
    """Run `callback` after the transaction commits. With a `key`, only the first callback
    registered under that key in this transaction runs (one doorbell for many rows)."""
    callbacks = session.info.setdefault(_KEY, [])
    if key is not None:
        if any(k == key for k, _ in callbacks):
            return
    callbacks.append((key, callback))


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    callbacks = session.info.pop(_KEY, [])
    for _, callback in callbacks:
        try:
            callback()
        except Exception:  # a doorbell that fails must not turn a committed write into a 500
            log.exception("after-commit callback %r failed", callback)


@event.listens_for(Session, "after_rollback")
def _drop_callbacks(session: Session) -> None:
    session.info.pop(_KEY, None)

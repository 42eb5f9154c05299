"""The unit of work (app/uow.py): the one place that commits, rolls back, runs after-commit work and
takes locks in the stated order; and the event table that every domain event goes through."""
from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from app import events
from app.auth.models import User
from app.extensions import db
from app.handlers import HANDLERS
from app.uow import LOCK_ORDER, LockOrderError, unit_of_work, use_case

APP = Path(__file__).resolve().parents[2] / "app"


def _donor(name: str) -> User:
    return User(role="donor", wechat_openid=f"uow-{name}", display_name=name, active=True,
                token_version=1)


def _exists(name: str) -> bool:
    return db.session.execute(
        select(User.id).where(User.wechat_openid == f"uow-{name}")).first() is not None


def test_leaving_the_block_commits_and_an_exception_rolls_back(app):
    with app.app_context():
        with unit_of_work():
            db.session.add(_donor("kept"))
        with pytest.raises(RuntimeError):
            with unit_of_work():
                db.session.add(_donor("dropped"))
                db.session.flush()
                raise RuntimeError("boom")
        db.session.remove()
        assert _exists("kept") and not _exists("dropped")


def test_a_use_case_called_inside_another_commits_with_its_caller(app):
    @use_case
    def inner() -> None:
        db.session.add(_donor("inner"))

    with app.app_context():
        with pytest.raises(RuntimeError):
            with unit_of_work():
                inner()
                raise RuntimeError("the caller fails after the inner use case returned")
        db.session.remove()
        assert not _exists("inner")


def test_after_commit_work_runs_only_once_committed(app):
    ran: list[str] = []
    with app.app_context():
        with unit_of_work() as uow:
            uow.after_commit(lambda: ran.append("committed"))
            assert ran == []
        assert ran == ["committed"]
        with pytest.raises(RuntimeError):
            with unit_of_work() as uow:
                uow.after_commit(lambda: ran.append("rolled back"))
                raise RuntimeError("boom")
        assert ran == ["committed"]


def test_locks_out_of_the_stated_order_are_refused(app):
    assert LOCK_ORDER.index("claim") < LOCK_ORDER.index("wish") < LOCK_ORDER.index("ledger")
    assert LOCK_ORDER[-1] == "ledger"
    with app.app_context():
        with pytest.raises(LockOrderError):
            with unit_of_work() as uow:
                uow.lock("claim")
                uow.lock("wish")
                uow.lock("wish")  # again, or another row of the same kind: fine
                uow.lock("claim")  # back up the order: could deadlock
        with unit_of_work() as uow:  # a new transaction starts from the top again
            uow.lock("user")
        with pytest.raises(LockOrderError):
            with unit_of_work() as uow:
                uow.lock("no-such-lock")


def test_every_domain_event_has_handlers_in_the_one_table():
    declared = {obj for _, obj in inspect.getmembers(events, inspect.isclass)
                if dataclasses.is_dataclass(obj) and obj.__module__ == events.__name__}
    assert declared and declared == set(HANDLERS)
    for handlers in HANDLERS.values():
        assert handlers and all(phase in (events.SAME_TRANSACTION, events.AFTER_COMMIT)
                                for phase, _ in handlers)


def test_only_the_unit_of_work_commits_or_rolls_back():
    calls = re.compile(r"\b(commit|rollback)\(\)")
    offenders = [f"{path.relative_to(APP.parent)}:{n}"
                 # app/dbpool.py ends the transaction its own connection-level ping opened
                 # (a DBAPI call inside the pool's checkout hook, never a session's work).
                 for path in sorted(APP.rglob("*.py")) if path.name not in ("uow.py", "dbpool.py")
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if calls.search(line)]
    assert offenders == []


def test_after_commit_redis_commands_of_a_transaction_go_in_one_pipeline(app):
    """app.uow.pipeline_on_commit: every caller's commands after the commit, each answered with
    its own replies; a key registered twice counts once; nothing at all after a rollback."""
    from app.redis_conn import get_redis
    from app.uow import pipeline_on_commit

    answers: dict[str, object] = {}
    with app.app_context():
        client = get_redis()
        client.delete("uow:a", "uow:b")
        with unit_of_work() as uow:
            pipeline_on_commit(uow.session, client, lambda pipe: pipe.incr("uow:a"),
                               lambda replies: answers.__setitem__("a", replies), key="a")
            pipeline_on_commit(uow.session, client, lambda pipe: pipe.incr("uow:a"),
                               lambda replies: answers.__setitem__("again", replies), key="a")
            pipeline_on_commit(uow.session, client,
                               lambda pipe: (pipe.set("uow:b", 7), pipe.get("uow:b")),
                               lambda replies: answers.__setitem__("b", replies))
            assert client.get("uow:a") is None and answers == {}
        assert answers == {"a": [1], "b": [True, b"7"]}
        with pytest.raises(RuntimeError):
            with unit_of_work() as uow:
                pipeline_on_commit(uow.session, client, lambda pipe: pipe.incr("uow:a"))
                raise RuntimeError("boom")
        with unit_of_work():
            pass  # a later commit sends nothing the rolled back one registered
        assert client.get("uow:a") == b"1"

"""The unit of work: the one place that commits, rolls back, runs after-commit work and takes
row locks in one stated order.

A use case runs inside `with unit_of_work() as uow:` (or is decorated `@use_case`): leaving the
block commits, an exception rolls back and propagates. A unit of work opened while another is
active on the same session joins it, so a use case called from another one commits once, with
its caller. Inside, the use case

  - takes locks through `uow.lock(name, statement)`, in `LOCK_ORDER` (a lock earlier in the
    order taken after a later one is a bug, and raises before it can deadlock);
  - hangs after-commit work on it (`uow.after_commit`): Redis doorbells, file deletions, cache
    bumps, run only once the rows they point at are committed, dropped on rollback;
  - emits domain events (`uow.emit`, see app.events);
  - names the resource it produced (`uow.produced`), which the idempotency record of the
    request, if any, is attached to inside the same transaction.
"""
from __future__ import annotations

import functools
import logging
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session

from app.events import AFTER_COMMIT, SAME_TRANSACTION
from app.extensions import db

log = logging.getLogger(__name__)

# Every lock a transaction may take, in the only order it may take them. Rows of one kind are
# locked in id order by the caller (e.g. the claim sweeper's wishes). The fund's and the ledger's
# advisory locks come last: they are held by every money or ledger writer.
LOCK_ORDER: tuple[str, ...] = (
    "user",            # a donor's own claims (the active-claim limit)
    "claim",           # a claim, before its wish
    "wish",
    "proof",
    "donation",
    "disbursement",
    "task",            # a caseworker's task, before its application
    "application",
    "person",          # a person signals name (one open alert each)
    "beneficiary",
    "notification",    # a staff inbox row
    "outbox",          # an outbox message, before the donor's credits
    "credit",
    "idempotency_key",
    "fund",            # advisory: money-out writers and reversals
    "ledger",          # advisory: every ledger writer; always last
)

_HANDLERS: dict[type, tuple[tuple[str, Callable[[Any], None]], ...]] = {}

_CURRENT = "unit_of_work"
_CALLBACKS = "after_commit_callbacks"
_IDEMPOTENCY = "idempotency_record"

T = TypeVar("T")


class LockOrderError(RuntimeError):
    """A lock was requested out of LOCK_ORDER: fix the code, it could deadlock."""


class UnitOfWork:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._held = -1  # rank of the latest lock in LOCK_ORDER held in this transaction

    # --- locks ---------------------------------------------------------------------------------

    def lock(self, name: str, statement: Any = None, params: dict[str, Any] | None = None):
        """Take the lock `name` (executing `statement`, a SELECT ... FOR UPDATE or an advisory
        lock, if given, with its bind `params`) after checking it respects LOCK_ORDER. Returns
        the statement's result."""
        try:
            rank = LOCK_ORDER.index(name)
        except ValueError:
            raise LockOrderError(f"unknown lock {name!r}; add it to LOCK_ORDER") from None
        if rank < self._held:
            raise LockOrderError(f"lock {name!r} requested after {LOCK_ORDER[self._held]!r}; "
                                 f"the order is {' → '.join(LOCK_ORDER)}")
        self._held = rank
        if statement is not None:
            return self.session.execute(statement, params)
        return None

    # --- work that waits for the commit --------------------------------------------------------

    def after_commit(self, callback: Callable[[], None], key: str | None = None) -> None:
        on_commit(self.session, callback, key)

    # --- events and idempotency ----------------------------------------------------------------

    def emit(self, event_: Any) -> None:
        """Hand a domain event to its handlers (the table in app.handlers): the
        same-transaction ones run now, the after-commit ones once this unit of work commits."""
        handlers = _HANDLERS.get(type(event_))
        if handlers is None:
            # A lost event would be a lost ledger entry: refuse loudly.
            raise LookupError(f"no handlers for {type(event_).__name__}: is it in the table of "
                              "app.handlers, and did the app factory install it?")
        for phase, handler in handlers:
            if phase == SAME_TRANSACTION:
                handler(event_)
            elif phase == AFTER_COMMIT:
                self.after_commit(functools.partial(handler, event_))
            else:
                raise ValueError(f"unknown handler phase {phase!r}")

    def produced(self, resource_type: str, resource_id: str) -> None:
        """The use case made this resource: tie the request's idempotency record (if the edge
        bound one, see `idempotency_record`) to it, in this transaction, so the effect and the
        record cannot part."""
        attach = self.session.info.get(_IDEMPOTENCY)
        if attach is not None:
            attach(resource_type, resource_id)

    # --- the end -------------------------------------------------------------------------------

    def _commit(self, keep_loaded: bool = False) -> None:
        self._held = -1
        if not keep_loaded:
            self.session.commit()
            return
        session = self.session() if isinstance(self.session, scoped_session) else self.session
        expire, session.expire_on_commit = session.expire_on_commit, False
        try:
            session.commit()
        finally:
            session.expire_on_commit = expire

    def _rollback(self) -> None:
        self._held = -1
        # (also when the block ran no statement: the session then has no transaction to roll
        # back, no after_rollback event comes, and the work would wait for the next commit)
        _drop_callbacks(self.session)
        self.session.rollback()


def install_handlers(table: dict[type, tuple[tuple[str, Callable[[Any], None]], ...]]) -> None:
    """The composition root hands over the event handler table (app.handlers.HANDLERS)."""
    _HANDLERS.clear()
    _HANDLERS.update(table)


def _session(session: Session | None) -> Session:
    return session if session is not None else db.session


@contextmanager
def unit_of_work(session: Session | None = None, *, read_only: bool = False,
                 keep_loaded: bool = False) -> Iterator[UnitOfWork]:
    """Run the block as one transaction: commit at the end, roll back on an exception. Inside an
    active unit of work, join it. `read_only=True` always rolls back (an auditor never writes).
    `keep_loaded=True`: the commit does not expire what the session holds, so the request's
    objects (its user, read a moment ago) are not read again by its next transaction, nor what
    the block wrote by the answer that shows it. Only where nothing the session holds can be
    changed by the database itself (no server-side defaults or triggers on what was written) and
    an answer as of this commit is the right one (the 201 of the request that made it)."""
    session = _session(session)
    outer = session.info.get(_CURRENT)
    if outer is not None:
        yield outer
        return
    uow = UnitOfWork(session)
    session.info[_CURRENT] = uow
    try:
        yield uow
        if read_only:
            uow._rollback()
        else:
            uow._commit(keep_loaded)
    except BaseException:
        uow._rollback()
        raise
    finally:
        session.info.pop(_CURRENT, None)


def use_case(func: Callable[..., T]) -> Callable[..., T]:
    """Run `func` inside a unit of work (joining the caller's, if there is one)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with unit_of_work():
            return func(*args, **kwargs)

    return wrapper


def current(session: Session | None = None) -> UnitOfWork:
    """The active unit of work; a helper that needs one is only ever called inside a use case."""
    uow = _session(session).info.get(_CURRENT)
    if uow is None:
        raise RuntimeError("no active unit of work: call this inside `with unit_of_work()`")
    return uow


def lock(name: str, statement: Any = None):
    """`current().lock(...)`, or just the statement outside a unit of work (a read that wants
    the row lock of a transaction a test or a CLI opened itself)."""
    uow = _session(None).info.get(_CURRENT)
    if uow is None:
        return db.session.execute(statement) if statement is not None else None
    return uow.lock(name, statement)


def reset(session: Session | None = None) -> None:
    """Throw away whatever a failed request or job left uncommitted in the session (an edge
    does this before it answers; no unit of work is active then)."""
    session = _session(session)
    session.info.pop(_CURRENT, None)
    _drop_callbacks(session)
    session.rollback()


@contextmanager
def idempotency_record(attach: Callable[[str, str], None],
                       session: Session | None = None) -> Iterator[None]:
    """While the block runs, `uow.produced(type, id)` calls `attach(type, id)`: the HTTP edge
    binds its request's idempotency record this way (app.idempotency.attach)."""
    session = _session(session)
    session.info[_IDEMPOTENCY] = attach
    try:
        yield
    finally:
        session.info.pop(_IDEMPOTENCY, None)


# --- after-commit callbacks on the session -----------------------------------------------------
# They hang on the session (not only on a UnitOfWork object) so that a callback registered by a
# helper runs after whichever commit ends its transaction, and never after a rollback.

def on_commit(session: Session, callback: Callable[[], None], key: str | None = None) -> None:
    """Run `callback` after the transaction commits. With a `key`, only the first callback
    registered under that key in this transaction runs (one doorbell for many rows)."""
    callbacks = session.info.setdefault(_CALLBACKS, [])
    if key is not None:
        if any(k == key for k, _ in callbacks):
            return
    callbacks.append((key, callback))


_PIPELINES = "after_commit_pipelines"


def pipeline_on_commit(session: Session, client: Any, commands: Callable[[Any], None],
                       answer: Callable[[Any], None] | None = None,
                       key: str | None = None) -> None:
    """After the commit, send `commands(pipe)` to Redis in the one round trip this transaction
    makes on `client` after its commit: every caller's commands go on one pipeline (no MULTI:
    each command stands alone), in the order they were registered. `answer(replies)` then gets
    this caller's own replies (a command Redis refused replies with its exception); if the round
    trip itself fails, `answer(error)`, and without an `answer` the failure is logged. With a
    `key`, only the first registration under it in this transaction counts. Nothing is sent if
    the transaction rolls back."""
    batches = session.info.setdefault(_PIPELINES, {})
    batch = batches.get(id(client))
    if batch is None:
        batch = batches[id(client)] = []
        on_commit(session, functools.partial(_send_pipeline, client, batch))
    if key is not None and any(k == key for k, _, _ in batch):
        return
    batch.append((key, commands, answer))


def _send_pipeline(client: Any, batch: list) -> None:
    pipe = client.pipeline(transaction=False)
    spans = []
    for _, commands, _ in batch:
        start = len(pipe.command_stack)
        commands(pipe)
        spans.append((start, len(pipe.command_stack)))
    try:
        replies: Any = pipe.execute(raise_on_error=False)
    except Exception as error:  # noqa: BLE001 - each caller decides what a lost round trip means
        replies = error
    finally:
        pipe.reset()
    for (_, _, answer), (start, end) in zip(batch, spans):
        failed = isinstance(replies, Exception)
        try:
            if answer is not None:
                answer(replies if failed else replies[start:end])
            elif failed:
                raise replies
        except Exception:  # like any after-commit callback: logged, the commit stands
            log.exception("after-commit Redis commands %r failed", answer or commands)


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    session.info.pop(_PIPELINES, None)  # (their callback holds them)
    callbacks = session.info.pop(_CALLBACKS, [])
    for _, callback in callbacks:
        try:
            callback()
        except Exception:  # a doorbell that fails must not turn a committed write into a 500
            log.exception("after-commit callback %r failed", callback)


@event.listens_for(Session, "after_rollback")
def _drop_callbacks(session: Session) -> None:
    session.info.pop(_CALLBACKS, None)
    session.info.pop(_PIPELINES, None)

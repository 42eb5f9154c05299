"""One lifecycle type for every state machine: statuses, a table of moves, one audit table.

A lifecycle is data: its statuses are a `StrEnum`, its moves a table (from status, action) → to
status, and creation is a move from `None`. `Lifecycle.step()` is the pure rule (which status an
action leads to, or `invalid_transition`); `Lifecycle.move()` checks a move, applies it to the
object, writes the one audit row shape (`transitions`) in the caller's transaction and returns the
`Moved` record of what happened, for the caller to act on (timestamps, messages, events).

Wishes, claims, donations and disbursements use it; every new state machine should too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Mapping, TypeVar

from sqlalchemy import ForeignKey, Index, Integer, String, bindparam, event, insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.errors import InvalidTransition
from app.extensions import db
from app.types import ID_LENGTH, UTCDateTime, utcnow

S = TypeVar("S", bound=StrEnum)


class Transition(db.Model):
    """Audit row of every lifecycle: who moved which object from what to what, when and why."""

    __tablename__ = "transitions"
    __table_args__ = (Index("ix_transitions_entity", "entity_type", "entity_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity_type: Mapped[str] = mapped_column(String(24))  # the lifecycle's name: wish, claim, ...
    entity_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    from_status: Mapped[str | None] = mapped_column(String(16))  # None: the object was created
    to_status: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# Audit rows of the moves of the current transaction not yet written. They are written with one
# Core INSERT (no ORM object, identity map or RETURNING of ids: nothing reads them back as
# objects) by the transaction's next flush, or at its commit if no flush comes first, so a move's
# row is written in the same transaction as the move, and with the object's own flush when
# there is one. A rollback drops them with the rest of the transaction.
_PENDING = "pending_transitions"
_INSERT = insert(Transition.__table__)
_COLUMNS = ("entity_type", "entity_id", "from_status", "to_status", "action", "actor_id",
            "reason", "at")
# A few rows (a claim writes two) as one INSERT … VALUES (…), (…) built once per row count: an
# executemany of them went through psycopg's pipeline mode (4 % of the gunicorn workers' GIL
# samples in a claim storm). Every row has the keys of _COLUMNS (Lifecycle.move writes them).
_FEW = 4
_INSERT_ROWS = {n: insert(Transition.__table__).values(
    [{c: bindparam(f"{c}_{i}", type_=Transition.__table__.c[c].type) for c in _COLUMNS}
     for i in range(n)]) for n in range(1, _FEW + 1)}


def pending_audit(session) -> list[dict[str, Any]]:
    """The audit rows `session`'s transaction has not written yet (a list the moves append to)."""
    return session.info.setdefault(_PENDING, [])


def write_pending_audit(session: Session) -> None:
    """Write the pending audit rows now (the flush and the commit do it by themselves)."""
    rows = session.info.pop(_PENDING, None)
    if not rows:
        return
    if len(rows) <= _FEW:
        session.connection().execute(_INSERT_ROWS[len(rows)], {
            f"{c}_{i}": row[c] for i, row in enumerate(rows) for c in _COLUMNS})
    else:
        session.connection().execute(_INSERT, rows)


@event.listens_for(Session, "before_flush")
def _audit_at_flush(session: Session, _flush_context, _instances) -> None:
    write_pending_audit(session)


@event.listens_for(Session, "before_commit")
def _audit_at_commit(session: Session) -> None:
    write_pending_audit(session)


@event.listens_for(Session, "after_rollback")
def _drop_audit(session: Session) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True)
class Moved:
    """What a move did: enough for the caller (or an event) to say it to the rest of the house."""

    entity_type: str
    entity_id: str | None
    source: str | None
    target: str
    action: str
    actor_id: str | None
    reason: str | None
    at: datetime

    @property
    def created(self) -> bool:
        return self.source is None


@dataclass(frozen=True)
class Lifecycle(Generic[S]):
    """A state machine as data. `moves` maps (status or None, action) to the status after.

    `refusal` is the Chinese detail of a refused move, formatted with `status` (the current one)
    and `label` (the action's label from `labels`)."""

    name: str
    statuses: type[S]
    moves: Mapping[tuple[S | None, str], S]
    labels: Mapping[str, str] = field(default_factory=dict)
    refusal: str = "当前状态为 {status}，不能{label}"

    def __post_init__(self) -> None:
        for (source, action), target in self.moves.items():
            if source is not None and source not in self.statuses.__members__.values():
                raise ValueError(f"{self.name}: unknown status {source!r} in the moves table")
            if target not in self.statuses.__members__.values():
                raise ValueError(f"{self.name}: unknown status {target!r} in the moves table")

    @property
    def actions(self) -> set[str]:
        return {action for (_, action) in self.moves}

    def target(self, status: str | None, action: str) -> S | None:
        """The status `action` leads to from `status`, or None if the table has no such move."""
        return self.moves.get((status, action))  # a StrEnum member is equal to its string

    def allows(self, status: str | None, action: str) -> bool:
        return self.target(status, action) is not None

    def allowed_actions(self, status: str | None) -> list[str]:
        return [action for (source, action) in self.moves if source == status]

    def refuse(self, status: str | None, action: str) -> InvalidTransition:
        """The `invalid_transition` error for a move the table does not have."""
        label = self.labels.get(action, action)
        return InvalidTransition(self.refusal.format(status=status, label=label),
                                 current_status=status, action=action)

    def step(self, status: str | None, action: str) -> S:
        """The pure rule: the status after `action`, or `invalid_transition` (nothing changes)."""
        target = self.target(status, action)
        if target is None:
            raise self.refuse(status, action)
        return target

    def move(self, obj: Any, action: str, actor_id: str | None, reason: str | None = None, *,
             at: datetime | None = None, session: Session | None = None) -> Moved:
        """Check `action` against the table, set `obj.status`, and write the audit row in the
        caller's transaction (the caller commits; the row goes with its next flush). A new object (status None) is created by the
        move: it is added to the session and flushed for its id."""
        source = obj.status
        target = self.step(source, action)
        now = at or utcnow()
        session = session if session is not None else db.session
        obj.status = target.value
        if source is None:
            session.add(obj)
            if getattr(obj, "id", None) is None:
                session.flush()  # for the id the audit row names
        pending_audit(session).append(
            {"entity_type": self.name, "entity_id": obj.id, "from_status": source,
             "to_status": target.value, "action": action, "actor_id": actor_id,
             "reason": reason, "at": now})
        return Moved(self.name, obj.id, source, target.value, action, actor_id, reason, now)


def history(entity_type: str, entity_id: str, session: Session | None = None) -> list[Transition]:
    """Every audit row of one object, oldest first."""
    session = session if session is not None else db.session
    write_pending_audit(session)
    return list(session.execute(
        db.select(Transition).where(Transition.entity_type == entity_type,
                                    Transition.entity_id == entity_id)
        .order_by(Transition.id)).scalars())

"""Finding-people figures by region prefix: signals, alerts, tasks, outcomes, applications."""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import func, or_, select

from app.cases.models import Alert, Application, Signal, Task


def _where(column, region: str | None, scope: Iterable[str] | None):
    conditions = []
    if region:
        conditions.append(column.startswith(region))
    if scope is not None:
        prefixes = list(scope)
        conditions.append(or_(*(column.startswith(p) for p in prefixes)) if prefixes
                          else column.is_(None))
    return conditions


def case_stats(region: str | None, scope: Iterable[str] | None = None) -> dict[str, Any]:
    """The contract's figures, and two more: `tasks_started` (open tasks a caseworker has in
    hand, counted in `tasks_open` too) and `applications.visiting` (being verified now; every
    application counts in `received`). `scope` (a caseworker's prefixes, None = all) narrows
    them."""
    from app.extensions import db

    scope = None if scope is None else list(scope)
    session = db.session
    signals = session.scalar(select(func.count()).select_from(Signal)
                             .where(*_where(Signal.region_code, region, scope)))
    alerts = session.scalar(select(func.count()).select_from(Alert)
                            .where(*_where(Alert.region_code, region, scope)))
    task_filter = _where(Task.region_code, region, scope)
    open_, started, done, on_time = session.execute(select(
        func.count().filter(Task.status == "open"),
        func.count().filter(Task.status == "open", Task.started_at.is_not(None)),
        func.count().filter(Task.status == "done"),
        func.count().filter(Task.status == "done", Task.completed_at <= Task.due_at),
    ).where(*task_filter)).one()
    outcomes = dict(session.execute(
        select(Task.outcome, func.count()).where(Task.status == "done", *task_filter)
        .group_by(Task.outcome)).all())
    received, visiting, approved, refused = session.execute(select(
        func.count(),
        func.count().filter(Application.status == "visiting"),
        func.count().filter(Application.status == "approved"),
        func.count().filter(Application.status == "refused"),
    ).where(*_where(Application.region_code, region, scope))).one()
    return {"signals": signals, "alerts": alerts, "tasks_open": open_, "tasks_started": started,
            "tasks_done": done,
            "done_on_time_ratio": round(on_time / done, 4) if done else None,
            "outcomes": outcomes,
            "applications": {"received": received, "visiting": visiting, "approved": approved,
                             "refused": refused}}

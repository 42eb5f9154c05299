"""Tasks for caseworkers: making them (due the end of the next working day), listing them in
scope, completing them with an outcome, and escalating the overdue ones once."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.auth.models import User
from app.auth.scope import in_scope
from app.cases.lifecycle import TASK, TaskStatus
from app.cases.models import Task
from app.extensions import db
from app.settings import resources, settings
from app.types import utcnow
from app.workdays import WorkingCalendar, load_extra_years

log = logging.getLogger(__name__)

VISIT_ALERT = "visit_alert"
VERIFY_APPLICATION = "verify_application"
TASK_KINDS = (VISIT_ALERT, VERIFY_APPLICATION)


def working_calendar() -> WorkingCalendar:
    """The mainland China calendar, with the operator's years (WORKING_CALENDAR_FILE) if any."""
    cache = resources()
    calendar = cache.get("cases.working_calendar")
    if calendar is None:
        calendar = WorkingCalendar(load_extra_years(settings().get("WORKING_CALENDAR_FILE")))
        cache["cases.working_calendar"] = calendar
    return calendar


def due_after(moment: datetime) -> datetime:
    """The end of the next working day after `moment`'s local day (UTC)."""
    return working_calendar().end_of_working_days_after(moment, 1)


def open_task(kind: str, region_code: str, person_id: str, *, now: datetime,
              alert_id: str | None = None, application_id: str | None = None,
              beneficiary_id: str | None = None) -> Task:
    """A new open task in the caller's unit of work."""
    task = Task(kind=kind, status=None, region_code=region_code, person_id=person_id,
                alert_id=alert_id, application_id=application_id,
                beneficiary_id=beneficiary_id, due_at=due_after(now), created_at=now)
    TASK.move(task, "create", None, at=now)
    return task


def is_overdue(task: Task, now: datetime | None = None) -> bool:
    return task.status == TaskStatus.OPEN and task.due_at < (now or utcnow())


def escalation_grace() -> timedelta:
    return timedelta(seconds=int(settings().get("TASK_ESCALATION_GRACE_SECONDS", 3600)))


def task_for(actor: User, task_id: str) -> Task:
    """The task if the actor's scope covers its region; 404 otherwise, as if it did not exist."""
    from app.errors import NotFound

    task = db.session.get(Task, task_id)
    if task is None or not in_scope(actor, task.region_code):
        raise NotFound("未找到该任务")
    return task


def overdue_unescalated(now: datetime, limit: int = 500) -> list[Task]:
    return list(db.session.execute(
        select(Task).where(Task.status == TaskStatus.OPEN.value, Task.due_at < now,
                           Task.escalated_at.is_(None))
        .order_by(Task.due_at, Task.id).limit(limit)).scalars())


def summary(task: Task) -> dict[str, Any]:
    return {"id": task.id, "kind": task.kind, "status": task.status,
            "region_code": task.region_code, "due_at": task.due_at}

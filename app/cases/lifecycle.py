"""The lifecycles of alerts, tasks and applications, as data (app.lifecycle.Lifecycle)."""
from __future__ import annotations

from enum import StrEnum

from app.lifecycle import Lifecycle


class AlertStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class ApplicationStatus(StrEnum):
    RECEIVED = "received"
    VISITING = "visiting"
    REVIEWING = "reviewing"
    APPROVED = "approved"
    REFUSED = "refused"


OPEN_APPLICATION_STATUSES = ("received", "visiting", "reviewing")

ALERT = Lifecycle(
    name="alert",
    statuses=AlertStatus,
    moves={(None, "raise"): AlertStatus.OPEN,
           (AlertStatus.OPEN, "close"): AlertStatus.CLOSED},
    labels={"raise": "预警", "close": "关闭"},
    refusal="预警当前状态为 {status}，不能{label}",
)

TASK = Lifecycle(
    name="task",
    statuses=TaskStatus,
    moves={(None, "create"): TaskStatus.OPEN,
           (TaskStatus.OPEN, "complete"): TaskStatus.DONE},
    labels={"create": "创建", "complete": "完成"},
    refusal="任务当前状态为 {status}，不能{label}",
)

A = ApplicationStatus
APPLICATION = Lifecycle(
    name="application",
    statuses=ApplicationStatus,
    moves={(None, "submit"): A.RECEIVED,
           # A caseworker has the verify task in hand (POST /tasks/{id}/start); completing
           # the task goes on from either status.
           (A.RECEIVED, "visit"): A.VISITING,
           (A.RECEIVED, "verify"): A.REVIEWING,    # the verify task done straight away
           (A.VISITING, "verify"): A.REVIEWING,
           (A.REVIEWING, "approve"): A.APPROVED,
           (A.REVIEWING, "refuse"): A.REFUSED},
    labels={"submit": "提交", "visit": "入户核实", "verify": "核实完成", "approve": "批准",
            "refuse": "不予批准"},
    refusal="申请当前状态为 {status}，不能{label}",
)

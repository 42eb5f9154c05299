"""Tasks for caseworkers: making them (due the end of the next working day), listing them in
scope, completing them with an outcome, and escalating the overdue ones once."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from app.auth.models import CASEWORKER, MODERATOR, User
from app.auth.scope import in_scope, scope_prefixes
from app.beneficiaries.models import Beneficiary
from app.beneficiaries.service import record_beneficiary
from app.cases.identity import unseal
from app.cases.lifecycle import ALERT, APPLICATION, TASK, TaskStatus
from app.cases.notices import tell_applicant
from app.cases.models import ASSISTANCE_TYPES, Alert, Application, Person, Signal, Task
from app.divisions import full_name
from app.errors import Conflict, DomainError, NotFound, ValidationFailed
from app.extensions import db
from app.notifications.service import notify_staff
from app.pagination import Page, keyset_page
from app.pii import mask_name
from app.uow import lock, use_case
from app.wishes.models import Wish
from app.settings import resources, settings
from app.types import new_id, utcnow
from app.workdays import CHINA, WorkingCalendar, load_extra_years

log = logging.getLogger(__name__)

VISIT_ALERT = "visit_alert"
VERIFY_APPLICATION = "verify_application"
TASK_KINDS = (VISIT_ALERT, VERIFY_APPLICATION)


def working_calendar() -> WorkingCalendar:
    """The mainland China calendar, with the operator's years (WORKING_CALENDAR_FILE) if any; a
    year neither knows is counted Monday to Friday (see `due_after`)."""
    cache = resources()
    calendar = cache.get("cases.working_calendar")
    if calendar is None:
        calendar = WorkingCalendar(load_extra_years(settings().get("WORKING_CALENDAR_FILE")),
                                   unknown_years_as_weekdays=True)
        cache["cases.working_calendar"] = calendar
    return calendar


def due_after(moment: datetime) -> datetime:
    """The end of the next working day after `moment`'s local day (UTC).

    A year the calendar does not know yet (the package ends at 2026; the operator adds the
    State Council's notice to WORKING_CALENDAR_FILE) is counted Monday to Friday rather than
    refused: the alert, its task and the partner's batch are kept, and the visit is due on the
    next weekday (early if that is a holiday; a make-up Saturday would have made it a day or two
    sooner). Each such deadline is logged as an error, and `flask audit` fails
    (`task_deadlines_on_known_calendar`) while an open task has one, so the operator is told."""
    calendar = working_calendar()
    due = calendar.end_of_working_days_after(moment, 1)
    first = moment.astimezone(CHINA).year
    unknown = [year for year in range(first, due.astimezone(CHINA).year + 1)
               if not calendar.knows(year)]
    if unknown:
        log.error("working calendar lacks %s: a visit due %s was counted Monday to Friday; add "
                  "the State Council's notice to WORKING_CALENDAR_FILE",
                  ", ".join(map(str, unknown)), due.isoformat())
    return due


def open_task(kind: str, region_code: str, person_id: str, *, now: datetime,
              alert_id: str | None = None, application_id: str | None = None,
              beneficiary_id: str | None = None) -> Task:
    """A new open task in the caller's unit of work (its id given now: no flush for it, the
    caller's next flush writes it with the others)."""
    task = Task(id=new_id("tsk"), kind=kind, status=None, region_code=region_code,
                person_id=person_id, alert_id=alert_id, application_id=application_id,
                beneficiary_id=beneficiary_id, due_at=due_after(now), created_at=now)
    TASK.move(task, "create", None, at=now)
    return task


def is_overdue(task: Task, now: datetime | None = None) -> bool:
    return task.status == TaskStatus.OPEN and task.due_at < (now or utcnow())


def overdue_unescalated(now: datetime, limit: int = 500) -> list[Task]:
    return list(db.session.execute(
        select(Task).where(Task.status == TaskStatus.OPEN.value, Task.due_at < now,
                           Task.escalated_at.is_(None))
        .order_by(Task.due_at, Task.id).limit(limit)).scalars())


def summary(task: Task) -> dict[str, Any]:
    return {"id": task.id, "kind": task.kind, "status": task.status,
            "region_code": task.region_code, "due_at": task.due_at}


OUTCOMES = ("enrolled", "already_covered", "wish_opened", "joint_case", "not_eligible",
            "not_found", "declined")


def list_tasks(actor: User, *, status: str, kind: str | None, region: str | None,
               limit: int, cursor: str | None) -> Page:
    """Tasks the actor may see (a caseworker: in scope; moderators and admins: all), soonest
    due first."""
    query = select(Task).where(Task.status == status)
    if kind:
        query = query.where(Task.kind == kind)
    if region:
        query = query.where(Task.region_code.startswith(region))
    prefixes = scope_prefixes(actor)
    if prefixes is not None:
        prefixes = list(prefixes)
        if not prefixes:
            return Page(items=[], next_cursor=None)
        query = query.where(or_(*(Task.region_code.startswith(p) for p in prefixes)))
    return keyset_page(query, [Task.due_at, Task.id], ["asc", "asc"], limit=limit,
                       cursor=cursor, cursor_kind="tasks")


def views(tasks: list[Task], now: datetime | None = None) -> list[dict[str, Any]]:
    """The contract's task items: the subject's name masked, the alert's signals."""
    now = now or utcnow()
    persons = {p.id: p for p in db.session.execute(
        select(Person).where(Person.id.in_({t.person_id for t in tasks}))).scalars()}
    signals: dict[str, list[dict[str, Any]]] = {}
    alert_ids = {t.alert_id for t in tasks if t.alert_id}
    if alert_ids:
        for sig in db.session.execute(select(Signal).where(Signal.alert_id.in_(alert_ids))
                                      .order_by(Signal.observed_at, Signal.id)).scalars():
            signals.setdefault(sig.alert_id, []).append(
                {"kind": sig.kind, "department": sig.department,
                 "observed_at": sig.observed_at, "data": sig.data})
    items = []
    for task in tasks:
        person = persons[task.person_id]
        name = unseal(person.name_enc, "persons", "name", person.id)
        items.append({**summary(task), "overdue": is_overdue(task, now),
                      "subject": {"name": mask_name(name), "region_code": person.region_code},
                      "signals": signals.get(task.alert_id, []) if task.alert_id else [],
                      "outcome": task.outcome, "completed_at": task.completed_at,
                      "started_at": task.started_at, "beneficiary_id": task.beneficiary_id})
    return items


def _task_in_hand(actor: User, task_id: str, closed: str) -> Task:
    """The task, locked, if the actor's scope covers it (404 otherwise, as if it did not
    exist); 409 `task_closed` (detail `closed`) once it is done."""
    task = lock("task", select(Task).where(Task.id == task_id).with_for_update()
                .execution_options(populate_existing=True)).scalar()
    if task is None or not in_scope(actor, task.region_code):
        raise NotFound("未找到该任务")
    if task.status != TaskStatus.OPEN:
        raise Conflict("task_closed", closed)
    return task


@use_case
def start_task(actor: User, task_id: str, now: datetime | None = None) -> Task:
    """A caseworker has the task in hand (is going to visit): records who and when, once; a
    second start answers the task as it is. A verify task's application moves from `received`
    to `visiting` and the applicant is told."""
    now = now or utcnow()
    task = _task_in_hand(actor, task_id, "该任务已完成，无需再开始走访")
    if task.started_at is not None:
        return task
    task.started_at, task.started_by = now, actor.id
    if task.application_id:
        application = lock("application", select(Application).where(
            Application.id == task.application_id).with_for_update()
            .execution_options(populate_existing=True)).scalar_one()
        if application.status == "received":
            APPLICATION.move(application, "visit", actor.id, at=now)
            tell_applicant(application)
    log.info("task %s started by %s", task.id, actor.id)
    return task


@use_case
def complete_task(actor: User, task_id: str, outcome: str, note: str | None,
                  assistance_type: str | None = None, wish_id: str | None = None,
                  beneficiary: dict[str, Any] | None = None,
                  now: datetime | None = None) -> Task:
    """Record a visit's outcome; a task is completed once (409 `task_closed`). `enrolled` sets
    the person's assistance type (and the linked beneficiary's); a person not yet a beneficiary
    is recorded as one from `beneficiary` (alias, birth year, assessment, consents: the rules
    of POST /beneficiaries) and their identity as the task knows it, in this same transaction.
    A verify task moves its application on to review."""
    now = now or utcnow()
    task = _task_in_hand(actor, task_id, "该任务已完成，不能再次提交")
    if outcome not in OUTCOMES:
        raise ValidationFailed({"outcome": [f"须为 {'、'.join(OUTCOMES)} 之一"]}, "处理结果无效")
    if outcome == "enrolled":
        if assistance_type not in ASSISTANCE_TYPES:
            raise ValidationFailed({"assistance_type": ["纳入救助须注明救助类型"]},
                                   "纳入救助须注明救助类型（dibao、tekun、dibao_edge、temporary）")
    elif assistance_type is not None:
        raise ValidationFailed({"assistance_type": ["仅在纳入救助（enrolled）时填写"]},
                               "仅在纳入救助时填写救助类型")
    if beneficiary is not None and outcome != "enrolled":
        raise ValidationFailed({"beneficiary": ["仅在纳入救助（enrolled）时填写"]},
                               "仅在纳入救助时登记受助人（beneficiary）")
    if wish_id is not None:
        if outcome != "wish_opened":
            raise ValidationFailed({"wish_id": ["仅在开通心愿（wish_opened）时填写"]},
                                   "仅在开通心愿时关联心愿")
        if db.session.get(Wish, wish_id) is None:
            raise ValidationFailed({"wish_id": ["心愿不存在"]}, "关联的心愿不存在")
    task.outcome, task.note, task.assistance_type = outcome, note, assistance_type
    task.wish_id = wish_id
    task.completed_at, task.completed_by = now, actor.id
    TASK.move(task, "complete", actor.id, outcome, at=now)
    if task.application_id:
        application = lock("application", select(Application).where(
            Application.id == task.application_id).with_for_update()).scalar_one()
        APPLICATION.move(application, "verify", actor.id, outcome, at=now)
        tell_applicant(application)
    person = lock("person", select(Person).where(Person.id == task.person_id)
                  .with_for_update(key_share=True)
                  .execution_options(populate_existing=True)).scalar_one()
    if outcome == "enrolled":
        application = (db.session.get(Application, task.application_id)
                       if task.application_id else None)
        ben = _enrol(actor, person, application, assistance_type, beneficiary, now)
        person.assistance_type = assistance_type
        ben.assistance_type = assistance_type
        task.beneficiary_id = ben.id
    if task.alert_id:
        alert = db.session.get(Alert, task.alert_id)
        if alert.status == "open":
            ALERT.move(alert, "close", actor.id, outcome, at=now)
            alert.closed_at = now
    log.info("task %s completed by %s: %s", task.id, actor.id, outcome)
    return task


def _linked_beneficiary(person: Person) -> Beneficiary | None:
    """The person's beneficiary, locked: the one linked, or one recorded since under the same
    ID number (POST /beneficiaries does not know persons), which is then linked. An erased
    beneficiary (consent withdrawn) is none: enrolling them again records them anew."""
    def locked(ben_id: str) -> Beneficiary:
        return lock("beneficiary", select(Beneficiary).where(Beneficiary.id == ben_id)
                    .with_for_update().execution_options(populate_existing=True)).scalar_one()

    ben = locked(person.beneficiary_id) if person.beneficiary_id else None
    if ben is None or ben.erased:
        ben_id = db.session.execute(
            select(Beneficiary.id).where(Beneficiary.id_hash == person.id_hash,
                                         Beneficiary.erased.is_(False))
            .order_by(Beneficiary.created_at, Beneficiary.id).limit(1)).scalar()
        ben = locked(ben_id) if ben_id else None
    if ben is None or ben.erased:
        return None
    if person.beneficiary_id != ben.id:
        person.beneficiary_id = ben.id
    return ben


def _enrol(actor: User, person: Person, application: Application | None,
           assistance_type: str | None, beneficiary: dict[str, Any] | None,
           now: datetime) -> Beneficiary:
    """The beneficiary an `enrolled` outcome sets the assistance type of: the person's own, or
    (when they have none) a new one recorded from `beneficiary` with the identity the task
    holds: the name and ID number a partner or the applicant gave, the applicant's phone, the
    birth year from the ID number unless given. Any refusal rolls back the whole completion."""
    ben = _linked_beneficiary(person)
    if ben is not None:
        if beneficiary is not None:
            raise ValidationFailed(
                {"beneficiary": ["该人员已登记为受助人，无需再次登记"]},
                "该人员已登记为受助人，纳入救助时请勿填写 beneficiary")
        return ben
    if beneficiary is None:
        raise ValidationFailed(
            {"beneficiary": ["该人员尚未登记为受助人：须填写化名、困难评估和同意"]},
            "纳入救助的人员尚未登记为受助人，须同时提交 beneficiary（化名、评估、同意）")
    if application is not None:
        table, row_id, source = "applications", application.id, application
        name_enc, region = application.name_enc, application.region_code
        phone = unseal(application.phone_enc, table, "phone", row_id)
    else:
        table, row_id, source = "persons", person.id, person
        name_enc, region, phone = person.name_enc, person.region_code, None
    id_number = unseal(source.id_number_enc, table, "id_number", row_id)
    data = {"real_name": unseal(name_enc, table, "name", row_id) or "",
            "id_number": id_number, "phone": phone, "region_code": region,
            "birth_year": beneficiary.get("birth_year") or int(id_number[6:10]),
            "alias": beneficiary["alias"], "assessment": beneficiary["assessment"],
            "consents": beneficiary["consents"]}
    try:
        ben = record_beneficiary(actor, data, now=now)
    except DomainError as exc:
        if exc.errors:  # name the fields as the caller sent them
            exc.errors = {f"beneficiary.{field}": messages
                          for field, messages in exc.errors.items()}
        raise
    if ben.id_hash != person.id_hash:  # one keyed hash: later signals must find them
        raise RuntimeError(f"beneficiary {ben.id} hashes its ID number unlike person {person.id}")
    db.session.flush()  # the beneficiary row before the links to it
    person.beneficiary_id = ben.id
    log.info("person %s recorded as beneficiary %s on enrolment", person.id, ben.id)
    return ben


def town_caseworkers(region_code: str) -> list[str]:
    """Caseworkers whose scope covers the town of `region_code`, or lies inside it."""
    from app.auth.models import StaffRegion

    town = region_code[:9]
    rows = db.session.execute(
        select(User.id, StaffRegion.region_code).join(StaffRegion, StaffRegion.user_id == User.id)
        .where(User.role == CASEWORKER, User.active.is_(True))).all()
    return sorted({user_id for user_id, prefix in rows
                   if town.startswith(prefix) or prefix.startswith(town)})


def moderators() -> list[str]:
    return list(db.session.execute(select(User.id).where(
        User.role == MODERATOR, User.active.is_(True))).scalars())


@use_case
def escalate_overdue(now: datetime | None = None, limit: int = 500) -> int:
    """Tell the town's caseworkers and the moderators, once, of each open task past its due
    time, and mark it escalated. Returns how many tasks were escalated."""
    now = now or utcnow()
    ids = [t.id for t in overdue_unescalated(now, limit)]
    if not ids:
        return 0
    # Locked in id order, skipping ones another sweeper holds: it escalates those.
    tasks = list(lock("task", select(Task).where(Task.id.in_(sorted(ids)),
                                                 Task.escalated_at.is_(None))
                      .order_by(Task.id).with_for_update(skip_locked=True)).scalars())
    staff = moderators()
    for task in tasks:
        what = "入户走访" if task.kind == VISIT_ALERT else "申请核实"
        notify_staff(town_caseworkers(task.region_code) + staff, "task_overdue",
                     f"{what}任务已超时", f"{full_name(task.region_code)}的{what}任务已过期限，请尽快处理",
                     {"task_id": task.id, "region_code": task.region_code,
                      "due_at": task.due_at.isoformat()}, dedupe_key=f"task_overdue:{task.id}")
        task.escalated_at = now
    log.info("escalated %d overdue tasks", len(tasks))
    return len(tasks)

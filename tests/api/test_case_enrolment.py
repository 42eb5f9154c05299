"""Finding people through the HTTP API, the second wave: an `enrolled` visit records a new
person as a beneficiary with their consents (one transaction, the beneficiaries' own rules), a
caseworker starts a task (an application goes `visiting`), `joint_case` is recorded."""
from __future__ import annotations

from sqlalchemy import func, select

from tests.cases.helpers import (
    SUBJECT_NAME, application_payload, enrol_beneficiary, ingest, item, local, spike_task,
    subject_id,
)
from tests.concurrency import run_together
from tests.factories import OTHER_TOWN, SECRET_ID_NUMBER, TOWN, VILLAGE, id_number

AT = local("2026-11-10 10:00")


def _open_task(client, actor, **query) -> dict:
    res = client.get("/api/v1/tasks", query_string=query, headers=actor.headers)
    assert res.status_code == 200, res.get_json()
    [task] = res.get_json()["items"]
    return task


def _complete(client, actor, task_id: str, **body):
    body = {"note": "已入户走访", **body}
    return client.post(f"/api/v1/tasks/{task_id}/complete", headers=actor.headers, json=body)


def _enrolled(**body):
    return {"outcome": "enrolled", "assistance_type": "dibao", **body}


def _snapshot(app) -> dict:
    """What a completion may write: counted, to show a refused one wrote nothing."""
    from app.beneficiaries.models import Beneficiary, Consent
    from app.cases.models import Alert, Person, Task
    from app.extensions import db
    from app.lifecycle import Transition
    from app.notifications.models import OutboxMessage

    with app.app_context():
        count = lambda model, *where: db.session.scalar(  # noqa: E731
            select(func.count()).select_from(model).where(*where))
        return {"beneficiaries": count(Beneficiary), "consents": count(Consent),
                "transitions": count(Transition), "outbox": count(OutboxMessage),
                "done": count(Task, Task.status == "done"),
                "open_alerts": count(Alert, Alert.status == "open"),
                "assisted": count(Person, Person.assistance_type.is_not(None)),
                "linked": count(Person, Person.beneficiary_id.is_not(None))}


def _reveal(client, actor, ben_id: str) -> dict:
    res = client.get(f"/api/v1/beneficiaries/{ben_id}", headers=actor.headers,
                     query_string={"reveal": "true", "purpose": "核对"})
    assert res.status_code == 200, res.get_json()
    return res.get_json()


# --- enrolled: a new beneficiary with its consents ----------------------------------------------

def test_enrolling_a_new_person_records_them_as_a_beneficiary_with_their_consents(
        app, client, actors):
    from app.beneficiaries.models import Beneficiary
    from app.cases.models import Person
    from app.extensions import db

    caseworker = actors.caseworker([TOWN])
    who = subject_id(60)
    spike_task(app, alert_at=AT, id_no=who)
    task = _open_task(client, caseworker)

    res = _complete(client, caseworker, task["id"], **_enrolled(beneficiary=enrol_beneficiary()))
    assert res.status_code == 200, res.get_json()
    done = res.get_json()
    assert done["outcome"] == "enrolled" and done["beneficiary_id"].startswith("ben_")

    ben = _reveal(client, caseworker, done["beneficiary_id"])
    assert (ben["real_name"], ben["id_number"], ben["phone"]) == (SUBJECT_NAME, who, None)
    assert ben["birth_year"] == 1962  # from the ID number
    assert ben["region_code"] == VILLAGE and ben["alias"] == "阿婆"
    assert ben["assessment"] == {"categories": ["illness"], "level": "orange"}
    assert [(c["kind"], c["given_by"], c["collected_by"]) for c in ben["consents"]] == [
        ("sensitive_data", "self", caseworker.id)]
    with app.app_context():
        row = db.session.get(Beneficiary, done["beneficiary_id"])
        person = db.session.execute(select(Person).where(
            Person.beneficiary_id == row.id)).scalar_one()
        assert row.assistance_type == person.assistance_type == "dibao"
        assert row.id_hash == person.id_hash  # one keyed hash: later signals find them
        assert row.created_by == caseworker.id

    # A later alert for the same person carries the beneficiary.
    later = local("2026-11-20 10:00")
    ingest(app, [item("disability_certified", at=later, id_no=who, grade=1)], now=later)
    again = _open_task(client, caseworker)
    assert again["beneficiary_id"] == row.id

    from app.audit import run_audit
    with app.app_context():
        [check] = [r for r in run_audit().results if r.name == "enrolled_tasks_recorded"]
    assert check.ok and check.summary == "1 enrolled, 1 with their beneficiary", check


def test_enrolling_a_new_person_without_a_beneficiary_is_refused_naming_it(app, client, actors):
    caseworker = actors.caseworker([TOWN])
    spike_task(app, alert_at=AT)
    task = _open_task(client, caseworker)
    before = _snapshot(app)

    res = _complete(client, caseworker, task["id"], **_enrolled())
    assert res.status_code == 422
    problem = res.get_json()
    assert problem["code"] == "validation_error" and "beneficiary" in problem["errors"]
    assert "beneficiary" in problem["detail"] and "受助人" in problem["detail"]
    assert _snapshot(app) == before
    assert _open_task(client, caseworker)["status"] == "open"


def test_a_refused_beneficiary_writes_nothing_at_all(app, client, actors):
    """The completion moved the task, closed the alert and set the assistance type before the
    beneficiary's rules refused: every one of those is rolled back with it."""
    caseworker = actors.caseworker([TOWN])
    spike_task(app, alert_at=AT)
    task = _open_task(client, caseworker)
    before = _snapshot(app)

    named = _complete(client, caseworker, task["id"],
                      **_enrolled(beneficiary=enrol_beneficiary(alias="桂兰阿姨")))
    assert named.status_code == 422 and named.get_json()["code"] == "pii_in_text"
    assert "beneficiary.alias" in named.get_json()["errors"]
    unconsented = _complete(client, caseworker, task["id"], **_enrolled(
        beneficiary=enrol_beneficiary(consents=[{"kind": "publication", "given_by": "self",
                                                 "notice_version": "2026-10"}])))
    assert unconsented.status_code == 422
    assert unconsented.get_json()["code"] == "consent_missing"
    assert "beneficiary.consents" in unconsented.get_json()["errors"]
    absurd = _complete(client, caseworker, task["id"],
                       **_enrolled(beneficiary=enrol_beneficiary(birth_year=1700)))
    assert absurd.status_code == 422

    assert _snapshot(app) == before
    assert _open_task(client, caseworker)["status"] == "open"
    # And the same task still completes once the beneficiary is right.
    ok = _complete(client, caseworker, task["id"], **_enrolled(beneficiary=enrol_beneficiary()))
    assert ok.status_code == 200, ok.get_json()


def test_a_child_needs_the_guardians_consent(app, client, actors):
    caseworker = actors.caseworker([TOWN])
    child = id_number("20180601", "517")
    ingest(app, [item("disability_certified", at=AT, id_no=child, grade=1)], now=AT)
    task = _open_task(client, caseworker)
    before = _snapshot(app)

    res = _complete(client, caseworker, task["id"], **_enrolled(beneficiary=enrol_beneficiary()))
    assert res.status_code == 422 and res.get_json()["code"] == "guardian_consent_required"
    assert _snapshot(app) == before

    guardian = [{"kind": kind, "given_by": "guardian", "relation": "母亲",
                 "notice_version": "2026-10"} for kind in ("sensitive_data", "guardian")]
    res = _complete(client, caseworker, task["id"],
                    **_enrolled(beneficiary=enrol_beneficiary(alias="小宝", consents=guardian)))
    assert res.status_code == 200, res.get_json()
    ben = _reveal(client, caseworker, res.get_json()["beneficiary_id"])
    assert ben["birth_year"] == 2018
    assert {c["kind"] for c in ben["consents"]} == {"sensitive_data", "guardian"}


def test_a_known_beneficiary_is_not_recorded_twice(app, client, actors):
    from app.beneficiaries.models import Beneficiary
    from app.extensions import db

    caseworker = actors.caseworker([TOWN])
    ben = actors.beneficiary(caseworker)  # before any signal: the person is linked at once
    spike_task(app, alert_at=AT, id_no=SECRET_ID_NUMBER)
    task = _open_task(client, caseworker)

    res = _complete(client, caseworker, task["id"], **_enrolled(beneficiary=enrol_beneficiary()))
    assert res.status_code == 422 and "beneficiary" in res.get_json()["errors"]
    assert "已登记为受助人" in res.get_json()["detail"]
    res = _complete(client, caseworker, task["id"], **_enrolled())
    assert res.status_code == 200 and res.get_json()["beneficiary_id"] == ben["id"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Beneficiary)) == 1


def test_a_beneficiary_recorded_after_the_alert_is_found_and_linked(app, client, actors):
    from app.cases.models import Person
    from app.extensions import db

    caseworker = actors.caseworker([TOWN])
    spike_task(app, alert_at=AT, id_no=SECRET_ID_NUMBER)  # the person first, unlinked
    ben = actors.beneficiary(caseworker)  # then POST /beneficiaries, which knows no persons
    task = _open_task(client, caseworker)

    refused = _complete(client, caseworker, task["id"],
                        **_enrolled(beneficiary=enrol_beneficiary()))
    assert refused.status_code == 422
    res = _complete(client, caseworker, task["id"], **_enrolled())
    assert res.status_code == 200 and res.get_json()["beneficiary_id"] == ben["id"]
    with app.app_context():
        person = db.session.execute(select(Person)).scalar_one()
        assert person.beneficiary_id == ben["id"] and person.assistance_type == "dibao"


def test_two_tasks_enrolling_one_person_at_once_record_one_beneficiary(app, client, actors):
    """A visit task and a verify task for the same person, both completed `enrolled` with a
    beneficiary at the same moment: the person's lock orders them, the second finds the first's
    beneficiary and is refused (nothing of it written); one beneficiary each. Three persons,
    for three chances to catch the race."""
    from app.beneficiaries.models import Beneficiary
    from app.extensions import db

    caseworkers = [actors.caseworker([TOWN]) for _ in range(2)]
    for serial in (44, 45, 46):
        who = subject_id(serial)
        spike_task(app, alert_at=AT, id_no=who)
        assert client.post("/api/v1/applications", headers=actors.donor().headers,
                           json=application_payload(who, name=SUBJECT_NAME)).status_code == 201
        visit = _open_task(client, caseworkers[0], kind="visit_alert")
        verify = _open_task(client, caseworkers[0], kind="verify_application")
        before = _snapshot(app)

        calls = [lambda w=w, t=t: _complete(app.test_client(), w, t["id"],
                                            **_enrolled(beneficiary=enrol_beneficiary()))
                 for w, t in zip(caseworkers, (visit, verify))]
        answers = run_together(calls)
        assert sorted(a.status_code for a in answers) == [200, 422]
        [refused] = [a.get_json() for a in answers if a.status_code == 422]
        assert "已登记为受助人" in refused["detail"]
        after = _snapshot(app)
        assert (after["beneficiaries"], after["done"]) == (before["beneficiaries"] + 1,
                                                           before["done"] + 1)
        # The refused one stays open: complete it so the next person's tasks are the open ones.
        [left] = [t for t in (visit, verify) if t["id"] in {
            x["id"] for x in client.get("/api/v1/tasks", headers=caseworkers[0].headers)
            .get_json()["items"]}]
        assert _complete(client, caseworkers[0], left["id"], **_enrolled()).status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Beneficiary)) == 3


def test_a_beneficiary_only_comes_with_enrolled(app, client, actors):
    caseworker = actors.caseworker([TOWN])
    spike_task(app, alert_at=AT)
    task = _open_task(client, caseworker)
    res = _complete(client, caseworker, task["id"], outcome="declined",
                    beneficiary=enrol_beneficiary())
    assert res.status_code == 422 and "beneficiary" in res.get_json()["errors"]


def test_enrolling_an_applicant_takes_the_phone_they_gave(app, client, actors):
    caseworker = actors.caseworker([TOWN])
    donor = actors.donor()
    res = client.post("/api/v1/applications", headers=donor.headers,
                      json=application_payload(subject_id(41)))
    assert res.status_code == 201, res.get_json()
    task = _open_task(client, caseworker, kind="verify_application")

    done = _complete(client, caseworker, task["id"],
                     **_enrolled(beneficiary=enrol_beneficiary(alias="溪头大姐")))
    assert done.status_code == 200, done.get_json()
    ben = _reveal(client, caseworker, done.get_json()["beneficiary_id"])
    assert (ben["real_name"], ben["phone"], ben["id_number"]) == (
        "陈阿妹", "13905951234", subject_id(41))
    mine = client.get("/api/v1/me/applications", headers=donor.headers).get_json()["items"]
    assert mine[0]["status"] == "reviewing"


def test_a_moderator_may_enrol_anywhere(app, client, actors):
    moderator = actors.moderator()
    spike_task(app, alert_at=AT)
    task = _open_task(client, moderator)
    res = _complete(client, moderator, task["id"], **_enrolled(beneficiary=enrol_beneficiary()))
    assert res.status_code == 200, res.get_json()


# --- joint_case: recorded; linking comes with joint cases --------------------------------------

def test_joint_case_is_recorded_and_counted(app, client, actors):
    caseworker = actors.caseworker([TOWN])
    spike_task(app, alert_at=AT)
    task = _open_task(client, caseworker)
    res = _complete(client, caseworker, task["id"], outcome="joint_case",
                    note="需多部门联合救助，待一事一议")
    assert res.status_code == 200 and res.get_json()["outcome"] == "joint_case"
    stats = client.get("/api/v1/cases/stats", headers=actors.moderator().headers).get_json()
    assert stats["outcomes"] == {"joint_case": 1}


# --- start: the task in hand --------------------------------------------------------------------

def test_starting_a_visit_records_who_and_when_once(app, client, actors):
    from app.cases.models import Task
    from app.extensions import db

    caseworker = actors.caseworker([TOWN])
    spike_task(app, alert_at=AT)
    task = _open_task(client, caseworker)
    assert task["started_at"] is None

    res = client.post(f"/api/v1/tasks/{task['id']}/start", headers=caseworker.headers)
    assert res.status_code == 200, res.get_json()
    started = res.get_json()
    assert started["status"] == "open" and started["started_at"]
    again = client.post(f"/api/v1/tasks/{task['id']}/start",
                        headers=actors.caseworker([TOWN]).headers)
    assert again.status_code == 200 and again.get_json()["started_at"] == started["started_at"]
    assert _open_task(client, caseworker)["started_at"] == started["started_at"]
    with app.app_context():
        assert db.session.get(Task, task["id"]).started_by == caseworker.id

    assert _complete(client, caseworker, task["id"], outcome="not_found").status_code == 200
    closed = client.post(f"/api/v1/tasks/{task['id']}/start", headers=caseworker.headers)
    assert closed.status_code == 409 and closed.get_json()["code"] == "task_closed"


def test_only_staff_in_scope_start_a_task(app, client, actors):
    spike_task(app, alert_at=AT)
    task = _open_task(client, actors.moderator())
    path = f"/api/v1/tasks/{task['id']}/start"
    elsewhere = client.post(path, headers=actors.caseworker([OTHER_TOWN]).headers)
    assert elsewhere.status_code == 404
    assert client.post(path, headers=actors.donor().headers).status_code == 403
    assert client.post(path).status_code == 401
    assert client.post("/api/v1/tasks/tsk_nothing/start",
                       headers=actors.admin().headers).status_code == 404
    assert client.post(path, headers=actors.admin().headers).status_code == 200


def _told(app, donor) -> list[str]:
    from app.extensions import db
    from app.notifications.models import OutboxMessage

    with app.app_context():
        return [p["status"] for p in db.session.execute(
            select(OutboxMessage.payload).where(OutboxMessage.user_id == donor.id,
                                                OutboxMessage.topic == "application_status")
            .order_by(OutboxMessage.id)).scalars()]


def test_starting_a_verify_task_moves_the_application_to_visiting(app, client, actors):
    caseworker = actors.caseworker([TOWN])
    donor = actors.donor()
    assert client.post("/api/v1/applications", headers=donor.headers,
                       json=application_payload(subject_id(42))).status_code == 201
    task = _open_task(client, caseworker, kind="verify_application")

    assert client.post(f"/api/v1/tasks/{task['id']}/start",
                       headers=caseworker.headers).status_code == 200
    mine = client.get("/api/v1/me/applications", headers=donor.headers).get_json()["items"]
    assert mine[0]["status"] == "visiting"
    assert _told(app, donor) == ["received", "visiting"]

    assert _complete(client, caseworker, task["id"], outcome="not_eligible").status_code == 200
    mine = client.get("/api/v1/me/applications", headers=donor.headers).get_json()["items"]
    assert mine[0]["status"] == "reviewing"
    assert _told(app, donor) == ["received", "visiting", "reviewing"]


def test_many_starting_one_task_at_once_move_the_application_once(app, client, actors):
    from app.extensions import db
    from app.lifecycle import Transition

    workers = [actors.caseworker([TOWN]) for _ in range(6)]
    donor = actors.donor()
    created = client.post("/api/v1/applications", headers=donor.headers,
                          json=application_payload(subject_id(43))).get_json()
    task = _open_task(client, workers[0], kind="verify_application")

    calls = [lambda w=w: app.test_client().post(f"/api/v1/tasks/{task['id']}/start",
                                                headers=w.headers).get_json()
             for w in workers]
    answers = run_together(calls)
    assert {a["started_at"] for a in answers} == {answers[0]["started_at"]}
    with app.app_context():
        visits = db.session.scalar(select(func.count()).select_from(Transition).where(
            Transition.entity_type == "application", Transition.entity_id == created["id"],
            Transition.action == "visit"))
    assert visits == 1
    assert _told(app, donor) == ["received", "visiting"]


# --- the audit ------------------------------------------------------------------------------------

def _enrol_through_a_visit(app, client, actors):
    """A spike's visit task completed `enrolled` with a new beneficiary: (the task, its id)."""
    caseworker = actors.caseworker([TOWN])
    spike_task(app, alert_at=AT)
    task = _open_task(client, caseworker)
    done = _complete(client, caseworker, task["id"], **_enrolled(beneficiary=enrol_beneficiary()))
    return task, done.get_json()["beneficiary_id"]


def _enrolled_check(report):
    [check] = [r for r in report.results if r.name == "enrolled_tasks_recorded"]
    return check


def test_the_audit_finds_an_enrolled_task_without_its_assistance_type(app, client, actors):
    from app.audit import run_audit
    from app.beneficiaries.models import Beneficiary
    from app.cases.models import Person
    from app.extensions import db

    task, ben_id = _enrol_through_a_visit(app, client, actors)
    with app.app_context():
        assert _enrolled_check(run_audit()).ok
        db.session.execute(db.update(Beneficiary).where(Beneficiary.id == ben_id)
                           .values(assistance_type=None))
        db.session.execute(db.update(Person).values(assistance_type=None))
        db.session.commit()
        report = run_audit()
    assert not report.ok
    assert any("enrolled" in f and task["id"] in f and "assistance type" in f
               for f in report.failures), report.failures
    assert any(ben_id in f for f in report.failures), report.failures


def test_the_audit_finds_an_enrolled_beneficiary_that_signals_cannot_find(app, client, actors):
    from app.audit import run_audit
    from app.beneficiaries.models import Beneficiary
    from app.extensions import db

    _, ben_id = _enrol_through_a_visit(app, client, actors)
    with app.app_context():
        db.session.execute(db.update(Beneficiary).where(Beneficiary.id == ben_id)
                           .values(id_hash="0" * 64))
        db.session.commit()
        report = run_audit()
    assert any(ben_id in f and "hash" in f for f in report.failures), report.failures

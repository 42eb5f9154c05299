"""Finding people through the HTTP API: a spike becomes a visit task due the next working day,
seen only in scope, completed once and counted; applications walk to a decision; rules as data;
overdue tasks escalate once."""
from __future__ import annotations

from tests.cases.helpers import (
    SUBJECT_NAME, application_payload, enrol_beneficiary, ingest, item, local, spike_task,
    subject_id,
)
from tests.factories import OTHER_TOWN, OTHER_VILLAGE, TOWN, VILLAGE


def _tasks(client, actor, **query):
    res = client.get("/api/v1/tasks", query_string=query, headers=actor.headers)
    assert res.status_code == 200, res.get_json()
    return res.get_json()["items"]


def test_a_spike_on_the_eve_of_national_day_is_due_the_end_of_the_first_working_day_after(
        app, client, actors):
    caseworker = actors.caseworker([TOWN])
    spike_task(app, alert_at=local("2026-09-30 15:00"))

    [task] = _tasks(client, caseworker)
    assert task["kind"] == "visit_alert" and task["status"] == "open"
    assert task["due_at"] == "2026-10-08T15:59:59Z"  # 2026-10-08 23:59:59 in Beijing
    assert task["region_code"] == VILLAGE
    assert task["subject"] == {"name": SUBJECT_NAME[0] + "*", "region_code": VILLAGE}
    assert task["overdue"] is True  # the test runs after that date
    assert {s["kind"] for s in task["signals"]} == {"medical_spend"}


def test_a_spike_before_a_make_up_saturday_is_due_that_saturday(app, client, actors):
    caseworker = actors.caseworker([TOWN])
    spike_task(app, alert_at=local("2026-10-09 10:00"))

    [task] = _tasks(client, caseworker)
    assert task["due_at"] == "2026-10-10T15:59:59Z"  # Saturday 2026-10-10, a working day


def test_a_caseworker_of_another_town_never_sees_the_task(app, client, actors):
    theirs = actors.caseworker([OTHER_TOWN])
    mine = actors.caseworker([TOWN])
    spike_task(app, alert_at=local("2026-11-10 10:00"))
    [task] = _tasks(client, mine)

    assert _tasks(client, theirs) == []
    res = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=theirs.headers,
                      json={"outcome": "not_found", "note": "x"})
    assert res.status_code == 404 and res.get_json()["code"] == "not_found"
    assert len(_tasks(client, actors.moderator())) == 1


def test_completion_records_the_outcome_once_and_the_stats_count_it(app, client, actors):
    caseworker = actors.caseworker([TOWN])
    spike_task(app, alert_at=local("2026-11-10 10:00"))
    ingest(app, [item("grid_report", at=local("2026-11-10 09:00"), id_no=subject_id(55),
                      region=OTHER_VILLAGE, note="独居老人")], now=local("2026-11-10 10:00"))
    [task] = _tasks(client, caseworker)

    res = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=caseworker.headers,
                      json={"outcome": "enrolled", "assistance_type": "temporary",
                            "note": "家中老人住院，已办理临时救助",
                            "beneficiary": enrol_beneficiary()})
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["status"] == "done" and res.get_json()["outcome"] == "enrolled"
    again = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=caseworker.headers,
                        json={"outcome": "declined", "note": "再次提交"})
    assert again.status_code == 409 and again.get_json()["code"] == "task_closed"
    assert _tasks(client, caseworker) == []
    assert [t["id"] for t in _tasks(client, caseworker, status="done")] == [task["id"]]

    stats = client.get("/api/v1/cases/stats", query_string={"region": TOWN},
                       headers=actors.moderator().headers).get_json()
    assert stats["signals"] == 13 and stats["alerts"] == 1
    assert stats["tasks_open"] == 0 and stats["tasks_done"] == 1
    assert stats["outcomes"] == {"enrolled": 1}
    assert stats["applications"] == {"received": 0, "visiting": 0, "approved": 0, "refused": 0}
    assert stats["tasks_started"] == 0
    # Done after its due time (the test runs later than 2026-11-11): not on time.
    assert stats["done_on_time_ratio"] == 0.0
    everywhere = client.get("/api/v1/cases/stats", headers=actors.moderator().headers).get_json()
    assert everywhere["signals"] == 14


def test_enrolled_needs_an_assistance_type(app, client, actors):
    caseworker = actors.caseworker([TOWN])
    spike_task(app, alert_at=local("2026-11-10 10:00"))
    [task] = _tasks(client, caseworker)
    res = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=caseworker.headers,
                      json={"outcome": "enrolled", "note": "纳入"})
    assert res.status_code == 422
    assert _tasks(client, caseworker)[0]["status"] == "open"


def test_enrolling_a_known_beneficiary_sets_their_assistance_type(app, client, actors):
    from app.beneficiaries.models import Beneficiary
    from app.extensions import db
    from tests.factories import SECRET_ID_NUMBER

    caseworker = actors.caseworker([TOWN])
    ben = actors.beneficiary(caseworker)
    spike_task(app, alert_at=local("2026-11-10 10:00"), id_no=SECRET_ID_NUMBER)
    [task] = _tasks(client, caseworker)
    res = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=caseworker.headers,
                      json={"outcome": "enrolled", "assistance_type": "dibao", "note": "纳入低保"})
    assert res.status_code == 200, res.get_json()
    with app.app_context():
        assert db.session.get(Beneficiary, ben["id"]).assistance_type == "dibao"


def test_an_application_walks_from_received_to_approved(app, client, actors):
    from sqlalchemy import select

    from app.extensions import db
    from app.notifications.models import OutboxMessage

    donor = actors.donor()
    caseworker = actors.caseworker([TOWN])
    moderator = actors.moderator()
    applicant = subject_id(31)
    res = client.post("/api/v1/applications", json=application_payload(applicant),
                      headers=donor.headers)
    assert res.status_code == 201, res.get_json()
    application = res.get_json()
    assert application["status"] == "received"
    again = client.post("/api/v1/applications", json=application_payload(applicant),
                        headers=actors.donor().headers)
    assert (again.status_code, again.get_json()["code"]) == (409, "application_exists")

    [task] = _tasks(client, caseworker, kind="verify_application")
    assert task["region_code"] == VILLAGE and task["subject"]["name"] == "陈*"
    done = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=caseworker.headers,
                       json={"outcome": "not_eligible", "note": "入户核实完毕，材料齐全"})
    assert done.status_code == 200, done.get_json()
    mine = client.get("/api/v1/me/applications", headers=donor.headers).get_json()["items"]
    assert [a["status"] for a in mine] == ["reviewing"]

    decided = client.post(f"/api/v1/applications/{application['id']}/decision",
                          headers=moderator.headers,
                          json={"decision": "approved", "assistance_type": "dibao"})
    assert decided.status_code == 200, decided.get_json()
    mine = client.get("/api/v1/me/applications", headers=donor.headers).get_json()["items"]
    assert mine[0]["status"] == "approved" and mine[0]["assistance_type"] == "dibao"
    with app.app_context():
        told = db.session.execute(select(OutboxMessage.payload).where(
            OutboxMessage.user_id == donor.id, OutboxMessage.topic == "application_status")
            .order_by(OutboxMessage.id)).scalars().all()
    assert [p["status"] for p in told] == ["received", "reviewing", "approved"]
    stats = client.get("/api/v1/cases/stats", headers=moderator.headers).get_json()
    assert stats["applications"] == {"received": 1, "visiting": 0, "approved": 1, "refused": 0}
    # Decided once: a second decision is refused by the lifecycle.
    twice = client.post(f"/api/v1/applications/{application['id']}/decision",
                        headers=moderator.headers, json={"decision": "refused", "reason": "x"})
    assert twice.status_code == 409


def test_an_application_needs_the_data_check_consent_and_a_valid_id(client, actors):
    donor = actors.donor()
    body = application_payload()
    bad = dict(body, applicant={**body["applicant"], "id_number": body["applicant"][
        "id_number"][:-1] + ("1" if body["applicant"]["id_number"][-1] != "1" else "2")})
    assert client.post("/api/v1/applications", json=bad, headers=donor.headers).status_code == 422
    assert client.post("/api/v1/applications", json=dict(body, consents=[]),
                       headers=donor.headers).status_code == 422


def test_alert_rules_are_data_an_admin_changes_with_an_audit_trail(app, client, actors):
    from app.cases.models import AlertRuleVersion
    from app.extensions import db

    admin, moderator = actors.admin(), actors.moderator()
    current = client.get("/api/v1/alert-rules", headers=moderator.headers).get_json()
    assert current["version"] == 0
    assert current["rules"]["medical_spend"]["self_paid_fen_at_least"] == 2_000_000
    rules = current["rules"]
    rules["grid_report"] = {"alerts": True, "level": "yellow"}
    res = client.put("/api/v1/alert-rules", json={"rules": rules}, headers=admin.headers)
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["version"] == 1 and res.get_json()["changed_by"] == admin.id
    refused = client.put("/api/v1/alert-rules", headers=admin.headers, json={
        "rules": dict(rules, hospitalization={"alerts": True, "level": "purple",
                                              "days_at_least": 15})})
    assert refused.status_code == 422
    with app.app_context():
        [row] = db.session.query(AlertRuleVersion).all()
        assert row.before["grid_report"]["alerts"] is False
        assert row.rules["grid_report"]["alerts"] is True

    # The changed rule is in force: a grid report alone now raises an alert.
    answers = ingest(app, [item("grid_report", at=local("2026-11-10 09:00"), note="独居")],
                     now=local("2026-11-10 10:00"))
    assert answers[0].get("alert_id")


def test_an_overdue_task_is_escalated_once_to_the_town_and_the_moderators(app, client, actors):
    from workers.jobs import escalate_overdue_tasks

    town = actors.caseworker([TOWN])
    village = actors.caseworker([VILLAGE])
    elsewhere = actors.caseworker([OTHER_TOWN])
    moderator = actors.moderator()
    spike_task(app, alert_at=local("2026-11-10 10:00"))
    with app.app_context():
        assert escalate_overdue_tasks() == 1
        assert escalate_overdue_tasks() == 0

    def inbox(actor):
        res = client.get("/api/v1/me/notifications", headers=actor.headers)
        return [n for n in res.get_json()["items"] if n["topic"] == "task_overdue"]

    assert len(inbox(town)) == len(inbox(village)) == len(inbox(moderator)) == 1
    assert inbox(elsewhere) == []


def test_a_task_not_yet_due_is_not_escalated(app, actors):
    from app.cases.tasks import escalate_overdue

    spike_task(app, alert_at=local("2026-11-10 10:00"))
    with app.app_context():
        assert escalate_overdue(now=local("2026-11-11 12:00")) == 0
        assert escalate_overdue(now=local("2026-11-12 00:30")) == 1


def test_tasks_come_soonest_due_first_a_page_at_a_time(app, client, actors):
    caseworker = actors.caseworker([TOWN])
    for day in ("2026-11-12 10:00", "2026-11-10 10:00", "2026-11-11 10:00"):
        at = local(day)
        ingest(app, [item(at=at, id_no=subject_id(), self_paid_fen=2_500_000)], now=at)
    first = client.get("/api/v1/tasks?limit=2", headers=caseworker.headers).get_json()
    second = client.get(f"/api/v1/tasks?limit=2&cursor={first['next_cursor']}",
                        headers=caseworker.headers).get_json()
    dues = [t["due_at"] for t in first["items"] + second["items"]]
    assert dues == ["2026-11-11T15:59:59Z", "2026-11-12T15:59:59Z", "2026-11-13T15:59:59Z"]
    assert second["next_cursor"] is None


def test_a_caseworkers_figures_cover_their_own_region_only(app, client, actors):
    at = local("2026-11-10 10:00")
    ingest(app, [item(at=at, id_no=subject_id(), self_paid_fen=2_500_000),
                 item(at=at, id_no=subject_id(), region=OTHER_VILLAGE, self_paid_fen=2_500_000)],
           now=at)
    mine = client.get("/api/v1/cases/stats", headers=actors.caseworker([TOWN]).headers)
    theirs = client.get("/api/v1/cases/stats", query_string={"region": OTHER_TOWN},
                        headers=actors.caseworker([TOWN]).headers)
    everyone = client.get("/api/v1/cases/stats", headers=actors.moderator().headers)
    assert (mine.get_json()["signals"], mine.get_json()["tasks_open"]) == (1, 1)
    assert theirs.get_json()["signals"] == 0
    assert everyone.get_json()["signals"] == 2


def test_the_escalation_job_is_declared_periodic_on_the_maintenance_queue(app):
    from workers import PERIODIC

    job = next(p for p in PERIODIC if p.func_path == "workers.jobs.escalate_overdue_tasks")
    assert job.queue == "maintenance" and job.every == "CASES_ESCALATION_SECONDS"
    assert app.config["CASES_ESCALATION_SECONDS"] == 600

"""`flask --app wsgi demo seed`: a realistic 泉港区 data set, checked through the real API."""
from __future__ import annotations

import base64
import datetime as dt
import os

import pytest

from app.demo import DEMO_PASSWORD

SEEDED_STATES = ("draft", "pending_review", "open", "rejected", "withdrawn", "claimed",
                 "delivered", "fulfilled")


def _seed_via_cli(app):
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    return result.output


def _login(client, username: str) -> dict:
    res = client.post("/api/v1/auth/staff", json={"username": username,
                                                  "password": DEMO_PASSWORD})
    assert res.status_code == 200, res.get_json()
    return {"Authorization": f"Bearer {res.get_json()['access_token']}"}


def _wishes(client, headers, status: str) -> list[dict]:
    res = client.get(f"/api/v1/staff/wishes?status={status}&limit=100", headers=headers)
    assert res.status_code == 200, res.get_json()
    return res.get_json()["items"]


def test_seed_prints_every_account_with_the_demo_password(app):
    output = _seed_via_cli(app)
    assert DEMO_PASSWORD in output
    for username in ("admin", "mod.chen", "mod.lin", "cw.jieshan", "cw.xitou"):
        assert username in output
    assert "open 7" in output


def test_seeded_wishes_cover_every_state_and_the_feed_shows_only_open_ones(app, client):
    _seed_via_cli(app)
    moderator = _login(client, "mod.chen")
    by_state = {state: _wishes(client, moderator, state) for state in SEEDED_STATES}
    assert all(by_state[state] for state in SEEDED_STATES), \
        {s: len(w) for s, w in by_state.items()}

    feed = client.get("/api/v1/wishes?limit=100").get_json()["items"]
    assert {w["status"] for w in feed} == {"open"}
    assert {w["id"] for w in feed} == {w["id"] for w in by_state["open"]}
    assert {w["level"] for w in feed} == {"red", "orange", "yellow", "blue"}
    assert {w["kind"] for w in feed} == {"goods", "service", "education"}
    for state in ("draft", "pending_review", "rejected", "withdrawn"):
        for wish in by_state[state]:
            assert client.get(f"/api/v1/wishes/{wish['id']}").status_code == 404

    # Claimed, delivered and fulfilled wishes are published (their cards are public), not in the feed.
    for state in ("claimed", "delivered", "fulfilled"):
        card = client.get(f"/api/v1/wishes/{by_state[state][0]['id']}").get_json()
        assert card["status"] == state
    assert client.get(f"/api/v1/wishes/{by_state['claimed'][0]['id']}").get_json()["due_at"]

    # The feed's cards are public cards: cut to the town, no identity.
    card = client.get(f"/api/v1/wishes/{feed[0]['id']}").get_json()
    assert len(card["region_code"]) == 9 and "beneficiary_id" not in card


def test_seeded_transitions_are_audited_with_who_and_why(app, client):
    _seed_via_cli(app)
    moderator = _login(client, "mod.lin")
    withdrawn = _wishes(client, moderator, "withdrawn")[0]
    res = client.get(f"/api/v1/wishes/{withdrawn['id']}/transitions", headers=moderator)
    assert res.status_code == 200
    moves = [(t["action"], t["to_status"]) for t in res.get_json()]
    assert moves == [("create", "draft"), ("submit", "pending_review"), ("approve", "open"),
                     ("withdraw", "withdrawn")]
    assert all(t["actor_id"] for t in res.get_json())
    assert res.get_json()[-1]["reason"]
    rejected = _wishes(client, moderator, "rejected")[0]
    assert rejected["reject_reason"] and rejected["approved_by"] is None


def test_seeded_beneficiaries_span_levels_categories_and_a_child_with_guardian_consent(
        app, client):
    _seed_via_cli(app)
    moderator = _login(client, "mod.chen")
    items = client.get("/api/v1/beneficiaries?limit=100",
                       headers=moderator).get_json()["items"]
    assert {b["level"] for b in items} == {"red", "orange", "yellow", "blue"}
    assert {c for b in items for c in b["categories"]} == {
        "illness", "disability", "education", "elderly", "child", "housing", "livelihood",
        "accident"}
    assert all(b["region_code"].startswith("350505") for b in items)
    assert any(len(b["region_code"]) == 12 for b in items)

    children = []
    for summary in items:
        ben = client.get(f"/api/v1/beneficiaries/{summary['id']}", headers=moderator).get_json()
        if dt.date.today().year - ben["birth_year"] < 14:
            children.append(ben)
    assert len(children) == 1
    consents = children[0]["consents"]
    assert {"guardian", "sensitive_data", "publication"} <= {c["kind"] for c in consents}
    assert all(c["given_by"] == "guardian" and c["relation"] for c in consents)


def test_village_caseworker_sees_only_their_village(app, client):
    _seed_via_cli(app)
    village = _login(client, "cw.xitou")
    items = client.get("/api/v1/beneficiaries?limit=100", headers=village).get_json()["items"]
    assert items and {b["region_code"] for b in items} == {"350505106203"}


def test_second_seed_on_a_non_empty_database_is_refused_and_changes_nothing(app, client):
    _seed_via_cli(app)
    moderator = _login(client, "mod.chen")
    before = {s: len(_wishes(client, moderator, s)) for s in SEEDED_STATES}

    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 1
    assert "数据库不是空的" in result.output
    assert {s: len(_wishes(client, moderator, s)) for s in SEEDED_STATES} == before


def test_seed_is_refused_in_production(app_config, tmp_path):
    from app import create_app
    from app.demo import seed
    from app.errors import DomainError
    from miniprogram_api.problems import status_of
    from app.ledger.keys import keygen

    keygen("wxy.example.cn/ledger", str(tmp_path / "ledger.key"))

    production = create_app({
        **app_config, "APP_ENV": "production", "SECRET_KEY": "s" * 48,
        "DATA_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "WECHAT_APP_ID": "wx-prod", "WECHAT_APP_SECRET": "prod-secret",
        "LEDGER_KEY_FILE": str(tmp_path / "ledger.key"),
        "PASSWORD_HASH_PROFILE": "RFC_9106_LOW_MEMORY"})
    with production.app_context():
        with pytest.raises(DomainError) as refused:
            seed()
    assert status_of(refused.value) == 403 and "APP_ENV=production" in refused.value.detail


def test_the_seed_fills_task_lists_and_figures_for_finding_people(app, client):
    _seed_via_cli(app)
    moderator = _login(client, "mod.chen")
    stats = client.get("/api/v1/cases/stats", headers=moderator).get_json()
    assert stats["signals"] > 700 and stats["alerts"] >= 20
    assert stats["tasks_open"] > 5 and stats["tasks_done"] > 5
    assert len(stats["outcomes"]) >= 4
    assert stats["applications"] == {"received": 4, "visiting": 1, "approved": 1, "refused": 1}
    assert stats["tasks_started"] >= 1 and stats["outcomes"]["enrolled"] >= 1
    jieshan = _login(client, "cw.jieshan")
    # Which half of the visits the seed completes follows the random ids: look at both lists.
    tasks = [t for status in ("open", "done") for t in client.get(
        f"/api/v1/tasks?status={status}&limit=100", headers=jieshan).get_json()["items"]]
    assert tasks and all(t["region_code"].startswith("350505101") for t in tasks)
    # Enrolled visits recorded their beneficiaries; the audit finds every one linked.
    enrolled = [t for t in client.get("/api/v1/tasks?status=done&limit=100",
                                      headers=moderator).get_json()["items"]
                if t["outcome"] == "enrolled"]
    assert enrolled and all(t["beneficiary_id"] for t in enrolled)
    from app.audit import run_audit

    with app.app_context():
        [check] = [r for r in run_audit().results if r.name == "enrolled_tasks_recorded"]
    assert check.ok, check.failures

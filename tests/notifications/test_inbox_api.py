"""GET /me/notifications and POST /me/notifications/{id}/read: the staff inbox."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest


def _inbox(client, actor, **query):
    res = client.get("/api/v1/me/notifications", headers=actor.headers, query_string=query)
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def _read(client, actor, notification_id):
    return client.post(f"/api/v1/me/notifications/{notification_id}/read", headers=actor.headers)


@pytest.fixture
def notify(app):
    """Put `n` messages in a staff member's inbox, oldest first, the way the domain does."""
    from app.extensions import db
    from app.notifications.service import notify_staff

    def put(actor, n=1, prefix="msg"):
        with app.app_context():
            for i in range(n):
                notify_staff([actor.id], "proof_submitted", f"送达凭证待确认 {i}", "请核实。",
                             {"n": i}, f"{prefix}:{i}")
                db.session.commit()
    return put


def test_claim_expiry_puts_a_message_in_the_wish_authors_inbox(app, client, scene, actors):
    from app.claims.service import sweep_due_claims

    other_caseworker = actors.caseworker()
    wish = scene.wish()
    claim_id = scene.claim(actors.donor(), wish["id"])
    assert _inbox(client, scene.caseworker)["items"] == []

    with app.app_context():
        assert sweep_due_claims(now=datetime.now(timezone.utc) + timedelta(days=3)) == 1

    [item] = _inbox(client, scene.caseworker)["items"]
    assert item["topic"] == "claim_expired" and item["title"] == "认领超时"
    assert wish["title"] in item["body"]
    assert item["data"] == {"claim_id": claim_id, "wish_id": wish["id"]}
    assert item["read_at"] is None and item["id"].startswith("ntf_")
    assert _inbox(client, other_caseworker)["items"] == []
    assert _inbox(client, scene.moderator)["items"] == []


def test_inbox_is_newest_first_in_keyset_pages(client, actors, notify):
    moderator = actors.moderator()
    notify(moderator, 5)

    seen, cursor = [], None
    for expected in (2, 2, 1):
        page = _inbox(client, moderator, limit=2, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) == expected
        seen += [item["data"]["n"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert cursor is None
    assert seen == [4, 3, 2, 1, 0]


def test_marking_read_once_keeps_the_first_time_and_unread_filter_hides_it(client, actors,
                                                                            notify):
    caseworker = actors.caseworker()
    notify(caseworker, 3)
    newest, middle, oldest = _inbox(client, caseworker)["items"]

    res = _read(client, caseworker, middle["id"])
    assert res.status_code == 200
    read_at = res.get_json()["read_at"]
    assert read_at is not None
    assert _read(client, caseworker, middle["id"]).get_json()["read_at"] == read_at

    unread = _inbox(client, caseworker, unread="true")["items"]
    assert [i["id"] for i in unread] == [newest["id"], oldest["id"]]
    assert len(_inbox(client, caseworker)["items"]) == 3


def test_cursor_of_the_unread_list_is_refused_by_the_full_list(client, actors, notify):
    admin = actors.admin()
    notify(admin, 3)
    cursor = _inbox(client, admin, unread="true", limit=1)["next_cursor"]

    res = client.get("/api/v1/me/notifications", headers=admin.headers,
                     query_string={"cursor": cursor})
    assert res.status_code == 422 and res.get_json()["code"] == "invalid_cursor"


def test_someone_elses_notification_is_404_like_a_missing_one(client, actors, notify):
    owner, other, moderator = actors.caseworker(), actors.caseworker(), actors.moderator()
    notify(owner)
    [item] = _inbox(client, owner)["items"]

    for intruder in (other, moderator):
        res = _read(client, intruder, item["id"])
        ghost = _read(client, intruder, item["id"][:-4] + "zzzz")
        assert res.status_code == 404 and res.get_json()["code"] == "not_found"
        assert res.get_json() == ghost.get_json()
    assert _inbox(client, owner)["items"][0]["read_at"] is None


def test_donors_have_no_inbox(client, actors):
    res = client.get("/api/v1/me/notifications", headers=actors.donor().headers)
    assert res.status_code == 403 and res.get_json()["code"] == "forbidden"

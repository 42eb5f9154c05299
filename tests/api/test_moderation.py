"""The review queue (GET /moderation/wishes): pending wishes only, oldest submission first,
keyset-paginated, for moderators only."""
from __future__ import annotations

from tests.factories import SECRET_NAME, SECRET_PHONE

API = "/api/v1"


def walk(client, actor, limit: int) -> list[list[str]]:
    """Every page of the queue, as lists of wish ids."""
    pages, cursor = [], None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        res = client.get(f"{API}/moderation/wishes{query}", headers=actor.headers)
        assert res.status_code == 200, res.get_json()
        body = res.get_json()
        pages.append([w["id"] for w in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_queue_lists_pending_wishes_oldest_first_across_pages(client, actors):
    caseworker, moderator = actors.caseworker(), actors.moderator()
    submitted = [actors.submitted_wish(caseworker, title=f"心愿{i}") for i in range(5)]
    actors.draft_wish(caseworker)                                    # not submitted
    decided = actors.open_wish(caseworker, moderator)                # already approved

    pages = walk(client, moderator, limit=2)
    assert pages == [[submitted[0]["id"], submitted[1]["id"]],
                     [submitted[2]["id"], submitted[3]["id"]],
                     [submitted[4]["id"]]]
    assert decided["id"] not in sum(pages, [])


def test_resubmitted_wish_joins_the_back_of_the_queue(client, actors):
    caseworker, moderator = actors.caseworker(), actors.moderator()
    first = actors.submitted_wish(caseworker)
    second = actors.submitted_wish(caseworker)
    client.post(f"{API}/wishes/{first['id']}/reject", json={"reason": "请补充说明"},
                headers=moderator.headers)
    client.patch(f"{API}/wishes/{first['id']}", json={"title": "一台新轮椅"},
                 headers=caseworker.headers)
    client.post(f"{API}/wishes/{first['id']}/submit", headers=caseworker.headers)
    assert walk(client, moderator, limit=20) == [[second["id"], first["id"]]]


def test_queue_page_stays_put_when_a_wish_is_decided_mid_walk(client, actors):
    caseworker, moderator = actors.caseworker(), actors.moderator()
    wishes = [actors.submitted_wish(caseworker, title=f"心愿{i}") for i in range(4)]
    res = client.get(f"{API}/moderation/wishes?limit=2", headers=moderator.headers).get_json()
    assert [w["id"] for w in res["items"]] == [wishes[0]["id"], wishes[1]["id"]]
    client.post(f"{API}/wishes/{wishes[0]['id']}/approve", headers=moderator.headers)
    rest = client.get(f"{API}/moderation/wishes?limit=2&cursor={res['next_cursor']}",
                      headers=moderator.headers).get_json()
    assert [w["id"] for w in rest["items"]] == [wishes[2]["id"], wishes[3]["id"]]


def test_queue_items_carry_no_identity(client, actors):
    caseworker, moderator = actors.caseworker(), actors.moderator()
    actors.submitted_wish(caseworker)
    res = client.get(f"{API}/moderation/wishes", headers=moderator.headers)
    text = res.get_data(as_text=True)
    assert SECRET_NAME not in text and SECRET_PHONE not in text
    assert res.headers["Cache-Control"] == "no-store"


def test_queue_is_for_moderators_only(client, actors):
    caseworker = actors.caseworker()
    actors.submitted_wish(caseworker)
    assert client.get(f"{API}/moderation/wishes").status_code == 401
    for actor in (caseworker, actors.donor(), actors.admin()):
        res = client.get(f"{API}/moderation/wishes", headers=actor.headers)
        assert res.status_code == 403
        assert res.get_json()["code"] == "forbidden"


def test_queue_refuses_forged_cursor_and_oversized_limit(client, actors):
    moderator = actors.moderator()
    res = client.get(f"{API}/moderation/wishes?cursor=eyJrIjoiZmVlZCJ9.forged",
                     headers=moderator.headers)
    assert res.status_code == 422 and res.get_json()["code"] == "invalid_cursor"
    res = client.get(f"{API}/moderation/wishes?limit=101", headers=moderator.headers)
    assert res.status_code == 422 and "limit" in res.get_json()["errors"]

"""The public feed GET /wishes: only open, visible wishes; filters; both sorts; keyset pages that
hold still while wishes are published; ETags; a cache that never serves a wish that left `open`;
and the partial index the default query walks."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.factories import OTHER_TOWN, OTHER_VILLAGE, TOWN, VILLAGE

API = "/api/v1"
SECOND_VILLAGE = "350505101202"


@pytest.fixture
def people(actors):
    return actors.caseworker([TOWN, OTHER_TOWN]), actors.moderator()


def publish(actors, people, *, level="red", categories=("elderly",), region=VILLAGE,
            kind="goods", title="一台轮椅") -> str:
    caseworker, moderator = people
    ben = actors.beneficiary(caseworker, region_code=region,
                             assessment={"categories": list(categories), "level": level})
    return actors.open_wish(caseworker, moderator, beneficiary_id=ben["id"], kind=kind,
                            title=title)["id"]


def feed_ids(client, query: str = "") -> list[str]:
    res = client.get(f"{API}/wishes{query}")
    assert res.status_code == 200, res.get_json()
    return [w["id"] for w in res.get_json()["items"]]


def walk(client, query: str, limit: int, between_pages=None) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        sep = "&" if query else "?"
        url = f"{API}/wishes{query}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url).get_json()
        pages.append([w["id"] for w in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        if between_pages:
            between_pages(len(pages))


def test_feed_shows_only_open_visible_wishes(client, actors, people):
    caseworker, moderator = people
    opened = publish(actors, people)
    actors.draft_wish(caseworker)
    actors.submitted_wish(caseworker)
    rejected = actors.submitted_wish(caseworker)
    client.post(f"{API}/wishes/{rejected['id']}/reject", json={"reason": "资料不全"},
                headers=moderator.headers)
    withdrawn = publish(actors, people)
    client.post(f"{API}/wishes/{withdrawn}/withdraw", headers=moderator.headers)
    hidden_ben = actors.beneficiary(caseworker)
    hidden = actors.open_wish(caseworker, moderator, beneficiary_id=hidden_ben["id"])
    client.post(f"{API}/beneficiaries/{hidden_ben['id']}/withdraw-consent",
                headers=caseworker.headers)
    assert hidden["id"] not in feed_ids(client)
    assert feed_ids(client) == [opened]


def test_filters_by_kind_level_category_and_region_prefix(client, actors, people):
    a = publish(actors, people, level="red", categories=("illness",), kind="goods")
    b = publish(actors, people, level="orange", categories=("education", "child"),
                kind="education", region=SECOND_VILLAGE)
    c = publish(actors, people, level="blue", categories=("housing",), kind="service",
                region=OTHER_VILLAGE)
    everything = {a, b, c}
    assert set(feed_ids(client)) == everything
    assert feed_ids(client, "?kind=goods") == [a]
    assert feed_ids(client, "?kind=service") == [c]
    assert feed_ids(client, "?level=orange") == [b]
    assert feed_ids(client, "?level=yellow") == []
    assert feed_ids(client, "?category=child") == [b]
    assert feed_ids(client, "?category=illness") == [a]
    assert feed_ids(client, "?category=accident") == []
    assert set(feed_ids(client, "?region=350505")) == everything
    assert set(feed_ids(client, f"?region={TOWN}")) == {a, b}
    assert feed_ids(client, f"?region={OTHER_TOWN}") == [c]
    assert feed_ids(client, f"?region={VILLAGE}") == [a]
    assert feed_ids(client, f"?region={SECOND_VILLAGE}") == [b]
    assert feed_ids(client, "?region=350583") == []
    assert feed_ids(client, f"?region={TOWN}&kind=education&level=orange&category=education") == [b]


@pytest.mark.parametrize("query", ["?region=3505051", "?region=35050510120", "?region=abcdef",
                                   "?kind=money", "?level=purple", "?category=pets",
                                   "?sort=random", "?limit=101", "?limit=0", "?cursor=forged"])
def test_bad_feed_parameters_are_422(client, query):
    res = client.get(f"{API}/wishes{query}")
    assert res.status_code == 422, query
    assert res.headers["Content-Type"].startswith("application/problem+json")


def test_urgency_sort_puts_red_first_then_oldest_published(client, actors, people):
    # published in this order, so within a level the earlier one is older
    blue = publish(actors, people, level="blue")
    red_old = publish(actors, people, level="red")
    yellow = publish(actors, people, level="yellow")
    orange = publish(actors, people, level="orange")
    red_new = publish(actors, people, level="red")
    expected = [red_old, red_new, orange, yellow, blue]
    assert feed_ids(client) == expected
    assert feed_ids(client, "?sort=urgency") == expected
    levels = [w["level"] for w in client.get(f"{API}/wishes").get_json()["items"]]
    assert levels == ["red", "red", "orange", "yellow", "blue"]


def test_newest_sort_puts_latest_published_first(client, actors, people):
    ids = [publish(actors, people, level=level) for level in ("red", "blue", "orange")]
    assert feed_ids(client, "?sort=newest") == list(reversed(ids))
    items = client.get(f"{API}/wishes?sort=newest").get_json()["items"]
    assert [w["published_at"] for w in items] == sorted((w["published_at"] for w in items),
                                                        reverse=True)


@pytest.mark.parametrize("sort", ["urgency", "newest"])
def test_pages_of_two_walk_every_wish_exactly_once(client, actors, people, sort):
    levels = ["yellow", "red", "blue", "red", "orange", "yellow", "red"]
    ids = [publish(actors, people, level=level) for level in levels]
    pages = walk(client, f"?sort={sort}", limit=2)
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    flat = sum(pages, [])
    assert sorted(flat) == sorted(ids)
    assert flat == feed_ids(client, f"?sort={sort}&limit=100")


@pytest.mark.parametrize("sort", ["urgency", "newest"])
def test_walk_stays_stable_while_new_wishes_are_published(client, actors, people, sort):
    original = [publish(actors, people, level=level)
                for level in ("orange", "red", "blue", "red", "yellow", "orange")]
    expected_order = feed_ids(client, f"?sort={sort}")
    added = []

    def publish_more(pages_seen):
        if pages_seen in (1, 2):
            added.append(publish(actors, people, level="red"))
            added.append(publish(actors, people, level="blue"))

    flat = sum(walk(client, f"?sort={sort}", limit=2, between_pages=publish_more), [])
    assert len(flat) == len(set(flat)), "a wish was shown twice"
    assert [i for i in flat if i in original] == expected_order, "an original wish was lost"
    assert set(flat) - set(original) <= set(added)


def test_etag_revalidation_gives_304_until_the_feed_changes(client, actors, people):
    publish(actors, people)
    first = client.get(f"{API}/wishes")
    etag = first.headers["ETag"]
    assert etag and "public" in first.headers["Cache-Control"]
    again = client.get(f"{API}/wishes", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    publish(actors, people, level="orange")
    changed = client.get(f"{API}/wishes", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert len(changed.get_json()["items"]) == 2


def test_withdrawn_wish_leaves_an_already_cached_page_at_once(client, actors, people):
    _, moderator = people
    stays, leaves = publish(actors, people), publish(actors, people)
    assert feed_ids(client) == [stays, leaves]
    assert feed_ids(client, "?sort=newest") == [leaves, stays]
    assert client.get(f"{API}/wishes?limit=1").get_json()["next_cursor"] is not None
    res = client.post(f"{API}/wishes/{leaves}/withdraw", headers=moderator.headers)
    assert res.status_code == 200
    assert feed_ids(client) == [stays]
    assert feed_ids(client, "?sort=newest") == [stays]
    assert client.get(f"{API}/wishes?limit=1").get_json()["next_cursor"] is None
    assert client.get(f"{API}/wishes/{leaves}").status_code == 404


def test_state_change_made_in_the_domain_leaves_a_cached_page(app, client, actors, people):
    from app.extensions import db
    from app.wishes.lifecycle import transition
    from app.wishes.models import Wish

    stays, leaves = publish(actors, people), publish(actors, people)
    assert feed_ids(client) == [stays, leaves]  # cached now
    assert feed_ids(client) == [stays, leaves]  # and served from the cache
    with app.app_context():
        transition(db.session.get(Wish, leaves), "claim", None)
        db.session.commit()
    assert feed_ids(client) == [stays]
    assert client.get(f"{API}/wishes/{leaves}").get_json()["status"] == "claimed"


def test_newly_approved_wish_appears_on_a_cached_page(client, actors, people):
    caseworker, moderator = people
    first = publish(actors, people)
    assert feed_ids(client) == [first]
    pending = actors.submitted_wish(caseworker)
    client.post(f"{API}/wishes/{pending['id']}/approve", headers=moderator.headers)
    assert feed_ids(client) == [first, pending["id"]]


def test_default_feed_query_uses_the_partial_urgency_index(app, client, actors, people,
                                                           needs_postgres):
    from app.extensions import db

    for level in ("red", "blue", "orange"):
        publish(actors, people, level=level)
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM wishes" in statement:
            statements.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        assert client.get(f"{API}/wishes").status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert len(statements) == 1
    statement, parameters = statements[0]
    with app.app_context(), db.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(
            "EXPLAIN " + statement, parameters))
    assert "ix_wishes_feed_urgency" in plan, plan
    assert "Sort" not in plan.split("ix_wishes_feed_urgency")[0], plan


def _restart_redis(app) -> None:
    """Redis restarted without persistence: every key it held is gone."""
    from app.redis_conn import get_redis
    with app.app_context():
        get_redis().flushdb()


def test_wish_withdrawn_after_a_redis_restart_leaves_the_cached_feed(app, client, actors, people):
    _, moderator = people
    wish = publish(actors, people)
    assert feed_ids(client) == [wish]  # cached
    _restart_redis(app)
    res = client.post(f"{API}/wishes/{wish}/withdraw", headers=moderator.headers)
    assert res.status_code == 200
    assert feed_ids(client) == []


def test_wish_withdrawn_after_a_redis_restart_loses_its_cached_card(app, client, actors, people):
    _, moderator = people
    wish = publish(actors, people)
    assert client.get(f"{API}/wishes/{wish}").status_code == 200  # cached
    _restart_redis(app)
    res = client.post(f"{API}/wishes/{wish}/withdraw", headers=moderator.headers)
    assert res.status_code == 200
    assert client.get(f"{API}/wishes/{wish}").status_code == 404


def test_card_viewed_before_a_change_is_not_served_after_a_redis_restart(app, client, actors,
                                                                         people):
    _, moderator = people
    wish = publish(actors, people)
    _restart_redis(app)  # the card's version number is unset when it is first viewed
    assert client.get(f"{API}/wishes/{wish}").status_code == 200  # cached
    res = client.post(f"{API}/wishes/{wish}/withdraw", headers=moderator.headers)
    assert res.status_code == 200
    assert client.get(f"{API}/wishes/{wish}").status_code == 404
    _restart_redis(app)
    assert client.get(f"{API}/wishes/{wish}").status_code == 404


def test_feed_bytes_are_the_schema_dump_of_the_wish_rows(app, client, actors, people):
    """A page is assembled from each card's JSON (miniprogram_api.wishes._item_json), read from
    the card's columns: its bytes are what dumping the ORM rows with the page schema gives."""
    from flask import json

    from app.extensions import db
    from app.wishes.models import Wish
    from miniprogram_api.wishes import FeedPage

    for level, kind, categories in (("red", "goods", ("elderly", "illness")),
                                    ("blue", "service", ("housing",)), ("orange", "education", ("child",))):
        publish(actors, people, level=level, kind=kind, categories=categories, title="书包和文具")
    for query in ("?limit=2", "?sort=newest", "?kind=service", "?category=child&limit=1"):
        for _ in range(2):  # rendered, then from this process's cards (the page cache emptied)
            with app.app_context():
                from app.wishes import feed_cache
                feed_cache._pages.clear()
            res = client.get(f"{API}/wishes{query}")
            body = res.get_json()
            with app.app_context():
                rows = [db.session.get(Wish, item["id"]) for item in body["items"]]
                expected = json.dumps(FeedPage().dump(
                    {"items": rows, "next_cursor": body["next_cursor"]}),
                    ensure_ascii=False).encode()
            assert res.get_data() == expected


def test_a_card_shown_on_a_page_before_its_beneficiary_changed_is_not_reused(app, client, actors,
                                                                             people):
    """Each card's JSON is remembered under the card's own values: a changed alias is another
    card, so a page rendered after the change shows it (no version number involved)."""
    from app.beneficiaries.models import Beneficiary
    from app.extensions import db
    from app.wishes import feed_cache
    from app.wishes.models import Wish

    wish = publish(actors, people)
    assert client.get(f"{API}/wishes").get_json()["items"][0]["alias"] == "林阿婆"
    with app.app_context():
        ben = db.session.get(Beneficiary, db.session.get(Wish, wish).beneficiary_id)
        ben.alias = "阿婆"
        db.session.commit()
        feed_cache._pages.clear()
    assert client.get(f"{API}/wishes").get_json()["items"][0]["alias"] == "阿婆"

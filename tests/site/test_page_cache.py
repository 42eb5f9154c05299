"""The wall, a wish's page and the ledger are kept per process (public_site.page_cache): a page read
again costs no database query, yet every change reaches the very next read, whichever process
made it; with Redis unreachable the pages come from the database every time."""
from __future__ import annotations

import contextlib
import re

import redis as redis_lib
from sqlalchemy import event

API = "/api/v1"


@contextlib.contextmanager
def counted_queries(app):
    """The SQL statements the app sends while the block runs."""
    from app.extensions import db

    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def page(client, path: str) -> str:
    res = client.get(path)
    assert res.status_code == 200, (path, res.status_code)
    return res.get_data(as_text=True)


def ledger_indexes(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li id="(\d+)" data-ledger-entry', html)]


def test_a_page_read_again_is_served_without_a_database_query(app, client, site):
    paths = ["/", "/?town=350505106", f"/w/{site.fulfilled_ids[0]}",
             f"/w/{site.open_ids['red']}", "/ledger"]
    for path in paths:  # (a wish read for the first time is given its version, then kept)
        page(client, path)
    first = {path: page(client, path) for path in paths}
    with counted_queries(app) as queries:
        again = {path: page(client, path) for path in paths}
    assert queries == []
    assert again == first


def test_wall_and_wish_page_show_a_claim_at_once_though_both_were_cached(
        client, site, actors):
    wish_id = site.open_ids["orange"]
    page(client, "/")
    assert f'href="/w/{wish_id}"' in page(client, "/")
    assert "待认领" in page(client, f"/w/{wish_id}")

    actors.claim(actors.donor(), wish_id)

    assert f'href="/w/{wish_id}"' not in page(client, "/")
    html = page(client, f"/w/{wish_id}")
    assert "已认领" in html and "待认领" not in html


def test_a_wish_hidden_by_consent_withdrawal_is_gone_at_once_from_its_cached_page(
        client, site, actors):
    from tests.factories import VILLAGE

    caseworker, moderator = actors.caseworker(), actors.moderator()
    ben = actors.beneficiary(caseworker, region_code=VILLAGE)
    wish_id = actors.open_wish(caseworker, moderator, beneficiary_id=ben["id"])["id"]
    page(client, f"/w/{wish_id}")
    page(client, f"/w/{wish_id}")
    assert f'href="/w/{wish_id}"' in page(client, "/")

    res = client.post(f"{API}/beneficiaries/{ben['id']}/withdraw-consent",
                      headers=caseworker.headers)
    assert res.status_code == 200, res.get_json()

    assert client.get(f"/w/{wish_id}").status_code == 404
    assert f'href="/w/{wish_id}"' not in page(client, "/")


def test_ledger_page_shows_a_new_entry_at_once_though_it_was_cached(client, site, actors):
    before = ledger_indexes(page(client, "/ledger"))
    assert ledger_indexes(page(client, "/ledger")) == before
    caseworker, moderator = actors.caseworker(), actors.moderator()
    wish_id = actors.open_wish(caseworker, moderator)["id"]

    actors.fulfil(actors.donor(), caseworker, wish_id)

    html = page(client, "/ledger")
    assert ledger_indexes(html)[0] == before[0] + 1
    assert f'href="/w/{wish_id}"' in html
    assert "data-ledger-entry" in page(client, f"/w/{wish_id}")


def test_pages_come_from_the_database_while_redis_is_unreachable(app, client, site, actors):
    wish_id = site.open_ids["yellow"]
    page(client, "/")
    page(client, f"/w/{wish_id}")
    working = app.extensions["redis"]
    app.extensions["redis"] = redis_lib.Redis(host="127.0.0.1", port=1, socket_timeout=0.2,
                                              socket_connect_timeout=0.2)
    try:
        from app.extensions import db
        from app.wishes.models import Wish

        with app.app_context():
            db.session.get(Wish, wish_id).title = "没有缓存也要新"
            db.session.commit()  # the version bump fails and is logged; the write stands
        assert "没有缓存也要新" in page(client, f"/w/{wish_id}")
        assert "没有缓存也要新" in page(client, "/")
    finally:
        app.extensions["redis"] = working


def test_a_change_made_by_another_process_reaches_a_cached_page_within_the_recheck_time(
        app, client, site, monkeypatch):
    """Another process (a worker, another gunicorn worker) changes the row and bumps the card
    version in Redis; this process has no write of its own to tell it, so it sees the change
    once the number it read is older than RECHECK_SECONDS."""
    import time

    import sqlalchemy as sa

    from app.extensions import db
    from app.redis_conn import get_redis
    from app.wishes import feed_cache
    from public_site import page_cache

    monkeypatch.setattr(page_cache, "RECHECK_SECONDS", 0.3)
    wish_id = site.open_ids["blue"]
    page(client, f"/w/{wish_id}")
    assert "另一个进程改的标题" not in page(client, f"/w/{wish_id}")
    with app.app_context():
        with db.engine.begin() as conn:  # not this app's session: no hook of this process runs
            conn.execute(sa.text("UPDATE wishes SET title = '另一个进程改的标题' WHERE id = :id"),
                         {"id": wish_id})
        get_redis().incr(feed_cache.CARD_VERSION_KEY.format(wish_id))

    time.sleep(0.35)
    assert "另一个进程改的标题" in page(client, f"/w/{wish_id}")

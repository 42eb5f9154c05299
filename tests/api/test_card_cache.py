"""The public wish card GET /wishes/{id} is cached per process (app.wishes.feed_cache): every change
to a wish, or to the public part of its beneficiary, reaches the very next read, whichever code path
made it; staff still get the full record; and with Redis unreachable the cache is bypassed."""
from __future__ import annotations

import pytest
import redis as redis_lib

from tests.factories import VILLAGE

API = "/api/v1"


@pytest.fixture
def people(actors):
    return actors.caseworker(), actors.moderator()


def card(client, wish_id: str, headers: dict | None = None):
    return client.get(f"{API}/wishes/{wish_id}", headers=headers or {})


def cached_card(client, wish_id: str) -> dict:
    """Read the card twice: the first read renders and stores it, the second is served from it."""
    first, second = card(client, wish_id), card(client, wish_id)
    assert first.status_code == second.status_code == 200, first.get_json()
    assert first.get_data() == second.get_data()
    return second.get_json()


def test_withdrawn_wish_card_is_404_at_once_though_it_was_cached(client, actors, people):
    caseworker, moderator = people
    wish = actors.open_wish(caseworker, moderator)
    assert cached_card(client, wish["id"])["status"] == "open"
    res = client.post(f"{API}/wishes/{wish['id']}/withdraw", headers=moderator.headers)
    assert res.status_code == 200
    assert card(client, wish["id"]).status_code == 404
    assert card(client, wish["id"], actors.donor().headers).status_code == 404


def test_claim_made_in_the_domain_shows_on_a_cached_card_at_once(app, client, actors, people):
    from app.extensions import db
    from app.types import utcnow
    from app.wishes.lifecycle import transition
    from app.wishes.models import Wish

    wish = actors.open_wish(*people)
    assert cached_card(client, wish["id"])["due_at"] is None
    with app.app_context():
        row = db.session.get(Wish, wish["id"])
        transition(row, "claim", None)
        row.due_at = utcnow()
        db.session.commit()
    shown = card(client, wish["id"]).get_json()
    assert shown["status"] == "claimed" and shown["due_at"] is not None


def test_claim_through_the_api_reaches_a_cached_card_and_feed_at_once(app, client, actors,
                                                                     people):
    """The claim's rows are written by Core statements, which no flush hook sees: its own bump
    of the card version and the feed generation is what this checks."""
    import uuid

    from app.claims.models import Claim
    from app.extensions import db
    from app.lifecycle import history
    from app.wishes.models import Wish

    wish = actors.open_wish(*people)
    assert cached_card(client, wish["id"])["status"] == "open"
    feed = [client.get(f"{API}/wishes").get_json() for _ in range(2)]
    assert feed[0] == feed[1] and [item["id"] for item in feed[1]["items"]] == [wish["id"]]
    donor = actors.donor()
    res = client.post(f"{API}/wishes/{wish['id']}/claims",
                      headers={**donor.headers, "Idempotency-Key": str(uuid.uuid4())})
    assert res.status_code == 201, res.get_json()
    shown = card(client, wish["id"]).get_json()
    assert shown["status"] == "claimed" and shown["due_at"] == res.get_json()["due_at"]
    assert client.get(f"{API}/wishes").get_json()["items"] == []
    with app.app_context():
        row = db.session.get(Wish, wish["id"])
        claim = db.session.get(Claim, res.get_json()["id"])
        assert row.status == "claimed" and row.due_at == claim.due_at
        assert (claim.status, claim.wish_id, claim.donor_id, claim.dispute_count) == (
            "active", wish["id"], donor.id, 0)
        assert [(t.from_status, t.to_status) for t in history("claim", claim.id)] == [
            (None, "active")]
        assert [(t.from_status, t.to_status) for t in history("wish", wish["id"])][-1] == (
            "open", "claimed")


def test_write_outside_the_lifecycle_reaches_a_cached_card(app, client, actors, people):
    from app.beneficiaries.models import Beneficiary
    from app.extensions import db
    from app.wishes.models import Wish

    wish = actors.open_wish(*people)
    assert cached_card(client, wish["id"])["alias"] == "林阿婆"
    with app.app_context():
        row = db.session.get(Wish, wish["id"])
        row.title = "一台新轮椅"
        db.session.commit()
    assert card(client, wish["id"]).get_json()["title"] == "一台新轮椅"
    assert cached_card(client, wish["id"])["title"] == "一台新轮椅"
    with app.app_context():
        ben = db.session.get(Beneficiary, wish["beneficiary_id"])
        ben.alias = "阿婆"
        db.session.commit()
    assert card(client, wish["id"]).get_json()["alias"] == "阿婆"


def test_consent_withdrawal_hides_a_cached_card_at_once(client, actors, people):
    caseworker, moderator = people
    ben = actors.beneficiary(caseworker, region_code=VILLAGE)
    wish = actors.open_wish(caseworker, moderator, beneficiary_id=ben["id"])
    cached_card(client, wish["id"])
    res = client.post(f"{API}/beneficiaries/{ben['id']}/withdraw-consent",
                      headers=caseworker.headers)
    assert res.status_code == 200, res.get_json()
    assert card(client, wish["id"]).status_code == 404


def test_staff_in_scope_get_the_full_record_after_the_card_was_cached(client, actors, people):
    caseworker, moderator = people
    wish = actors.open_wish(caseworker, moderator)
    cached_card(client, wish["id"])
    full = card(client, wish["id"], caseworker.headers).get_json()
    assert full["beneficiary_id"] == wish["beneficiary_id"] and "hidden" in full
    assert "beneficiary_id" not in card(client, wish["id"]).get_json()


def test_card_comes_from_the_database_while_redis_is_unreachable(app, client, actors, people):
    from app.extensions import db
    from app.wishes.models import Wish

    wish = actors.open_wish(*people)
    cached_card(client, wish["id"])
    working = app.extensions["redis"]
    app.extensions["redis"] = redis_lib.Redis(host="127.0.0.1", port=1, socket_timeout=0.2,
                                              socket_connect_timeout=0.2)
    try:
        with app.app_context():
            db.session.get(Wish, wish["id"]).title = "没有缓存也要新"
            db.session.commit()  # the version bump fails and is logged; the write stands
        res = card(client, wish["id"])
        assert res.status_code == 200 and res.get_json()["title"] == "没有缓存也要新"
    finally:
        app.extensions["redis"] = working


def test_reading_ids_that_are_no_public_wish_writes_nothing_to_redis(app, client, actors, people):
    caseworker, _ = people
    draft = actors.draft_wish(caseworker)
    before = set(app.extensions["redis"].scan_iter("card:version:*"))
    for wish_id in ("wsh_doesnotexist", "x" * 200, draft["id"]):
        assert card(client, wish_id).status_code == 404
    assert set(app.extensions["redis"].scan_iter("card:version:*")) == before


# --- the version watch: numbers remembered per process, forgotten when Redis says they changed ---

def _watching(app):
    """This process's version watch, subscribed (it starts on the first read)."""
    import time

    from app.redis_conn import get_redis
    from app.wishes.version_watch import watch

    with app.app_context():
        client = get_redis()
    deadline = time.monotonic() + 10
    while not watch.trusted(client):
        assert time.monotonic() < deadline, "the version watch did not subscribe"
        time.sleep(0.01)
    return watch


def _retitle_as_another_process(app, wish_id: str, title: str, publish: bool) -> None:
    """What a write in another process does: the row changes and its card version is bumped
    through a connection of its own (so nothing in this process forgets the number itself)."""
    from app.extensions import db
    from app.wishes.feed_cache import CARD_VERSION_KEY, bump_numbers

    with app.app_context():
        with db.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE wishes SET title = %s WHERE id = %s", (title, wish_id))
        other = redis_lib.Redis.from_url(app.config["REDIS_URL"])
        key = CARD_VERSION_KEY.format(wish_id)
        if publish:  # as a commit's bump does it
            bump_numbers(other, [key], settle=True)
        else:
            other.incr(key)
        other.close()


class _CountingRedis(redis_lib.Redis):
    """The app's client (same pool), counting the commands sent."""

    def __init__(self, pool) -> None:
        super().__init__(connection_pool=pool)
        self.sent: list[str] = []

    def execute_command(self, *args, **options):
        self.sent.append(str(args[0]))
        return super().execute_command(*args, **options)


def test_a_cached_card_read_asks_redis_nothing_while_the_watch_is_up(app, client, actors,
                                                                     people):
    wish = actors.open_wish(*people)
    cached_card(client, wish["id"])
    _watching(app)
    working = app.extensions["redis"]
    counting = app.extensions["redis"] = _CountingRedis(working.connection_pool)
    try:
        for _ in range(5):
            assert card(client, wish["id"]).status_code == 200
            assert client.get(f"{API}/wishes").status_code == 200
    finally:
        app.extensions["redis"] = working
    # the feed's generation is read once, then remembered like the card's version
    assert counting.sent.count("GET") <= 1, counting.sent


def test_a_change_another_process_publishes_reaches_the_very_next_read(app, client, actors,
                                                                       people):
    wish = actors.open_wish(*people)
    cached_card(client, wish["id"])
    _watching(app)
    for n in range(50):
        assert cached_card(client, wish["id"])["title"] != f"第{n}台轮椅"
        _retitle_as_another_process(app, wish["id"], f"第{n}台轮椅", publish=True)
        assert card(client, wish["id"]).get_json()["title"] == f"第{n}台轮椅"


def test_reads_ask_redis_again_once_the_watch_loses_its_connection(app, client, actors, people):
    wish = actors.open_wish(*people)
    cached_card(client, wish["id"])
    watch = _watching(app)
    host, port = watch._sock.getsockname()[:2]
    # Redis drops the listener (a restart, a network cut): whatever it would have said is lost
    app.extensions["redis"].client_kill(f"{host}:{port}")
    _retitle_as_another_process(app, wish["id"], "断线时改的标题", publish=False)
    assert card(client, wish["id"]).get_json()["title"] == "断线时改的标题"
    watch = _watching(app)  # subscribed again: numbers read from now on are remembered again
    _retitle_as_another_process(app, wish["id"], "重连后改的标题", publish=True)
    assert card(client, wish["id"]).get_json()["title"] == "重连后改的标题"


def test_a_card_read_on_killed_database_connections_is_answered(app, client, actors, people,
                                                                needs_postgres):
    """The card's SELECT runs on the driver connection (app.wishes.public): a connection that
    died in the pool is found dead, the pool renewed as SQLAlchemy would, and the read (a
    SELECT, safe to repeat) answered on a new connection, never a 500."""
    import psycopg

    from app.extensions import db

    wishes = [actors.open_wish(*people)["id"] for _ in range(2)]
    with app.app_context():
        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        for wish_id in wishes:  # each read a miss, on connections killed while in the pool
            with psycopg.connect(url, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            first = card(client, wish_id)  # the SELECT is retried on a new connection
            assert first.status_code == 200 and first.get_json()["id"] == wish_id
            again = card(client, wish_id)
            assert again.status_code == 200 and again.get_json()["id"] == wish_id
    finally:
        with app.app_context():
            db.engine.dispose()  # no killed connection left for the next test's first statement


# --- cached reads answered before Flask (miniprogram_api.wishes.CachedReads) -----------------

def _headers_but_the_request_id(res) -> dict:
    headers = dict(res.headers)
    assert len(headers.pop("X-Request-Id")) == 32
    return headers


def test_a_cached_read_answered_before_flask_is_the_answer_flask_gives(app, client, actors,
                                                                        people):
    wish = actors.open_wish(*people)
    _watching(app)
    for path in (f"{API}/wishes/{wish['id']}", f"{API}/wishes", f"{API}/wishes?sort=newest"):
        hits = app.wsgi_app.hits
        rendered = client.get(path)  # a miss: rendered by the view and cached
        assert app.wsgi_app.hits == hits
        cached = client.get(path)
        assert app.wsgi_app.hits == hits + 1, path
        assert cached.status_code == rendered.status_code == 200
        assert cached.get_data() == rendered.get_data()
        assert _headers_but_the_request_id(cached) == _headers_but_the_request_id(rendered)
        echoed = client.get(path, headers={"X-Request-Id": "手机-42"})
        assert app.wsgi_app.hits == hits + 2 and echoed.headers["X-Request-Id"] == "手机-42"


def test_reads_flask_must_answer_are_not_answered_from_the_cache(app, client, actors, people):
    caseworker, moderator = people
    wish = actors.open_wish(caseworker, moderator)
    _watching(app)
    card_path = f"{API}/wishes/{wish['id']}"
    etag = client.get(f"{API}/wishes").headers["ETag"]
    cached_card(client, wish["id"])
    hits = app.wsgi_app.hits
    assert client.get(f"{API}/wishes", headers={"If-None-Match": etag}).status_code == 304
    assert "beneficiary_id" in client.get(card_path, headers=caseworker.headers).get_json()
    bad_token = client.get(card_path, headers={"Authorization": "Bearer nope"})
    assert bad_token.status_code == 401
    assert client.head(card_path).status_code == 200
    assert client.get(card_path + "?x=1").status_code == 200
    assert client.get(card_path + "/").status_code == 404
    assert app.wsgi_app.hits == hits

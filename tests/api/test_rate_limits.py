"""Abuse limits (app/ratelimit.py) through the HTTP API: 429 problem+json `rate_limited` with an
honest Retry-After, per-user and per-address budgets, X-Forwarded-For that cannot be forged past
TRUSTED_PROXY_COUNT, login limits per address and per username, and no 500 when Redis is down.

Each test builds its own app (same database and Redis as the `app` fixture) with small limits;
the `app`/`actors` fixtures empty the tables and the Redis database before each test."""
from __future__ import annotations

import io
import logging
import socket
import time
import uuid

import pytest

from app import create_app
from tests.factories import PASSWORD, TOWN
from tests.media.conftest import encode, scene

BIG = "10000/minute"


@pytest.fixture
def make_app(app, app_config):
    """create_app on the test database and Redis, with these settings on top."""
    def build(**settings):
        return create_app({**app_config, "CLAIM_ACTIVE_LIMIT": 100, **settings})
    return build


@pytest.fixture
def staff(actors):
    return actors.caseworker(), actors.moderator()


def _claim(client, donor, wish_id, key=None, **headers):
    return client.post(f"/api/v1/wishes/{wish_id}/claims", headers={
        **donor.headers, "Idempotency-Key": key or str(uuid.uuid4()), **headers})


def _assert_rate_limited(res) -> int:
    assert res.status_code == 429, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"
    body = res.get_json()
    assert body["code"] == "rate_limited" and body["status"] == 429
    assert body["title"] == "请求过于频繁，请稍后再试"
    seconds = int(res.headers["Retry-After"])
    assert seconds >= 1
    assert body["detail"] == f"请求过于频繁，请 {seconds} 秒后再试"
    return seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- claims ------------------------------------------------------------------------------------

def test_claim_limit_gives_429_whose_retry_after_is_the_real_wait(make_app, actors, staff):
    limited = make_app(RATELIMIT_CLAIMS_USER="2/4second", RATELIMIT_CLAIMS_ADDRESS=BIG)
    client = limited.test_client()
    donor = actors.donor()
    wishes = [actors.open_wish(*staff) for _ in range(3)]

    assert _claim(client, donor, wishes[0]["id"]).status_code == 201
    assert _claim(client, donor, wishes[1]["id"]).status_code == 201
    key = str(uuid.uuid4())
    refused = _claim(client, donor, wishes[2]["id"], key=key)
    seconds = _assert_rate_limited(refused)
    assert 3 <= seconds <= 4  # what is left of the 4 s window, rounded up
    assert "no-store" in refused.headers["Cache-Control"]

    # half the wait is not enough ...
    time.sleep(seconds / 2)
    _assert_rate_limited(_claim(client, donor, wishes[2]["id"], key=key))
    # ... the whole wait, counted from the first refusal, is; the retry may reuse its
    # Idempotency-Key (the refused attempt stored nothing)
    time.sleep(seconds / 2)
    res = _claim(client, donor, wishes[2]["id"], key=key)
    assert res.status_code == 201, res.get_json()
    assert "Idempotent-Replayed" not in res.headers


def test_per_user_limit_is_apart_from_the_per_address_one(make_app, actors, staff):
    limited = make_app(RATELIMIT_CLAIMS_USER="2/minute", RATELIMIT_CLAIMS_ADDRESS="4/minute")
    client = limited.test_client()
    alice, bob, carol = actors.donor(), actors.donor(), actors.donor()
    wishes = [actors.open_wish(*staff) for _ in range(4)]

    assert _claim(client, alice, wishes[0]["id"]).status_code == 201
    assert _claim(client, alice, wishes[1]["id"]).status_code == 201
    seconds = _assert_rate_limited(_claim(client, alice, wishes[2]["id"]))
    assert 50 <= seconds <= 60
    # alice's own budget is spent; bob, behind the same address, still has his
    assert _claim(client, bob, wishes[2]["id"]).status_code == 201
    # the address budget (4/minute) counts every request from it: alice's 3 and bob's 1
    _assert_rate_limited(_claim(client, carol, wishes[3]["id"]))
    # another address is not affected
    res = limited.test_client().post(
        f"/api/v1/wishes/{wishes[3]['id']}/claims",
        headers={**carol.headers, "Idempotency-Key": str(uuid.uuid4())},
        environ_base={"REMOTE_ADDR": "198.51.100.20"})
    assert res.status_code == 201, res.get_json()


def test_a_crowd_behind_one_address_gets_through_with_the_default_limits(app, actors, staff,
                                                                          client):
    """Charity day: 60 donors on one NAT address log in and go for the same wish within
    seconds; each gets an answer about the wish, none a 429."""
    donors = [actors.donor() for _ in range(60)]
    wish = actors.open_wish(*staff)
    statuses = sorted(_claim(client, d, wish["id"]).status_code for d in donors)
    assert statuses == [201] + [409] * 59


def test_a_retry_of_an_answered_claim_is_replayed_past_the_limit_and_costs_no_slot(
        make_app, actors, staff):
    limited = make_app(RATELIMIT_CLAIMS_USER="2/minute", RATELIMIT_CLAIMS_ADDRESS="3/minute")
    client = limited.test_client()
    donor = actors.donor()
    wishes = [actors.open_wish(*staff) for _ in range(3)]

    first = _claim(client, donor, wishes[0]["id"], key="phone-retry")
    assert first.status_code == 201
    for _ in range(3):  # replays: no slot of either budget is spent on them
        retry = _claim(client, donor, wishes[0]["id"], key="phone-retry")
        assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
        assert retry.get_json() == first.get_json()
    assert _claim(client, donor, wishes[1]["id"]).status_code == 201
    # the per-user budget (2/minute) is spent now: a new key is refused, a retry is not
    _assert_rate_limited(_claim(client, donor, wishes[2]["id"]))
    retry = _claim(client, donor, wishes[0]["id"], key="phone-retry")
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == first.get_json()


def test_a_donors_retry_after_the_donation_limit_gets_the_stored_order(make_app, actors,
                                                                       fake_wechatpay):
    limited = make_app(RATELIMIT_DONATIONS_USER="1/minute", RATELIMIT_DONATIONS_ADDRESS=BIG)
    client = limited.test_client()
    donor = actors.donor()

    def donate(key):
        return client.post("/api/v1/donations", json={
            "amount_fen": 5000, "anonymous": True, "receipt_requested": False},
            headers={**donor.headers, "Idempotency-Key": key})

    first = donate("donate-once")
    assert first.status_code == 201, first.get_json()
    _assert_rate_limited(donate(str(uuid.uuid4())))
    retry = donate("donate-once")
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == first.get_json()
    assert len(fake_wechatpay.calls("/v3/pay/transactions/jsapi")) == 1
    # the key reused for another request is told so, from the record, without any work either
    other = client.post("/api/v1/donations", json={
        "amount_fen": 6000, "anonymous": True, "receipt_requested": False},
        headers={**donor.headers, "Idempotency-Key": "donate-once"})
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"
    assert len(fake_wechatpay.calls("/v3/pay/transactions/jsapi")) == 1


# --- photo uploads -----------------------------------------------------------------------------

def test_upload_limit_refuses_before_the_photo_is_read(make_app, actors, staff):
    limited = make_app(RATELIMIT_UPLOADS_USER="1/minute", RATELIMIT_UPLOADS_ADDRESS=BIG)
    client = limited.test_client()
    donor = actors.donor()
    claim = _claim(client, donor, actors.open_wish(*staff)["id"]).get_json()
    photo = encode(scene((64, 64)), "JPEG")

    def upload(data):
        return client.post(f"/api/v1/claims/{claim['id']}/proofs",
                           data={"note": "已送到", "photo": (io.BytesIO(data), "p.jpg")},
                           content_type="multipart/form-data",
                           headers={**donor.headers, "Idempotency-Key": str(uuid.uuid4())})

    assert upload(photo).status_code == 201
    _assert_rate_limited(upload(b"not even an image"))


# --- client address and X-Forwarded-For --------------------------------------------------------

def _wechat_login(client, name, **headers):
    return client.post("/api/v1/auth/wechat", json={"code": f"dev:{name}"}, headers=headers)


def test_forwarded_for_is_ignored_without_trusted_proxies(make_app):
    limited = make_app(RATELIMIT_LOGIN_ADDRESS="2/minute")  # TRUSTED_PROXY_COUNT defaults to 0
    client = limited.test_client()

    for i in range(2):
        res = _wechat_login(client, f"d{i}", **{"X-Forwarded-For": f"203.0.113.{i}"})
        assert res.status_code == 200, res.get_json()
    # a new forged address each time does not make a new client
    _assert_rate_limited(_wechat_login(client, "d2", **{"X-Forwarded-For": "203.0.113.99"}))


def test_with_one_trusted_proxy_only_its_hop_counts(make_app):
    limited = make_app(RATELIMIT_LOGIN_ADDRESS="2/minute", TRUSTED_PROXY_COUNT=1)
    client = limited.test_client()

    # the proxy appends the address it saw (203.0.113.7); the client prepended a fake one
    for i in range(2):
        res = _wechat_login(client, f"d{i}",
                            **{"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.7"})
        assert res.status_code == 200, res.get_json()
    _assert_rate_limited(_wechat_login(client, "d2",
                                       **{"X-Forwarded-For": "198.51.100.50, 203.0.113.7"}))
    # a different real client behind the same proxy has its own budget
    assert _wechat_login(client, "d3", **{"X-Forwarded-For": "203.0.113.8"}).status_code == 200
    # so does the proxy's own address (no header): nothing was counted against 127.0.0.1
    assert _wechat_login(client, "d4").status_code == 200


# --- login -------------------------------------------------------------------------------------

def _staff_login(client, username, password=PASSWORD, address="203.0.113.1"):
    return client.post("/api/v1/auth/staff", json={"username": username, "password": password},
                       headers={"X-Forwarded-For": address})


def _make_staff(app, username):
    from app.auth.service import create_staff

    with app.app_context():
        create_staff(username, "caseworker", PASSWORD, [TOWN])


def test_staff_login_attempts_are_limited_per_address_and_username_not_per_username(make_app,
                                                                                     app):
    """A budget per username alone could be spent by anyone, from anywhere, to keep its owner
    out; per (address, username) it only stops the address spending it."""
    limited = make_app(RATELIMIT_LOGIN_ADDRESS_USERNAME="2/minute", RATELIMIT_LOGIN_ADDRESS=BIG,
                       TRUSTED_PROXY_COUNT=1)
    client = limited.test_client()
    _make_staff(app, "cw-zhou")
    _make_staff(app, "cw-wu")

    # right passwords count too: this is a limit on attempts, not failures
    assert _staff_login(client, "cw-zhou", address="203.0.113.1").status_code == 200
    assert _staff_login(client, "cw-zhou", address="203.0.113.1").status_code == 200
    # spelling the name differently is the same username
    _assert_rate_limited(_staff_login(client, " CW-Zhou ", address="203.0.113.1"))
    # the owner elsewhere, and a colleague at the same address, are not limited
    assert _staff_login(client, "cw-zhou", address="203.0.113.2").status_code == 200
    assert _staff_login(client, "cw-wu", address="203.0.113.1").status_code == 200


def test_login_is_limited_per_address_across_both_login_routes(make_app, app):
    limited = make_app(RATELIMIT_LOGIN_ADDRESS="3/minute", RATELIMIT_LOGIN_ADDRESS_USERNAME=BIG,
                       TRUSTED_PROXY_COUNT=1)
    client = limited.test_client()
    _make_staff(app, "cw-zheng")

    assert _staff_login(client, "cw-zheng").status_code == 200
    assert _staff_login(client, "nobody", password="wrong-password").status_code == 401
    assert _wechat_login(client, "d1", **{"X-Forwarded-For": "203.0.113.1"}).status_code == 200
    _assert_rate_limited(_staff_login(client, "cw-zheng"))
    _assert_rate_limited(_wechat_login(client, "d2", **{"X-Forwarded-For": "203.0.113.1"}))
    assert _staff_login(client, "cw-zheng", address="203.0.113.2").status_code == 200


def test_failure_lockout_still_applies_under_the_attempt_limit(make_app, app):
    limited = make_app(TRUSTED_PROXY_COUNT=1)  # default limits are above LOGIN_MAX_FAILURES
    client = limited.test_client()
    _make_staff(app, "cw-feng")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert _staff_login(client, "cw-feng", password="wrong-password").status_code == 401
    res = _staff_login(client, "cw-feng")
    assert res.status_code == 429 and res.get_json()["code"] == "too_many_attempts"


# --- storage -----------------------------------------------------------------------------------

def test_redis_down_fails_open_to_in_process_counting_without_a_500(make_app, caplog):
    dead = f"redis://127.0.0.1:{_free_port()}/0"
    limited = make_app(REDIS_URL=dead, RATELIMIT_LOGIN_ADDRESS="2/minute")
    client = limited.test_client()

    with caplog.at_level(logging.WARNING, logger="flask-limiter"):
        first = _wechat_login(client, "d1")
    assert first.status_code == 200, first.get_data(as_text=True)
    assert any("falling back to in-memory" in r.getMessage() for r in caplog.records)
    # the limit still holds, counted in this process until Redis answers again
    assert _wechat_login(client, "d2").status_code == 200
    res = _wechat_login(client, "d3")
    _assert_rate_limited(res)
    assert "Traceback" not in res.get_data(as_text=True)


def test_redis_down_on_a_limited_write_is_not_a_500(make_app, actors, staff):
    wish = actors.open_wish(*staff)
    donor = actors.donor()
    limited = make_app(REDIS_URL=f"redis://127.0.0.1:{_free_port()}/0")
    res = _claim(limited.test_client(), donor, wish["id"])
    assert res.status_code < 500, res.get_data(as_text=True)
    assert "Traceback" not in res.get_data(as_text=True)


def test_the_embedded_unix_socket_redis_is_a_working_store(make_app, tmp_path):
    from app.redis_conn import connect, embedded_redis_url

    url = embedded_redis_url(str(tmp_path))
    assert url.startswith("unix://")
    try:
        limited = make_app(REDIS_URL=url, RATELIMIT_LOGIN_ADDRESS="1/minute")
        client = limited.test_client()
        assert _wechat_login(client, "d1").status_code == 200
        _assert_rate_limited(_wechat_login(client, "d2"))
        assert connect(url).keys("LIMITS:*"), "the count is in the embedded Redis"
    finally:
        connect(url).shutdown(nosave=True)


def test_a_malformed_limit_is_refused_at_start(app_config):
    from app.config import ConfigError

    with pytest.raises(ConfigError, match="RATELIMIT_CLAIMS_USER"):
        create_app({**app_config, "RATELIMIT_CLAIMS_USER": "ten per minute"})


# --- documentation -----------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("post", "/api/v1/auth/wechat"),
    ("post", "/api/v1/auth/staff"),
    ("post", "/api/v1/wishes/{wish_id}/claims"),
    ("post", "/api/v1/claims/{claim_id}/proofs"),
])
def test_limited_routes_document_their_429_as_a_problem(client, method, path):
    doc = client.get("/api/v1/openapi.json").get_json()
    response = doc["paths"][path][method]["responses"]["429"]
    name = response["$ref"].rsplit("/", 1)[-1]
    assert list(doc["components"]["responses"][name]["content"]) == ["application/problem+json"]

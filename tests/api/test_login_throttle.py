"""Staff login failure throttling (app/auth/throttle.py), through `POST /auth/staff`.

Failures count per (address, username), per address and per username, each with its own rule:
- 5 failures (LOGIN_MAX_FAILURES) for one username from one address lock that address out of
  that username for LOGIN_LOCKOUT_SECONDS: the guesser's address, not the owner elsewhere, and
  not the colleagues behind the same office address;
- an address gets a much higher ceiling across usernames (LOGIN_ADDRESS_MAX_FAILURES);
- failures for one username from many addresses are free up to LOGIN_USERNAME_FREE_FAILURES, then
  each further attempt waits a doubling delay capped at LOGIN_USERNAME_MAX_DELAY_SECONDS, and an
  address the account logged in from before is not delayed at all.

Every test builds an app with one trusted proxy, so X-Forwarded-For chooses the client address,
and with attempt limits (app/ratelimit.py, tested elsewhere) out of the way."""
from __future__ import annotations

import time

import pytest

from app import create_app
from tests.factories import PASSWORD, TOWN

BIG = "100000/minute"
OFFICE = "203.0.113.10"


@pytest.fixture
def make_client(app, app_config):
    def build(**settings):
        built = create_app({**app_config, "TRUSTED_PROXY_COUNT": 1,
                            "RATELIMIT_LOGIN_ADDRESS": BIG,
                            "RATELIMIT_LOGIN_ADDRESS_USERNAME": BIG, **settings})
        return built.test_client()
    return build


def _make_staff(app, *usernames: str) -> None:
    from app.auth.service import create_staff

    with app.app_context():
        for username in usernames:
            create_staff(username, "caseworker", PASSWORD, [TOWN])


def _login(client, username, address, password=PASSWORD):
    return client.post("/api/v1/auth/staff", json={"username": username, "password": password},
                       headers={"X-Forwarded-For": address})


def _fail(client, username, address):
    res = _login(client, username, address, password="wrong-password")
    assert res.status_code == 401, res.get_data(as_text=True)


def _assert_throttled(res) -> int:
    assert res.status_code == 429, res.get_data(as_text=True)
    body = res.get_json()
    assert body["code"] == "too_many_attempts"
    assert "access_token" not in body
    return int(res.headers["Retry-After"])


def test_failures_for_one_user_do_not_stop_a_colleagues_right_password_from_the_same_office(
        app, make_client):
    client = make_client()
    _make_staff(app, "cw-chen", "cw-lin")
    for _ in range(8):  # past LOGIN_MAX_FAILURES for cw-chen
        _login(client, "cw-chen", OFFICE, password="wrong-password")

    assert _login(client, "cw-lin", OFFICE).status_code == 200


def test_five_failures_lock_that_address_out_of_that_username_not_the_owner_elsewhere(
        app, make_client):
    client = make_client()
    _make_staff(app, "cw-huang")
    attacker, owner = "198.51.100.66", "192.0.2.7"
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        _fail(client, "cw-huang", attacker)

    # even the right password, spelled differently, from the guessing address
    retry = _assert_throttled(_login(client, " CW-Huang ", attacker))
    assert 0 < retry <= app.config["LOGIN_LOCKOUT_SECONDS"]
    assert _login(client, "cw-huang", owner).status_code == 200
    # the owner's success does not unlock the guesser
    _assert_throttled(_login(client, "cw-huang", attacker))


def test_one_address_has_a_much_higher_ceiling_across_usernames(app, make_client):
    client = make_client(LOGIN_ADDRESS_MAX_FAILURES=12)
    names = [f"cw-office{i}" for i in range(4)]
    _make_staff(app, *names)
    for name in names[:3]:
        for _ in range(4):  # each under the per-(address, username) lockout
            _fail(client, name, OFFICE)
    # 12 failures from the office: the next attempt from it is refused, whoever it is
    _assert_throttled(_login(client, names[3], OFFICE))
    assert _login(client, names[3], "192.0.2.8").status_code == 200


def test_an_office_past_five_failures_in_all_still_logs_in(app, make_client):
    client = make_client()  # LOGIN_ADDRESS_MAX_FAILURES default
    names = [f"cw-typo{i}" for i in range(4)]
    _make_staff(app, *names)
    for name in names:
        for _ in range(3):  # twelve typos in the office, three each
            _fail(client, name, OFFICE)

    for name in names:
        assert _login(client, name, OFFICE).status_code == 200


def test_a_flood_from_many_addresses_slows_a_username_but_its_owner_gets_in_after_the_delay(
        app, make_client):
    client = make_client(LOGIN_USERNAME_FREE_FAILURES=6, LOGIN_USERNAME_MAX_DELAY_SECONDS=2)
    _make_staff(app, "cw-zhao")
    for i in range(7):  # one guess each from seven addresses: one past the free failures
        _fail(client, "cw-zhao", f"203.0.113.{100 + i}")

    # during the delay, every address waits (the guessers' too: they get no extra guesses)
    retry = _assert_throttled(_login(client, "cw-zhao", "192.0.2.9"))
    assert 1 <= retry <= 2
    _assert_throttled(_login(client, "cw-zhao", "203.0.113.200", password="wrong-password"))

    time.sleep(retry + 0.1)
    assert _login(client, "cw-zhao", "192.0.2.9").status_code == 200


def test_a_flooded_username_logs_in_at_once_from_an_address_it_used_before(app, make_client):
    client = make_client(LOGIN_USERNAME_FREE_FAILURES=6, LOGIN_USERNAME_MAX_DELAY_SECONDS=600)
    _make_staff(app, "cw-qian")
    home = "192.0.2.10"
    assert _login(client, "cw-qian", home).status_code == 200
    for i in range(7):
        _fail(client, "cw-qian", f"203.0.113.{100 + i}")
    retry = _assert_throttled(_login(client, "cw-qian", "192.0.2.11"))
    assert retry <= 600

    assert _login(client, "cw-qian", home).status_code == 200

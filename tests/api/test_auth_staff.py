"""Staff login (`POST /api/v1/auth/staff`): password check, lockout after repeated failures,
disabled accounts, and `GET /api/v1/me`."""
from __future__ import annotations

from tests.factories import OTHER_TOWN, PASSWORD, TOWN

LOGIN = "/api/v1/auth/staff"


def _make_staff(app, username: str, role: str = "caseworker",
                regions: list[str] | None = None) -> str:
    from app.auth.service import create_staff

    if regions is None:
        regions = [TOWN] if role == "caseworker" else []
    with app.app_context():
        return create_staff(username, role, PASSWORD, regions).id


def _assert_problem(res, status: int, code: str) -> dict:
    assert res.status_code == status, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"
    body = res.get_json()
    assert body["code"] == code and body["status"] == status
    return body


def test_right_password_returns_token_of_the_contract_shape(client, app):
    user_id = _make_staff(app, "cw-lin")

    res = client.post(LOGIN, json={"username": "cw-lin", "password": PASSWORD})

    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.config["ACCESS_TOKEN_TTL_SECONDS"]
    assert body["user"] == {"id": user_id, "role": "caseworker", "display_name": "cw-lin"}
    assert PASSWORD not in res.get_data(as_text=True)


def test_me_shows_role_and_regions(client, app):
    _make_staff(app, "cw-two-towns", regions=[TOWN, OTHER_TOWN])
    token = client.post(LOGIN, json={"username": "cw-two-towns", "password": PASSWORD}
                        ).get_json()["access_token"]

    res = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})

    assert res.status_code == 200
    me = res.get_json()
    assert me["role"] == "caseworker"
    assert me["username"] == "cw-two-towns"
    assert sorted(me["regions"]) == sorted([TOWN, OTHER_TOWN])
    assert "password_hash" not in me and "password" not in me
    assert res.headers["Cache-Control"] == "no-store"


def test_me_of_a_moderator_has_no_regions(client, actors):
    moderator = actors.moderator()

    me = client.get("/api/v1/me", headers=moderator.headers).get_json()

    assert me["role"] == "moderator" and me["regions"] == []


def test_wrong_password_is_401_invalid_credentials(client, app):
    _make_staff(app, "cw-wrong")

    res = client.post(LOGIN, json={"username": "cw-wrong", "password": PASSWORD + "x"})

    body = _assert_problem(res, 401, "invalid_credentials")
    assert "access_token" not in body


def test_unknown_username_looks_like_a_wrong_password(client, app):
    res = client.post(LOGIN, json={"username": "nobody-here", "password": PASSWORD})

    _assert_problem(res, 401, "invalid_credentials")


def test_repeated_failures_lock_out_even_the_right_password(client, app):
    _make_staff(app, "cw-locked")
    limit = app.config["LOGIN_MAX_FAILURES"]
    assert limit == 5

    for _ in range(limit):
        res = client.post(LOGIN, json={"username": "cw-locked", "password": "guess-guess-1"})
        _assert_problem(res, 401, "invalid_credentials")

    res = client.post(LOGIN, json={"username": "cw-locked", "password": PASSWORD})

    _assert_problem(res, 429, "too_many_attempts")
    retry_after = int(res.headers["Retry-After"])
    assert 0 < retry_after <= app.config["LOGIN_LOCKOUT_SECONDS"]
    assert "access_token" not in res.get_data(as_text=True)


def test_failures_below_the_limit_still_allow_the_right_password(client, app):
    _make_staff(app, "cw-typo")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        client.post(LOGIN, json={"username": "cw-typo", "password": "guess-guess-1"})

    res = client.post(LOGIN, json={"username": "cw-typo", "password": PASSWORD})

    assert res.status_code == 200, res.get_json()


def test_disabled_account_cannot_log_in_and_can_again_when_enabled(client, app, actors):
    admin = actors.admin()
    user_id = _make_staff(app, "cw-leaver")

    res = client.patch(f"/api/v1/staff/{user_id}", json={"active": False}, headers=admin.headers)
    assert res.status_code == 200 and res.get_json()["active"] is False

    res = client.post(LOGIN, json={"username": "cw-leaver", "password": PASSWORD})
    _assert_problem(res, 403, "account_disabled")
    assert "access_token" not in res.get_data(as_text=True)

    client.patch(f"/api/v1/staff/{user_id}", json={"active": True}, headers=admin.headers)
    res = client.post(LOGIN, json={"username": "cw-leaver", "password": PASSWORD})
    assert res.status_code == 200, res.get_json()


def test_disabled_account_with_a_wrong_password_learns_nothing(client, app, actors):
    admin = actors.admin()
    user_id = _make_staff(app, "cw-gone")
    client.patch(f"/api/v1/staff/{user_id}", json={"active": False}, headers=admin.headers)

    res = client.post(LOGIN, json={"username": "cw-gone", "password": "not-the-password"})

    _assert_problem(res, 401, "invalid_credentials")


def test_login_with_missing_fields_is_422_naming_them(client):
    res = client.post(LOGIN, json={"username": "someone"})

    body = _assert_problem(res, 422, "validation_error")
    assert "password" in body["errors"]


def test_regions_may_be_set_again_kept_widened_and_narrowed(client, actors):
    """A PATCH that repeats a region the account has (was a 500: the new row was inserted
    before the old one was deleted, against the unique (user, region) index)."""
    admin = actors.admin()
    caseworker = actors.caseworker(regions=["350505101"])
    url = f"/api/v1/staff/{caseworker.id}"
    for regions in (["350505101"], ["350505101", "350505106"], ["350505106"], ["350505106"]):
        res = client.patch(url, json={"regions": regions, "active": True}, headers=admin.headers)
        assert res.status_code == 200, res.get_json()
        assert res.get_json()["regions"] == sorted(regions)
    res = client.patch(url, json={"regions": ["350505101"], "role": "caseworker",
                                  "active": False}, headers=admin.headers)
    assert res.status_code == 200 and res.get_json()["regions"] == ["350505101"]

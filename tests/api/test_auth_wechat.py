"""Donor login through WeChat (`POST /api/v1/auth/wechat`) against the local fake WeChat server.

`wechat_app` has WECHAT_APP_ID set, so every code is exchanged at the fake's jscode2session;
the plain `client` is the development configuration, where `dev:<name>` logs a donor in.
"""
from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

LOGIN = "/api/v1/auth/wechat"
SESSION_KEY = "SECRET-SESSION-KEY-tiHKx5Q=="  # what the fake answers as session_key
APP_SECRET = "test-secret"


@pytest.fixture
def wx(wechat_app, app, fake_wechat):
    """A client of the WeChat-configured app (`app` is requested so tables start empty)."""
    fake_wechat.requests.clear()
    return wechat_app.test_client()


def _donor_rows(app) -> list[tuple]:
    from app.auth.models import User
    from app.extensions import db

    with app.app_context():
        rows = db.session.execute(
            sa.select(User.id, User.role, User.wechat_openid).order_by(User.created_at)).all()
        db.session.remove()
    return [tuple(r) for r in rows]


def _assert_problem(res, status: int, code: str) -> dict:
    assert res.status_code == status, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"
    body = res.get_json()
    assert body["code"] == code
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


def test_first_wechat_login_creates_donor_and_returns_token(wx, app):
    res = wx.post(LOGIN, json={"code": "ok:openid-alice"})

    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert set(body["user"]) == {"id", "role", "display_name"}
    assert body["user"]["role"] == "donor"
    assert body["user"]["display_name"]
    assert _donor_rows(app) == [(body["user"]["id"], "donor", "openid-alice")]

    me = wx.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.get_json()["id"] == body["user"]["id"]
    assert me.get_json()["role"] == "donor"


def test_same_openid_twice_is_the_same_donor(wx, app):
    first = wx.post(LOGIN, json={"code": "ok:openid-bob"}).get_json()
    second = wx.post(LOGIN, json={"code": "ok:openid-bob"}).get_json()

    assert first["user"]["id"] == second["user"]["id"]
    assert first["access_token"] != second["access_token"]  # a fresh jti each login
    assert len(_donor_rows(app)) == 1


def test_different_openids_are_different_donors(wx, app):
    a = wx.post(LOGIN, json={"code": "ok:openid-a"}).get_json()
    b = wx.post(LOGIN, json={"code": "ok:openid-b"}).get_json()

    assert a["user"]["id"] != b["user"]["id"]
    assert len(_donor_rows(app)) == 2


def test_code_is_exchanged_with_appid_secret_and_grant_type(wx, fake_wechat):
    wx.post(LOGIN, json={"code": "ok:openid-carol"})

    assert fake_wechat.requests == [{
        "path": "/sns/jscode2session",
        "query": {"appid": "wx-test-app", "secret": APP_SECRET, "js_code": "ok:openid-carol",
                  "grant_type": "authorization_code"},
    }]


@pytest.mark.parametrize("code, status, error_code", [
    ("err:40029", 401, "wechat_code_invalid"),
    ("err:45011", 429, "wechat_rate_limited"),
    ("err:40226", 403, "wechat_user_blocked"),
    ("err:-1", 503, "wechat_unavailable"),
    ("http:500", 503, "wechat_unavailable"),
    ("http:502", 503, "wechat_unavailable"),
    ("garbage", 503, "wechat_unavailable"),
    ("slow", 503, "wechat_unavailable"),
])
def test_wechat_errors_map_to_contract_codes_and_create_nobody(wx, app, code, status,
                                                                error_code):
    res = wx.post(LOGIN, json={"code": code})

    _assert_problem(res, status, error_code)
    assert "access_token" not in res.get_data(as_text=True)
    assert _donor_rows(app) == []


def test_session_key_is_never_returned_logged_or_stored(wx, app, caplog):
    caplog.set_level(logging.DEBUG)

    res = wx.post(LOGIN, json={"code": "ok:openid-dave"})

    assert res.status_code == 200
    text = res.get_data(as_text=True)
    assert SESSION_KEY not in text and "session_key" not in text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "new donor account created" in logged  # proves the capture sees the login path
    assert SESSION_KEY not in logged
    assert APP_SECRET not in logged  # nor the app secret the code was exchanged with
    from app.extensions import db
    with app.app_context():
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(sa.select(table)).all():
                assert SESSION_KEY not in repr(tuple(row)), table.name
        db.session.remove()


def test_dev_login_works_in_development_without_app_id(client, app, fake_wechat):
    fake_wechat.requests.clear()
    assert app.config["DEV_LOGIN_ENABLED"] is True

    res = client.post(LOGIN, json={"code": "dev:小明"})

    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    assert body["user"]["role"] == "donor"
    assert body["user"]["display_name"] == "小明"
    assert fake_wechat.requests == []  # never sent to WeChat
    again = client.post(LOGIN, json={"code": "dev:小明"}).get_json()
    assert again["user"]["id"] == body["user"]["id"]


def test_dev_login_is_refused_when_wechat_app_id_is_set(wx, wechat_app, app):
    assert wechat_app.config["DEV_LOGIN_ENABLED"] is False

    res = wx.post(LOGIN, json={"code": "dev:mallory"})

    assert res.status_code == 401
    assert res.mimetype == "application/problem+json"
    assert _donor_rows(app) == []


@pytest.mark.parametrize("payload", [{}, {"code": ""}, {"code": 123}, {"code": "x" * 500}])
def test_login_without_a_usable_code_is_422_and_never_calls_wechat(wx, fake_wechat, payload):
    res = wx.post(LOGIN, json=payload)

    _assert_problem(res, 422, "validation_error")
    assert "code" in res.get_json()["errors"]
    assert fake_wechat.requests == []

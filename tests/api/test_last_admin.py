"""The last active admin stays: nobody (itself included) may disable or demote it, through
`PATCH /staff/{id}` or `flask staff disable`, even two admins disabling each other at once.
Otherwise nobody could manage staff accounts any more but someone with a shell on the server."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.auth.models import User
from app.errors import DomainError
from tests.concurrency import run_together
from tests.factories import PASSWORD


def _active_admins(app) -> int:
    from app.extensions import db

    with app.app_context():
        count = db.session.execute(select(func.count()).select_from(User).where(
            User.role == "admin", User.active.is_(True))).scalar_one()
        db.session.remove()
        return count


def _assert_last_admin(res) -> None:
    assert res.status_code == 409, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"
    body = res.get_json()
    assert body["code"] == "last_admin"
    assert body["title"] == "不能停用或降级最后一位管理员"


def test_the_last_active_admin_cannot_disable_itself(app, client, actors):
    admin = actors.admin()

    res = client.patch(f"/api/v1/staff/{admin.id}", json={"active": False},
                       headers=admin.headers)

    _assert_last_admin(res)
    assert _active_admins(app) == 1
    # nothing changed: its token still works
    assert client.get("/api/v1/staff", headers=admin.headers).status_code == 200


@pytest.mark.parametrize("role", ["moderator", "caseworker"])
def test_the_last_active_admin_cannot_be_demoted(app, client, actors, role):
    admin = actors.admin()
    body = {"role": role, **({"regions": ["350505101"]} if role == "caseworker" else {})}

    _assert_last_admin(client.patch(f"/api/v1/staff/{admin.id}", json=body,
                                    headers=admin.headers))
    assert _active_admins(app) == 1


def test_an_admin_may_go_while_another_active_admin_stays(app, client, actors):
    first, second = actors.admin(), actors.admin()

    res = client.patch(f"/api/v1/staff/{second.id}", json={"active": False},
                       headers=first.headers)
    assert res.status_code == 200, res.get_json()
    # the disabled admin does not count: the first is now the last
    _assert_last_admin(client.patch(f"/api/v1/staff/{first.id}", json={"role": "moderator"},
                                    headers=first.headers))
    # enabling an admin again is always allowed, and then the first may step down
    res = client.patch(f"/api/v1/staff/{second.id}", json={"active": True},
                       headers=first.headers)
    assert res.status_code == 200, res.get_json()
    res = client.patch(f"/api/v1/staff/{first.id}", json={"role": "moderator"},
                       headers=first.headers)
    assert res.status_code == 200, res.get_json()
    assert _active_admins(app) == 1


def test_two_admins_disabling_each_other_at_once_leave_one(app, actors, needs_postgres):
    """Each change locks the active admins' rows first, so the second sees the first's result."""
    from app.auth.service import update_staff

    first, second = actors.admin(), actors.admin()

    def disable(user_id: str):
        def call():
            with app.app_context():
                try:
                    update_staff(user_id, active=False)
                    return "disabled"
                except DomainError as exc:
                    return exc.code
        return call

    for _ in range(3):  # a race may go either way; it must never end with no admin
        outcomes = run_together([disable(first.id), disable(second.id)])
        assert sorted(outcomes) == ["disabled", "last_admin"]
        assert _active_admins(app) == 1
        with app.app_context():
            update_staff(first.id, active=True)
            update_staff(second.id, active=True)


def _cli(app, *args: str, stdin: str | None = None):
    return app.test_cli_runner().invoke(args=list(args), input=stdin)


def test_staff_disable_refuses_the_last_active_admin_and_staff_enable_brings_one_back(
        app, client):
    for name in ("root.one", "root.two"):
        assert _cli(app, "staff", "create", name, "--role", "admin", "--password-stdin",
                    stdin=PASSWORD + "\n").exit_code == 0

    assert _cli(app, "staff", "disable", "root.two").exit_code == 0
    refused = _cli(app, "staff", "disable", "root.one")
    assert refused.exit_code == 1
    assert "最后一位" in refused.output
    assert _active_admins(app) == 1

    enabled = _cli(app, "staff", "enable", "root.two")
    assert enabled.exit_code == 0, enabled.output
    assert "enabled root.two" in enabled.output
    res = client.post("/api/v1/auth/staff", json={"username": "root.two", "password": PASSWORD})
    assert res.status_code == 200, res.get_json()
    assert _cli(app, "staff", "disable", "root.one").exit_code == 0
    assert _active_admins(app) == 1


def test_staff_enable_of_an_unknown_username_fails(app):
    result = _cli(app, "staff", "enable", "nobody.here")

    assert result.exit_code == 1
    assert "no staff account nobody.here" in result.output

"""`flask --app wsgi staff ...`: non-interactive staff accounts, password on standard input."""
from __future__ import annotations

import pytest

PASSWORD = "a long enough password"


def _cli(app, *args: str, stdin: str | None = None):
    return app.test_cli_runner().invoke(args=list(args), input=stdin)


def _login(client, username: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/staff", json={"username": username, "password": password})


def test_staff_create_reads_the_password_from_stdin_and_the_account_can_log_in(app, client):
    result = _cli(app, "staff", "create", "jieshan.li", "--role", "caseworker",
                  "--region", "350505101", "--password-stdin", stdin=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "created caseworker jieshan.li" in result.output
    assert PASSWORD not in result.output

    res = _login(client, "jieshan.li")
    assert res.status_code == 200, res.get_json()
    me = client.get("/api/v1/me",
                    headers={"Authorization": f"Bearer {res.get_json()['access_token']}"})
    assert me.get_json()["role"] == "caseworker"
    assert me.get_json()["regions"] == ["350505101"]


def test_staff_create_takes_several_regions(app, client):
    result = _cli(app, "staff", "create", "coast.worker", "--role", "caseworker",
                  "--region", "350505102", "--region", "350505103", "--password-stdin",
                  stdin=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    token = _login(client, "coast.worker").get_json()["access_token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["regions"] == ["350505102", "350505103"]


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["--role", "superuser", "--region", "350505101"], PASSWORD, "superuser"),
    (["--role", "caseworker", "--region", "35050510"], PASSWORD,
     "区划代码必须是 6、9 或 12 位数字"),
    (["--role", "caseworker"], PASSWORD, "协理员必须绑定至少一个区划代码"),
    (["--role", "moderator"], "short", "密码至少 10 个字符"),
])
def test_staff_create_refuses_bad_input_with_a_clear_message(app, client, args, stdin, message):
    result = _cli(app, "staff", "create", "someone", *args, "--password-stdin",
                  stdin=stdin + "\n")
    assert result.exit_code != 0
    assert message in result.output
    assert _login(client, "someone", stdin).status_code == 401  # nothing was created


def test_staff_create_refuses_a_taken_username(app):
    assert _cli(app, "staff", "create", "mod.one", "--role", "moderator", "--password-stdin",
                stdin=PASSWORD + "\n").exit_code == 0
    result = _cli(app, "staff", "create", "mod.one", "--role", "admin", "--password-stdin",
                  stdin="another long password\n")
    assert result.exit_code == 1
    assert "mod.one 已存在" in result.output


def test_staff_disable_makes_the_old_token_401_and_login_403(app, client):
    _cli(app, "staff", "create", "mod.two", "--role", "moderator", "--password-stdin",
         stdin=PASSWORD + "\n")
    headers = {"Authorization": f"Bearer {_login(client, 'mod.two').get_json()['access_token']}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200

    result = _cli(app, "staff", "disable", "mod.two")
    assert result.exit_code == 0, result.output

    res = client.get("/api/v1/me", headers=headers)
    assert res.status_code == 401 and res.get_json()["code"] == "invalid_token"
    assert _login(client, "mod.two").get_json()["code"] == "account_disabled"


def test_staff_disable_of_an_unknown_username_fails(app):
    result = _cli(app, "staff", "disable", "nobody.here")
    assert result.exit_code == 1
    assert "no staff account nobody.here" in result.output


def test_ledger_keygen_writes_a_private_key_file_once_and_prints_the_vkey(app, tmp_path):
    import os
    import stat

    from app.ledger.keys import load_signer
    from app.ledger.note import parse_verifier_key

    out = tmp_path / "ledger.key"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ledger", "keygen", "--name", "weixinyuan.test/ledger",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    vkey = result.output.strip().rsplit(" ", 1)[-1]
    assert vkey.startswith("weixinyuan.test/ledger+")
    parse_verifier_key(vkey)
    name, _ = load_signer(str(out))
    assert name == "weixinyuan.test/ledger"
    again = runner.invoke(args=["ledger", "keygen", "--name", "x", "--out", str(out)])
    assert again.exit_code == 1 and "never overwritten" in again.output


# --- ledger keygen before any other setting exists ---------------------------------------------

def _run_bare(tmp_path, *args: str, **env: str):
    """A command in a clean environment: APP_ENV=production and nothing else (no database, no
    Redis, no secrets), the way an operator makes the ledger key before writing the config."""
    import os
    import subprocess
    import sys

    from tests.processes import ROOT

    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
             "APP_ENV": "production", **env}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=clean, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("command", [
    pytest.param(["-m", "flask", "--app", "wsgi", "ledger", "keygen"], id="flask"),
    pytest.param(["-m", "app.ledger.keygen"], id="python-m"),
])
def test_ledger_keygen_runs_under_production_with_no_other_setting(tmp_path, command):
    from app.ledger.keys import load_signer
    from app.ledger.note import parse_verifier_key

    out = tmp_path / "ledger.key"
    done = _run_bare(tmp_path, *command, "--name", "api.example.cn/ledger", "--out", str(out))

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    name, _ = load_signer(str(out))
    assert name == "api.example.cn/ledger"
    vkey = done.stdout.strip().rsplit(" ", 1)[-1]
    assert vkey.startswith("api.example.cn/ledger+")
    parse_verifier_key(vkey)

    again = _run_bare(tmp_path, *command, "--name", "x", "--out", str(out))
    assert again.returncode == 1 and "never overwritten" in again.stderr


def test_other_commands_under_an_incomplete_production_config_fail_naming_the_setting(tmp_path):
    done = _run_bare(tmp_path, "-m", "flask", "--app", "wsgi", "staff", "disable", "someone")

    assert done.returncode == 1
    assert "DATABASE_URL must be set when APP_ENV=production" in done.stderr
    assert "Traceback" not in done.stderr

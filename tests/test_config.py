"""Configuration: production refuses to start without real secrets; URLs and keys are checked.

Settings come from the environment in production, so most tests set environment variables
(monkeypatch) and call `create_app()` the way `wsgi.py` does; a few pass the `config` mapping.
"""
from __future__ import annotations

import base64
import os
import secrets

import pytest

from app import create_app
from app.config import DEV_DATA_ENCRYPTION_KEY, DEV_SECRET_KEY, SETTINGS, ConfigError

# Each of these must be given explicitly in production.
REQUIRED_IN_PRODUCTION = ["SECRET_KEY", "DATA_ENCRYPTION_KEY", "WECHAT_APP_ID",
                          "WECHAT_APP_SECRET", "DATABASE_URL", "REDIS_URL",
                          # WeChat Pay merchant settings: money donations need every one.
                          "WECHATPAY_MCH_ID", "WECHATPAY_MCH_CERT_SERIAL",
                          "WECHATPAY_MCH_PRIVATE_KEY_FILE", "WECHATPAY_API_V3_KEY",
                          "WECHATPAY_PLATFORM_PUBLIC_KEY_ID", "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE",
                          "WECHATPAY_NOTIFY_URL",
                          # The ledger's signing key (made by `flask --app wsgi ledger keygen`).
                          "LEDGER_KEY_FILE"]


def _ledger_key(folder) -> str:
    from app.ledger.keys import keygen

    path = str(folder / "ledger.key")
    keygen("wxy.example.cn/ledger", path)
    return path


def _key(length: int = 32) -> str:
    return base64.b64encode(os.urandom(length)).decode()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No setting leaks in from the shell running the tests; the instance folder is private."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))


@pytest.fixture
def production_env(monkeypatch, app_config, fake_wechatpay, tmp_path):
    merchant = {k: str(v) for k, v in fake_wechatpay.app_settings().items()
                if k != "WECHATPAY_APP_ID"}  # production pays for the mini-program WECHAT_APP_ID
    env = {
        **merchant,
        "WECHATPAY_NOTIFY_URL": "https://wxy.example.cn/api/v1/payments/wechatpay/notify",
        "APP_ENV": "production",
        "DATABASE_URL": app_config["DATABASE_URL"],
        "REDIS_URL": app_config["REDIS_URL"],
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATA_ENCRYPTION_KEY": _key(),
        "WECHAT_APP_ID": "wx0123456789abcdef",
        "WECHAT_APP_SECRET": secrets.token_hex(16),
        "WECHAT_API_BASE": app_config["WECHAT_API_BASE"],
        "LEDGER_KEY_FILE": _ledger_key(tmp_path),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_production_with_every_secret_starts_with_dev_login_off(production_env):
    application = create_app()

    assert application.config["APP_ENV"] == "production"
    assert application.config["DEV_LOGIN_ENABLED"] is False


@pytest.mark.parametrize("name", REQUIRED_IN_PRODUCTION)
def test_production_with_a_secret_missing_refuses_to_start_naming_it(production_env,
                                                                      monkeypatch, name):
    monkeypatch.delenv(name)

    with pytest.raises(ConfigError, match=name):
        create_app()


@pytest.mark.parametrize("value", ["", None])
@pytest.mark.parametrize("name", REQUIRED_IN_PRODUCTION)
def test_production_with_a_secret_set_empty_refuses_to_start_naming_it(production_env,
                                                                       name, value):
    with pytest.raises(ConfigError, match=name):
        create_app({name: value})


@pytest.mark.parametrize("name, dev_value", [("SECRET_KEY", DEV_SECRET_KEY),
                                             ("DATA_ENCRYPTION_KEY", DEV_DATA_ENCRYPTION_KEY)])
def test_production_with_a_development_secret_refuses_to_start_naming_it(
        production_env, monkeypatch, name, dev_value):
    monkeypatch.setenv(name, dev_value)

    with pytest.raises(ConfigError, match=name):
        create_app()


def test_production_with_a_short_secret_key_refuses_to_start(production_env, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "too-short")

    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_production_cannot_be_talked_into_dev_login(production_env):
    application = create_app({"DEV_LOGIN_ENABLED": True})

    assert application.config["DEV_LOGIN_ENABLED"] is False


def test_dev_login_code_is_refused_by_a_production_app(production_env, app):
    """`app` is requested so the shared test database is migrated and empty."""
    client = create_app().test_client()

    res = client.post("/api/v1/auth/wechat", json={"code": "dev:alice"})

    assert res.status_code == 401
    assert "access_token" not in res.get_data(as_text=True)


def test_unknown_app_env_is_refused():
    with pytest.raises(ConfigError, match="APP_ENV"):
        create_app({"APP_ENV": "staging"})


@pytest.mark.parametrize("url, expected", [
    ("postgresql://wxy@db.internal:5432/weixinyuan",
     "postgresql+psycopg://wxy@db.internal:5432/weixinyuan"),
    ("postgres://wxy@db.internal/weixinyuan", "postgresql+psycopg://wxy@db.internal/weixinyuan"),
    ("postgresql+psycopg://wxy@db.internal/weixinyuan",
     "postgresql+psycopg://wxy@db.internal/weixinyuan"),
])
def test_plain_postgresql_url_picks_the_psycopg_driver(monkeypatch, url, expected):
    from app.extensions import db

    monkeypatch.setenv("DATABASE_URL", url)
    application = create_app({"REDIS_URL": "redis://127.0.0.1:6379/11"})

    assert application.config["SQLALCHEMY_DATABASE_URI"] == expected
    with application.app_context():  # building the engine does not connect
        assert db.engine.dialect.name == "postgresql"
        assert db.engine.dialect.driver == "psycopg"


def test_sqlite_url_is_used_as_given(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"

    application = create_app({"DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:6379/11"})

    assert application.config["SQLALCHEMY_DATABASE_URI"] == url


@pytest.mark.parametrize("value", [
    pytest.param(_key(16), id="16-bytes"),
    pytest.param(_key(31), id="31-bytes"),
    pytest.param(_key(33), id="33-bytes"),
    pytest.param("not base64 at all!", id="not-base64"),
    pytest.param(_key()[:-2], id="truncated"),
    pytest.param(secrets.token_hex(32), id="hex-not-base64"),
])
@pytest.mark.parametrize("env", ["development", "production"])
def test_data_encryption_key_that_is_not_32_bytes_of_base64_is_refused(
        production_env, monkeypatch, env, value):
    monkeypatch.setenv("APP_ENV", env)
    monkeypatch.setenv("DATA_ENCRYPTION_KEY", value)

    with pytest.raises(ConfigError, match="DATA_ENCRYPTION_KEY"):
        create_app()


def test_retired_encryption_key_that_is_malformed_is_refused(production_env, monkeypatch):
    monkeypatch.setenv("DATA_ENCRYPTION_OLD_KEYS", f"{_key()},{_key(16)}")

    with pytest.raises(ConfigError, match="DATA_ENCRYPTION_OLD_KEYS"):
        create_app()


@pytest.mark.parametrize("name, value", [("CLAIM_SLA_SECONDS", "two days"),
                                         ("WECHAT_TIMEOUT_SECONDS", "fast"),
                                         ("CLAIM_REMINDER_OFFSETS", "86400,soon")])
def test_malformed_number_in_the_environment_is_refused_naming_it(monkeypatch, name, value):
    monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError, match=name):
        create_app()


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/11")
    monkeypatch.setenv("CLAIM_SLA_SECONDS", "3600")
    monkeypatch.setenv("CLAIM_REMINDER_OFFSETS", "1800, 600")
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "2048")

    config = create_app().config

    assert config["CLAIM_SLA_SECONDS"] == 3600
    assert config["CLAIM_REMINDER_OFFSETS"] == [1800, 600]
    assert config["MAX_UPLOAD_BYTES"] == 2048
    assert config["MAX_CONTENT_LENGTH"] == 1024 * 1024  # the JSON body cap stays 1 MiB


def test_production_pays_for_the_mini_program_app_id(production_env):
    application = create_app()

    assert application.config["WECHATPAY_APP_ID"] == production_env["WECHAT_APP_ID"]


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("value", ["too-short", "x" * 33])
def test_apiv3_key_that_is_not_32_characters_is_refused(production_env, monkeypatch, env, value):
    monkeypatch.setenv("APP_ENV", env)
    monkeypatch.setenv("WECHATPAY_API_V3_KEY", value)

    with pytest.raises(ConfigError, match="WECHATPAY_API_V3_KEY"):
        create_app()


@pytest.mark.parametrize("name", ["WECHATPAY_MCH_PRIVATE_KEY_FILE",
                                  "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE"])
@pytest.mark.parametrize("content", [None, b"not a pem file", "swapped"])
def test_production_with_an_unusable_wechatpay_key_file_refuses_to_start(
        production_env, monkeypatch, tmp_path, name, content):
    path = tmp_path / "key.pem"
    if content == "swapped":  # the other key of the pair: a public key for the private one, ...
        other = {"WECHATPAY_MCH_PRIVATE_KEY_FILE": "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE",
                 "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": "WECHATPAY_MCH_PRIVATE_KEY_FILE"}[name]
        path = production_env[other]
    elif content is not None:
        path.write_bytes(content)
    monkeypatch.setenv(name, str(path))

    with pytest.raises(ConfigError, match=name):
        create_app()


def test_development_without_merchant_settings_starts_with_payments_unconfigured(monkeypatch,
                                                                                  tmp_path):
    from app import wechatpay

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'dev.db'}")
    application = create_app({"REDIS_URL": "redis://127.0.0.1:6379/11"})

    with application.app_context():
        assert wechatpay.is_configured() is False


@pytest.mark.parametrize("content", ["", "not a key\n", "PRIVATE+KEY+garbage\n"])
def test_production_with_an_unusable_ledger_key_file_refuses_to_start(production_env, tmp_path,
                                                                      content):
    bad = tmp_path / "bad-ledger.key"
    bad.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigError, match="LEDGER_KEY_FILE"):
        create_app({"LEDGER_KEY_FILE": str(bad)})
    with pytest.raises(ConfigError, match="LEDGER_KEY_FILE"):
        create_app({"LEDGER_KEY_FILE": str(tmp_path / "missing.key")})


def test_production_hashes_passwords_with_rfc_9106_argon2id_by_default(production_env):
    application = create_app()

    assert application.config["PASSWORD_HASH_PROFILE"] == "RFC_9106_LOW_MEMORY"


def test_production_refuses_the_cheap_password_hash_profile_the_tests_use(production_env,
                                                                          monkeypatch):
    monkeypatch.setenv("PASSWORD_HASH_PROFILE", "CHEAPEST")

    with pytest.raises(ConfigError, match="PASSWORD_HASH_PROFILE"):
        create_app()


def test_unknown_password_hash_profile_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("PASSWORD_HASH_PROFILE", "MD5")

    with pytest.raises(ConfigError, match="PASSWORD_HASH_PROFILE"):
        create_app()


MERCHANT_SETTINGS = ["WECHATPAY_MCH_ID", "WECHATPAY_MCH_CERT_SERIAL",
                     "WECHATPAY_MCH_PRIVATE_KEY_FILE", "WECHATPAY_API_V3_KEY",
                     "WECHATPAY_PLATFORM_PUBLIC_KEY_ID", "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE",
                     "WECHATPAY_NOTIFY_URL"]


def test_production_with_payments_disabled_starts_without_wechat_pay_and_refuses_donations(
        production_env, monkeypatch, app, fake_wechat):
    """The fund switched off, everything else on: no merchant setting is needed, and a donation
    is 503 `payments_not_configured` with nothing written. (`app`: the test database, empty.)"""
    from app.extensions import db
    from app.fund.models import Donation

    for name in MERCHANT_SETTINGS:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PAYMENTS_ENABLED", "false")
    production = create_app()
    client = production.test_client()

    token = client.post("/api/v1/auth/wechat", json={"code": "ok:o-donor-payments-off"}
                        ).get_json()["access_token"]
    res = client.post("/api/v1/donations", json={"amount_fen": 100, "anonymous": True,
                                                 "receipt_requested": False},
                      headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"})

    assert res.status_code == 503 and res.get_json()["code"] == "payments_not_configured"
    assert "Retry-After" not in res.headers
    with production.app_context():
        assert db.session.query(Donation).count() == 0


def test_production_with_payments_disabled_ignores_merchant_settings_it_was_given(
        production_env, monkeypatch):
    from app import wechatpay

    monkeypatch.setenv("PAYMENTS_ENABLED", "false")
    monkeypatch.setenv("WECHATPAY_MCH_PRIVATE_KEY_FILE", "/nonexistent/apiclient_key.pem")

    production = create_app()

    with production.app_context():
        assert wechatpay.is_configured() is False


@pytest.mark.parametrize("enabled", ["true", None])
@pytest.mark.parametrize("name", MERCHANT_SETTINGS)
def test_production_with_payments_enabled_needs_every_merchant_setting(
        production_env, monkeypatch, enabled, name):
    if enabled is not None:
        monkeypatch.setenv("PAYMENTS_ENABLED", enabled)
    monkeypatch.delenv(name)

    with pytest.raises(ConfigError, match=name):
        create_app()


def test_a_payments_enabled_that_is_not_a_yes_or_no_is_refused(production_env, monkeypatch):
    monkeypatch.setenv("PAYMENTS_ENABLED", "flase")

    with pytest.raises(ConfigError, match="PAYMENTS_ENABLED"):
        create_app()

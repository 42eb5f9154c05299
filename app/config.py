"""Settings: read from the environment inside create_app(), never at import time.

`load_config(environ)` turns an environment mapping into a flat dict of typed settings;
`check_production(config)` refuses a production start with a missing or default secret.
"""
from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Any, Callable, Mapping

# Development-only defaults. `check_production` refuses every one of them.
DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production"
DEV_DATA_ENCRYPTION_KEY = base64.b64encode(b"dev-only-pii-key-not-for-prod!!!").decode()

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _int(value: str) -> int:
    return int(value.strip())


def _int_list(value: str) -> list[int]:
    return [int(part) for part in value.replace(" ", "").split(",") if part]


def _str_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _switch(value: str) -> bool:
    """A switch whose typo must not flip it silently: yes/no words only."""
    word = value.strip().lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{value!r} is neither true nor false")


# name -> (parser, default). A default of None means "unset".
SETTINGS: dict[str, tuple[Callable[[str], Any], Any]] = {
    "APP_ENV": (str, "development"),
    "DATABASE_URL": (str, None),
    "REDIS_URL": (str, None),
    "SECRET_KEY": (str, DEV_SECRET_KEY),
    # The secret of the keyed hash ID numbers are matched on (app.pii.id_number_hash); unset =
    # derived from SECRET_KEY. Changing it (or SECRET_KEY while it is unset) orphans every stored
    # hash: signals no longer meet their persons and beneficiaries.
    "IDENTITY_INDEX_KEY": (str, ""),
    "DATA_ENCRYPTION_KEY": (str, DEV_DATA_ENCRYPTION_KEY),
    # Retired keys, still accepted for reading rows written before a rotation.
    "DATA_ENCRYPTION_OLD_KEYS": (_str_list, []),
    "LEDGER_KEY_FILE": (str, None),
    # How often the worker makes sure the latest entries are covered by a signed checkpoint (each
    # commit that appends also rings for one at once).
    "LEDGER_CHECKPOINT_SECONDS": (_int, 60),
    "WECHAT_API_BASE": (str, "https://api.weixin.qq.com"),
    "WECHAT_APP_ID": (str, None),
    "WECHAT_APP_SECRET": (str, None),
    "WECHAT_TIMEOUT_SECONDS": (float, 5.0),
    # Subscribe-message template ids (from the mini-program console), one per topic; empty = the
    # topic's messages are recorded as not sent rather than sent.
    "WECHAT_TEMPLATE_CLAIM_CREATED": (str, ""),
    "WECHAT_TEMPLATE_CLAIM_REMINDER": (str, ""),
    "WECHAT_TEMPLATE_CLAIM_EXPIRED": (str, ""),
    "WECHAT_TEMPLATE_CLAIM_DISPUTED": (str, ""),
    "WECHAT_TEMPLATE_WISH_FULFILLED": (str, ""),
    "WECHAT_TEMPLATE_DONATION_THANKS": (str, ""),
    # "formal", "trial" or "developer": which mini-program version a message opens.
    "WECHAT_MINIPROGRAM_STATE": (str, "formal"),
    "NOTIFY_RELAY_SECONDS": (_int, 30),
    "NOTIFY_MAX_ATTEMPTS": (_int, 6),
    "NOTIFY_RETRY_DELAYS": (_int_list, [30, 120, 600, 3600, 21600]),
    # Money donations (the 505 fund through WeChat Pay). false: the fund is off, the service starts
    # without any WECHATPAY_* setting, even in production, and POST /donations answers 503
    # `payments_not_configured`. true (default): in production every merchant setting is required.
    "PAYMENTS_ENABLED": (_switch, True),
    # WeChat Pay API v3 (money donations), "WeChat Pay public key" mode: app/wechatpay.py.
    "WECHATPAY_API_BASE": (str, "https://api.mch.weixin.qq.com"),
    # The app id orders are placed for; unset = WECHAT_APP_ID (the mini-program the openid is from).
    "WECHATPAY_APP_ID": (str, None),
    "WECHATPAY_MCH_ID": (str, None),
    "WECHATPAY_MCH_CERT_SERIAL": (str, None),  # serial number of the merchant API certificate
    "WECHATPAY_MCH_PRIVATE_KEY_FILE": (str, None),  # apiclient_key.pem
    "WECHATPAY_API_V3_KEY": (str, None),  # 32 characters
    "WECHATPAY_PLATFORM_PUBLIC_KEY_ID": (str, None),  # "PUB_KEY_ID_..."
    "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": (str, None),  # pub_key.pem
    "WECHATPAY_NOTIFY_URL": (str, None),
    "WECHATPAY_TIMEOUT_SECONDS": (float, 5.0),
    # The 505 fund: the largest single donation, how long a WeChat Pay order stays payable
    # (its time_expire), and how reconciliation asks WeChat Pay about orders still pending.
    "DONATION_MAX_FEN": (_int, 5_000_000),
    "DONATION_ORDER_TTL_SECONDS": (_int, 2 * 3600),
    "DONATION_RECONCILE_AFTER_SECONDS": (_int, 300),
    "FUND_RECONCILE_SECONDS": (_int, 300),
    "JWT_ISSUER": (str, "weixinyuan"),
    "JWT_AUDIENCE": (str, "weixinyuan-miniprogram"),
    "ACCESS_TOKEN_TTL_SECONDS": (_int, 2 * 3600),
    # Partner systems (OAuth 2.0 client credentials): how long a partner access token lives.
    "PARTNER_TOKEN_TTL_SECONDS": (_int, 15 * 60),
    # Argon2id parameters for staff passwords (app/auth/passwords.py): RFC_9106_LOW_MEMORY
    # (default) or RFC_9106_HIGH_MEMORY; CHEAPEST only outside production (the test suite).
    "PASSWORD_HASH_PROFILE": (str, "RFC_9106_LOW_MEMORY"),
    # Staff login failure throttling (app/auth/throttle.py explains the rules): failures per
    # (address, username) lock that address out of that username; an address has a much higher
    # ceiling across usernames (one office, one NAT address); a username attacked from many
    # addresses is slowed by doubling delays up to a cap, never locked, and not at all for an
    # address it logged in from before.
    "LOGIN_MAX_FAILURES": (_int, 5),
    "LOGIN_LOCKOUT_SECONDS": (_int, 15 * 60),
    "LOGIN_ADDRESS_MAX_FAILURES": (_int, 100),
    "LOGIN_USERNAME_FREE_FAILURES": (_int, 20),
    "LOGIN_USERNAME_MAX_DELAY_SECONDS": (_int, 60),
    "LOGIN_KNOWN_ADDRESS_SECONDS": (_int, 30 * 86400),
    # Reverse proxies in front of the app whose X-Forwarded-For entry is trusted (werkzeug
    # ProxyFix x_for): the client address is the entry that many hops from the right. 0 (default)
    # ignores X-Forwarded-For entirely; behind exactly one nginx/SLB that appends to it, set 1.
    "TRUSTED_PROXY_COUNT": (_int, 0),
    # Abuse limits (miniprogram_api/ratelimit.py), limits' syntax "N/period[;N/period...]" (period: second,
    # minute, hour, day, e.g. "10/minute;100/hour"); every one must hold. A 429 `rate_limited`
    # carries Retry-After. Per-address limits are sized for a charity-day crowd behind one NAT
    # (hundreds of donors on one public address); per-user and per-username ones are lower.
    # Login (both routes share one budget per address; staff login also counts per address and
    # username, on top of the failure throttle, which counts only failures). Not per username
    # alone: anyone could then spend a username's budget and keep its owner out.
    "RATELIMIT_LOGIN_ADDRESS": (str, "100/minute;1000/hour"),
    "RATELIMIT_LOGIN_ADDRESS_USERNAME": (str, "10/minute;60/hour"),
    # POST /oauth/token (partner systems; a client needs a token every 15 minutes at most).
    "RATELIMIT_OAUTH_TOKEN_ADDRESS": (str, "30/minute;300/hour"),
    # POST /wishes/{id}/claims.
    "RATELIMIT_CLAIMS_USER": (str, "10/minute;60/hour"),
    "RATELIMIT_CLAIMS_ADDRESS": (str, "200/minute;3000/hour"),
    # POST /claims/{id}/proofs (photo uploads: each one is decoded and re-encoded).
    "RATELIMIT_UPLOADS_USER": (str, "20/minute;120/hour"),
    "RATELIMIT_UPLOADS_ADDRESS": (str, "120/minute;1500/hour"),
    # POST /donations (each one places a WeChat Pay order).
    "RATELIMIT_DONATIONS_USER": (str, "10/minute;60/hour"),
    "RATELIMIT_DONATIONS_ADDRESS": (str, "200/minute;3000/hour"),
    # How long a request holds its Idempotency-Key without renewing it. A running request renews
    # it every third of this, however slow it is (e.g. placing a WeChat Pay order); a retry may
    # take the key over only once the lease lapsed, i.e. the process holding it died.
    "IDEMPOTENCY_LEASE_SECONDS": (_int, 30),
    # A pooled database connection that rested this long is pinged before use (app/dbpool.py);
    # one used more recently is not (a round trip saved per transaction on a busy server).
    "DB_PING_IDLE_SECONDS": (_int, 1),
    "CLAIM_SLA_SECONDS": (_int, 172800),
    "SLA_CHECK_SECONDS": (_int, 60),
    # The auditor's allowance for work in flight (a claim just past due before the next sweep, a
    # message before its next attempt, an upload before its row commits).
    "AUDIT_GRACE_SECONDS": (_int, 600),
    "CLAIM_REMINDER_OFFSETS": (_int_list, [86400, 7200]),
    "CLAIM_ACTIVE_LIMIT": (_int, 3),
    "CLAIM_COOLDOWN_STRIKES": (_int, 2),
    "CLAIM_STRIKE_WINDOW_SECONDS": (_int, 30 * 86400),
    "CLAIM_COOLDOWN_SECONDS": (_int, 7 * 86400),
    "DISPUTE_EXTENSION_SECONDS": (_int, 86400),
    "MEDIA_URL_TTL_SECONDS": (_int, 300),
    "MAX_UPLOAD_BYTES": (_int, 10 * 1024 * 1024),
    "MAX_IMAGE_PIXELS": (_int, 40_000_000),
    # A proof still `processing` this long after upload lost its media job (a killed worker, a
    # flushed Redis): the sweeper rings its doorbell again.
    "PROOF_REQUEUE_SECONDS": (_int, 120),
    "MAX_JSON_BYTES": (_int, 1024 * 1024),
    "MEDIA_ROOT": (str, None),
    "FEED_CACHE_SECONDS": (float, 10.0),
    "STATS_CACHE_SECONDS": (float, 5.0),
    # Finding people (app/cases): operator data for years the chinesecalendar package does not
    # know yet (app/workdays.py: {"2027": {"holidays": [...], "workdays": [...]}}), and how often
    # the worker escalates open tasks past their due time.
    "WORKING_CALENDAR_FILE": (str, None),
    "CASES_ESCALATION_SECONDS": (_int, 600),
    "WECHAT_TEMPLATE_APPLICATION_STATUS": (str, ""),
    "LOG_LEVEL": (str, "INFO"),
    "SQL_ECHO": (_bool, False),
}

# Secrets that production must be given explicitly (and not the development value).
PRODUCTION_SECRETS = {
    "SECRET_KEY": DEV_SECRET_KEY,
    "DATA_ENCRYPTION_KEY": DEV_DATA_ENCRYPTION_KEY,
    "WECHAT_APP_ID": None,
    "WECHAT_APP_SECRET": None,
    "DATABASE_URL": None,
    "REDIS_URL": None,
    # The public ledger's signing key: without it no checkpoint could be signed.
    "LEDGER_KEY_FILE": None,
}

# Money donations cannot be taken (nor their notifications verified) without these: required in
# production unless PAYMENTS_ENABLED=false.
PRODUCTION_MERCHANT_SETTINGS = (
    "WECHATPAY_MCH_ID", "WECHATPAY_MCH_CERT_SERIAL", "WECHATPAY_MCH_PRIVATE_KEY_FILE",
    "WECHATPAY_API_V3_KEY", "WECHATPAY_PLATFORM_PUBLIC_KEY_ID",
    "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE", "WECHATPAY_NOTIFY_URL",
)


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def load_config(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for name, (parse, default) in SETTINGS.items():
        raw = environ.get(name)
        if raw is None or raw == "":
            config[name] = default
            continue
        try:
            config[name] = parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} is malformed: {exc}") from None
    return config


def finalize(config: dict[str, Any], instance_path: str) -> dict[str, Any]:
    """Fill defaults that depend on the instance folder and derive Flask/SQLAlchemy keys."""
    if config["APP_ENV"] not in {"development", "production"}:
        raise ConfigError("APP_ENV must be 'development' or 'production'")
    if not config.get("DATABASE_URL"):
        if config["APP_ENV"] == "production":  # before the SQLite default would hide it
            raise ConfigError("DATABASE_URL must be set when APP_ENV=production")
        config["DATABASE_URL"] = f"sqlite:///{Path(instance_path) / 'weixinyuan.db'}"
    if not config.get("MEDIA_ROOT"):
        config["MEDIA_ROOT"] = str(Path(instance_path) / "media")
    config["SQLALCHEMY_DATABASE_URI"] = database_uri(config["DATABASE_URL"])
    config["SQLALCHEMY_ECHO"] = config["SQL_ECHO"]
    # No pool_pre_ping: app/dbpool.py pings only connections that rested (DB_PING_IDLE_SECONDS, 1 s).
    engine_options: dict[str, Any] = {}
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        engine_options = {"connect_args": {"timeout": 30}}
    config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options)
    # Every body is capped at MAX_JSON_BYTES; the photo-upload view raises its own request's cap.
    config["MAX_CONTENT_LENGTH"] = config["MAX_JSON_BYTES"]
    config["DEV_LOGIN_ENABLED"] = config["APP_ENV"] == "development" and not config["WECHAT_APP_ID"]
    from app.auth.passwords import PROFILES

    if config["PASSWORD_HASH_PROFILE"] not in PROFILES:
        raise ConfigError(f"PASSWORD_HASH_PROFILE must be one of {', '.join(PROFILES)}")
    if int(config["TRUSTED_PROXY_COUNT"]) < 0:
        raise ConfigError("TRUSTED_PROXY_COUNT must be 0 or more")
    if int(config["IDEMPOTENCY_LEASE_SECONDS"]) < 2:
        raise ConfigError("IDEMPOTENCY_LEASE_SECONDS must be 2 or more")
    config["DATA_ENCRYPTION_KEYS"] = [
        _decode_key("DATA_ENCRYPTION_KEY", config["DATA_ENCRYPTION_KEY"])
    ] + [_decode_key("DATA_ENCRYPTION_OLD_KEYS", k) for k in config["DATA_ENCRYPTION_OLD_KEYS"]]
    if not config.get("WECHATPAY_APP_ID"):
        config["WECHATPAY_APP_ID"] = config.get("WECHAT_APP_ID")
    api_v3_key = config.get("WECHATPAY_API_V3_KEY")
    if api_v3_key and len(api_v3_key.encode()) != 32:
        raise ConfigError("WECHATPAY_API_V3_KEY must be 32 characters (the APIv3 key)")
    if config["APP_ENV"] == "production":
        check_production(config)
    return config


def check_production(config: Mapping[str, Any]) -> None:
    for name, dev_value in PRODUCTION_SECRETS.items():
        value = config.get(name)
        if not value:
            raise ConfigError(f"{name} must be set when APP_ENV=production")
        if dev_value is not None and value == dev_value:
            raise ConfigError(f"{name} still has its development value; set a real secret")
    if len(config["SECRET_KEY"]) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters in production")
    if config.get("DEV_LOGIN_ENABLED"):
        raise ConfigError("development login must be off in production")
    from app.auth.passwords import PRODUCTION_PROFILES

    if config["PASSWORD_HASH_PROFILE"] not in PRODUCTION_PROFILES:
        raise ConfigError("PASSWORD_HASH_PROFILE must be one of "
                          f"{', '.join(sorted(PRODUCTION_PROFILES))} in production")
    if config.get("PAYMENTS_ENABLED", True):
        for name in PRODUCTION_MERCHANT_SETTINGS:
            if not config.get(name):
                raise ConfigError(f"{name} must be set when APP_ENV=production (or set "
                                  "PAYMENTS_ENABLED=false to run without money donations)")
        _check_wechatpay_keys(config)
    _check_ledger_key(config)


def _check_ledger_key(config: Mapping[str, Any]) -> None:
    """The ledger key file must load now; a missing key would otherwise fail at the first entry."""
    from app.ledger.keys import KeyFileError, load_signer

    try:
        load_signer(config["LEDGER_KEY_FILE"])
    except (OSError, ValueError, KeyFileError) as exc:
        raise ConfigError(f"LEDGER_KEY_FILE: cannot load the ledger key ({exc})") from None


def _check_wechatpay_keys(config: Mapping[str, Any]) -> None:
    """The merchant private key and the platform public key must load (fail at start, not at pay)."""
    from app.wechatpay import load_private_key, load_public_key

    for name, load in (("WECHATPAY_MCH_PRIVATE_KEY_FILE", load_private_key),
                       ("WECHATPAY_PLATFORM_PUBLIC_KEY_FILE", load_public_key)):
        try:
            load(config[name])
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None


def database_uri(url: str) -> str:
    """Accept a plain postgresql:// URL and pick the psycopg 3 driver for it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _decode_key(name: str, value: str | None) -> bytes:
    if not value:
        raise ConfigError(f"{name} must be set (base64 of 32 bytes)")
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} must be base64") from None
    if len(key) != 32:
        raise ConfigError(f"{name} must decode to 32 bytes (got {len(key)})")
    return key

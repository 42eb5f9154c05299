"""Abuse limits: per-user and per-address request rates on login, claims, uploads and donations.

A view declares its limits with one line under its route:

    @blp.route("/wishes/<wish_id>/claims", methods=["POST"])
    @rate_limited("claims")                 # RATELIMIT_CLAIMS_USER + RATELIMIT_CLAIMS_ADDRESS
    ...

`rate_limited(group, keys=(...))` only marks the view (and documents its 429); `init_app(app)`
builds one Flask-Limiter per app (its storage is per instance, and tests build several apps) and
wraps every marked view of that app, so the check runs when the view is called: after the access
check has resolved the caller (`g.user`), before the body is parsed. Each (group, key) is one
budget shared by every view of the group, e.g. both login routes draw on `login:address`.

A view may carry, under EXEMPT_ATTR, a check that lets a request pass its limits uncounted: an
idempotent write (miniprogram_api/idempotent.py) lets through a request whose Idempotency-Key
already has its answer stored, so a retry after the limit gets that answer, not 429, and
replays cost no slot.

Keys: `user` (the authenticated user's id), `address` (`request.remote_addr`, which ProxyFix in
create_app sets from X-Forwarded-For only for TRUSTED_PROXY_COUNT trusted hops) and
`address_username` (the address with the staff login's username, normalised and hashed).
Limits are settings in the limits string syntax ("10/minute;100/hour"), read from
RATELIMIT_<GROUP>_<KEY> (checked at start-up, looked up on each request, so a test may set one on
the shared app with monkeypatch.setitem).

Strategy: moving window, so the wait until the next request is admitted is known exactly, and a
429 (problem+json `rate_limited`) carries that wait, rounded up, as Retry-After. Storage: the
app's Redis (the same connection pool). When Redis is unreachable the limiter keeps counting in
this process's memory and logs a warning (Flask-Limiter's in-memory fallback; it goes back to
Redis when Redis answers again); any other limiter error is logged and the request is let through
(swallow_errors): an outage of the counters never turns into 500s.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Callable

from flask import Flask, current_app, g, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_smorest import Blueprint
from limits import parse_many

from app.config import SETTINGS, ConfigError
from miniprogram_api.problems import problem

log = logging.getLogger(__name__)

ATTR = "__rate_limits__"
# A view's `() -> bool`: True when this request is answered without the work the limits guard.
EXEMPT_ATTR = "__rate_limit_exempt_when__"
STORAGE_PREFIX = "ratelimit"


def address_key() -> str:
    return f"addr:{request.remote_addr or '-'}"


def user_key() -> str:
    user = g.get("user")
    # every limited view but login requires a user; without one, count by address
    return f"user:{user.id}" if user is not None else address_key()


def address_username_key() -> str:
    """The client address and the staff login's username, as the failure throttle normalises
    it. Never per username alone: a budget anyone can spend from anywhere would let anyone keep
    the username's owner out. Never raises (an error here would count as a storage failure): a
    body without a username shares one bucket per address and is refused by validation anyway."""
    try:
        body = request.get_json(silent=True)
    except Exception:  # noqa: BLE001 - e.g. an oversized body; the view reports it
        body = None
    name = body.get("username") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        return f"{address_key()}:username:-"
    # surrogatepass: a lone surrogate (valid JSON) must not make this raise; validation refuses it
    digest = hashlib.sha256(name.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
    return f"{address_key()}:username:{digest[:32]}"


KEY_FUNCS: dict[str, Callable[[], str]] = {
    "user": user_key,
    "address": address_key,
    "address_username": address_username_key,
}

# Only used to document the 429 on the marked views (never registered).
_doc = Blueprint("ratelimit-doc", __name__)


def setting_name(group: str, key: str) -> str:
    return f"RATELIMIT_{group.upper()}_{key.upper()}"


def rate_limited(group: str, *, keys: tuple[str, ...] = ("user", "address")) -> Callable:
    """Declare the limits of a view: `@rate_limited("claims")` (per user and per address), or
    `@rate_limited("login", keys=("address", "address_username"))`. Put it under `@blp.route`."""
    for key in keys:
        if key not in KEY_FUNCS:
            raise ValueError(f"rate_limited: unknown key {key!r}")
        if setting_name(group, key) not in SETTINGS:
            raise ValueError(f"rate_limited: no setting {setting_name(group, key)}")

    def decorator(func: Callable) -> Callable:
        wrapped = _doc.alt_response(429, response="TOO_MANY_REQUESTS")(func)
        setattr(wrapped, ATTR, (*getattr(func, ATTR, ()), *((group, key) for key in keys)))
        return wrapped

    return decorator


def storage_uri(redis_url: str) -> str:
    """limits names the unix-socket scheme `redis+unix://` (the embedded Redis is `unix://`)."""
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://"):]
    return redis_url


def check_limits(config: dict) -> None:
    """Refuse a malformed limit string at start-up, naming the setting."""
    for name in SETTINGS:
        if name.startswith("RATELIMIT_"):
            try:
                if not parse_many(str(config[name])):
                    raise ValueError("empty")
            except ValueError as exc:
                raise ConfigError(f"{name} is not a rate limit like '10/minute;100/hour': "
                                  f"{exc}") from None


def init_app(app: Flask) -> Limiter:
    check_limits(app.config)
    limiter = Limiter(
        key_func=address_key,
        storage_uri=storage_uri(app.config["REDIS_URL"]),
        # one pool (and its timeouts) for everything this app sends to Redis
        storage_options={"connection_pool": app.extensions["redis"].connection_pool},
        strategy="moving-window",
        key_prefix=STORAGE_PREFIX,
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        fail_on_first_breach=False,  # every limit is checked, so Retry-After is the longest wait
        headers_enabled=False,  # X-RateLimit-* would cost a Redis call on every success
    )
    limiter.init_app(app)
    app.extensions["ratelimit"] = limiter
    if not any(app.config.get(name) for name in ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION")):
        # Every limit here is a view's own, checked by its wrapper (below) when the view runs;
        # with no default or application-wide limit, Flask-Limiter's check before every request
        # finds nothing to count and only costs time (a fifth of a cached wish card's CPU).
        app.before_request_funcs[None].remove(limiter._check_request_limit)
    # Its after_request hook writes X-RateLimit-* headers (disabled above) and counts `deduct_when`
    # limits (none here); its teardown resets a per-request context that dies with the request
    # anyway. On every request they cost ~5 % of a cached wish card's CPU.
    app.after_request_funcs[None] = [
        hook for hook in app.after_request_funcs[None]
        if getattr(hook, "func", None) is not getattr(Limiter, "_Limiter__inject_headers")]
    app.teardown_request_funcs[None] = [
        hook for hook in app.teardown_request_funcs[None]
        if getattr(hook, "__self__", None) is not limiter]
    for endpoint, view in list(app.view_functions.items()):
        specs = getattr(view, ATTR, ())
        exempt_when = getattr(view, EXEMPT_ATTR, None)
        for group, key in specs:
            view = limiter.shared_limit(_setting(setting_name(group, key)),
                                        scope=f"{group}:{key}", key_func=KEY_FUNCS[key],
                                        exempt_when=exempt_when)(view)
        if specs:
            app.view_functions[endpoint] = view
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    return limiter


def _setting(name: str) -> Callable[[], str]:
    """The limit as configured when the request runs (a test may change one app's setting)."""
    return lambda: current_app.config[name]


def retry_after(limiter: Limiter) -> int:
    """Whole seconds until every breached limit of this request admits one more request."""
    now = time.time()
    wait = 0.0
    for limit in limiter.current_limits:
        if not limit.breached:
            continue
        try:
            reset, remaining = limit.window
            wait = max(wait, 0.0 if remaining > 0 else reset - now)
        except Exception:  # noqa: BLE001 - storage gone since the check: the whole window
            log.warning("rate limit window unavailable; Retry-After is the full window")
            wait = max(wait, float(limit.limit.get_expiry()))
    return max(1, math.ceil(wait))


def _too_many_requests(exc: RateLimitExceeded):
    seconds = retry_after(current_app.extensions["ratelimit"])
    return problem(429, "rate_limited", f"请求过于频繁，请 {seconds} 秒后再试",
                   headers={"Retry-After": str(seconds)})

"""Login failure counting: after LOGIN_MAX_FAILURES failures for one username or one address
within LOGIN_LOCKOUT_SECONDS, further attempts get 429 `too_many_attempts` with Retry-After."""
from __future__ import annotations

import hashlib
import logging

import redis
from flask import current_app

from app.errors import TooManyAttempts, Unavailable
from app.redis_conn import get_redis

log = logging.getLogger(__name__)


def _keys(username: str, address: str) -> list[str]:
    user_digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [f"login-fail:user:{user_digest}", f"login-fail:addr:{address}"]


def check_not_locked(username: str, address: str) -> None:
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    try:
        pipe = get_redis().pipeline()
        for key in _keys(username, address):
            pipe.get(key)
            pipe.ttl(key)
        values = pipe.execute()
    except redis.RedisError:
        log.warning("login throttle unavailable: redis unreachable")
        raise Unavailable("service_unavailable", "登录服务暂时不可用，请稍后再试") from None
    for count, ttl in zip(values[::2], values[1::2]):
        if count is not None and int(count) >= limit:
            retry = max(int(ttl), 1)
            raise TooManyAttempts("too_many_attempts", f"登录失败次数过多，请 {retry} 秒后再试",
                                  retry_after=retry)


def record_failure(username: str, address: str) -> None:
    window = current_app.config["LOGIN_LOCKOUT_SECONDS"]
    try:
        pipe = get_redis().pipeline()
        for key in _keys(username, address):
            pipe.incr(key)
            pipe.expire(key, window, nx=True)
        pipe.execute()
    except redis.RedisError:
        log.warning("could not record a login failure: redis unreachable")


def clear_failures(username: str) -> None:
    try:
        get_redis().delete(_keys(username, "-")[0])
    except redis.RedisError:
        pass

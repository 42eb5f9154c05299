"""Staff login failure throttling, in Redis. A refused attempt is 429 `too_many_attempts` with
Retry-After, before the password is checked (so it is not counted as a failure either).

Failures count three ways, each with the rule that fits who it could hurt (the OWASP
Authentication and Credential Stuffing cheat sheets: throttle per account with growing delays
rather than lock it, lock out per source and account, keep a separate higher ceiling per source):

1. Per (address, username): LOGIN_MAX_FAILURES failures within LOGIN_LOCKOUT_SECONDS lock *that
   address* out of *that username* for the rest of the window. A guesser stops; the account's
   owner at another address, and colleagues behind the same office address logging into their
   own accounts, are not affected.
2. Per address: LOGIN_ADDRESS_MAX_FAILURES failures within LOGIN_LOCKOUT_SECONDS (across all
   usernames, far above rule 1: one office shares one NAT address) lock the address out of staff
   login for the rest of the window: one source spraying passwords over many usernames.
3. Per username, from every address: the first LOGIN_USERNAME_FREE_FAILURES failures cost
   nothing; each further one makes the *next* attempt wait 2, 4, 8, ... seconds, at most
   LOGIN_USERNAME_MAX_DELAY_SECONDS, counted from that failure. The count ends
   LOGIN_LOCKOUT_SECONDS after the latest failure. This caps a guesser using many addresses at
   about one guess per maximum delay, but never locks the account: its owner waits at most the
   maximum delay, and an address the account logged in from within LOGIN_KNOWN_ADDRESS_SECONDS
   is not delayed at all (the address-based stand-in for OWASP's "device cookie", as this API
   has no cookies), so a flood against a username does not keep its owner out at the office.

A successful login clears rules 1 and 3 for its username (not rule 2: one success does not
excuse an address's other failures) and marks its address as known for the username.
When Redis is unreachable the check fails closed (503): staff login without throttling would be
open to guessing.
"""
from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

import redis

from app.errors import DomainError, TooManyAttempts, Unavailable
from app.redis_conn import get_redis
from app.settings import settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Keys:
    pair: str     # failures of this username from this address (rule 1)
    address: str  # failures from this address, any username (rule 2)
    user: str     # failures of this username, any address (rule 3)
    delay: str    # exists while the username's next attempt must wait (rule 3)
    known: str    # exists while this address is one the username logged in from


def _keys(username: str, address: str) -> _Keys:
    user = hashlib.sha256(username.strip().lower().encode("utf-8", "surrogatepass")
                          ).hexdigest()[:32]
    return _Keys(pair=f"login-fail:pair:{user}:{address}", address=f"login-fail:addr:{address}",
                 user=f"login-fail:user:{user}", delay=f"login-delay:user:{user}",
                 known=f"login-known:{user}:{address}")


def _unavailable() -> DomainError:
    log.warning("login throttle unavailable: redis unreachable")
    return Unavailable("service_unavailable", "登录服务暂时不可用，请稍后再试")


def _refuse(seconds: float, detail: str) -> DomainError:
    retry = max(1, math.ceil(seconds))
    return TooManyAttempts("too_many_attempts", detail.format(retry=retry),
                           retry_after=retry)


def check_not_locked(username: str, address: str) -> None:
    """Raise 429 if any rule holds this attempt back."""
    config = settings()
    keys = _keys(username, address)
    try:
        pipe = get_redis().pipeline()
        for key in (keys.pair, keys.address):
            pipe.get(key)
            pipe.pttl(key)
        pipe.pttl(keys.delay)
        pipe.exists(keys.known)
        pair, pair_ttl, by_address, address_ttl, delay_ttl, known = pipe.execute()
    except redis.RedisError:
        raise _unavailable() from None
    if pair is not None and int(pair) >= config["LOGIN_MAX_FAILURES"]:
        raise _refuse(pair_ttl / 1000, "登录失败次数过多，请 {retry} 秒后再试")
    if by_address is not None and int(by_address) >= config["LOGIN_ADDRESS_MAX_FAILURES"]:
        raise _refuse(address_ttl / 1000, "该网络登录失败次数过多，请 {retry} 秒后再试")
    if delay_ttl > 0 and not known:
        raise _refuse(delay_ttl / 1000, "该账号近期登录失败次数过多，请 {retry} 秒后再试")


def record_failure(username: str, address: str) -> None:
    config = settings()
    window = config["LOGIN_LOCKOUT_SECONDS"]
    keys = _keys(username, address)
    try:
        pipe = get_redis().pipeline()
        for key in (keys.pair, keys.address):
            pipe.incr(key)
            pipe.expire(key, window, nx=True)  # a fixed window from the first failure
        pipe.incr(keys.user)
        pipe.expire(keys.user, window)  # lasts while failures keep coming
        results = pipe.execute()
        beyond = int(results[4]) - config["LOGIN_USERNAME_FREE_FAILURES"]
        if beyond > 0:
            delay = min(2 ** min(beyond, 32), config["LOGIN_USERNAME_MAX_DELAY_SECONDS"])
            get_redis().set(keys.delay, "1", ex=max(1, int(delay)))
    except redis.RedisError:
        log.warning("could not record a login failure: redis unreachable")


def record_success(username: str, address: str) -> None:
    keys = _keys(username, address)
    try:
        pipe = get_redis().pipeline()
        pipe.delete(keys.pair, keys.user, keys.delay)
        pipe.set(keys.known, "1", ex=settings()["LOGIN_KNOWN_ADDRESS_SECONDS"])
        pipe.execute()
    except redis.RedisError:
        log.warning("could not record a login success: redis unreachable")

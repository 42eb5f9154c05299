"""Cache of the public feed: shared by everyone, so cached; never shows a wish that left `open`.

Each API process keeps rendered pages in memory under a *generation* number that lives in Redis.
Any move into or out of `open` bumps the generation twice: once before the commit and once after
it, so a page rendered from the old state in between is stored under a generation that is already
gone. One Redis GET per feed request; if Redis is unreachable the cache is bypassed, not trusted.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

import redis
from sqlalchemy.orm import Session

from app.redis_conn import get_redis
from app.txn import on_commit

log = logging.getLogger(__name__)

GENERATION_KEY = "feed:generation"
MAX_ENTRIES = 512

_lock = threading.Lock()
_pages: "OrderedDict[tuple, tuple[float, bytes, str]]" = OrderedDict()


def _bump(client: redis.Redis) -> None:
    try:
        client.incr(GENERATION_KEY)
    except redis.RedisError:
        log.warning("could not bump the feed generation; cached pages expire by TTL")


def invalidate(session: Session) -> None:
    client = get_redis()
    _bump(client)
    on_commit(session, lambda: _bump(client))


def generation() -> int | None:
    try:
        value = get_redis().get(GENERATION_KEY)
    except redis.RedisError:
        return None
    return int(value or 0)


def get(gen: int, key: tuple) -> tuple[bytes, str] | None:
    with _lock:
        hit = _pages.get((gen, key))
        if hit is None:
            return None
        expires, body, etag = hit
        if expires < time.monotonic():
            del _pages[(gen, key)]
            return None
        _pages.move_to_end((gen, key))
        return body, etag


def put(gen: int, key: tuple, body: bytes, etag: str, ttl: float) -> None:
    with _lock:
        _pages[(gen, key)] = (time.monotonic() + ttl, body, etag)
        while len(_pages) > MAX_ENTRIES:
            _pages.popitem(last=False)


def clear() -> None:
    with _lock:
        _pages.clear()

"""Rendered pages, kept per process under the version numbers in Redis that say when they change.

A page is the same for everyone, so each process keeps the HTML it rendered and serves it again
while the numbers it was rendered under still hold (at most FEED_CACHE_SECONDS in any case):

- the wish wall under the feed *generation* (app.wishes.feed_cache): the JSON feed's own rule;
- a wish's page under that wish's *card version* (any change to the wish row, which every claim
  step makes, bumps it) and the *ledger version* (its link into the ledger depends on the size);
- the ledger's pages under the ledger version, which a commit hook here bumps whenever a
  transaction appended a ledger entry, once, after the commit (`_ledger_grows` says why once).

The numbers are read before the database is, so a page rendered from a state that changed
meanwhile is stored under a number already gone. A process trusts a number it read for
RECHECK_SECONDS, and forgets them all whenever one of its own sessions commits a write: its own
changes reach its pages at once, another process's within RECHECK_SECONDS (the pages say
`Cache-Control: public, max-age=30`, so a browser or CDN may hold them far longer anyway). A hit
then costs no database query and, most of the time, no Redis round trip either: under load that
round trip (a context switch to redis-server and back on a busy machine) cost as much as the
rest of the request (bench/README.md). Redis unreachable: pages are rendered every time, never
served from an unchecked cache.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from typing import Callable, Hashable

import redis
from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.ledger import log as ledger_log
from app.redis_conn import get_redis
from app.uow import pipeline_on_commit
from app.wishes import feed_cache

log = logging.getLogger(__name__)

LEDGER_VERSION_KEY = "ledger:version"
MAX_PAGES = 2048  # ~16 kB each: at most ~32 MB a process
RECHECK_SECONDS = 1.0  # how long a version number read from Redis is trusted
MAX_NUMBERS = 20_000  # version numbers remembered (one per wish page read, and two more)


class _Pages:
    """A small thread-safe LRU of (versions, key) -> (expires, body)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._items: "OrderedDict[tuple, tuple[float, bytes]]" = OrderedDict()

    def get(self, versions: tuple, key: Hashable) -> bytes | None:
        with self._lock:
            hit = self._items.get((versions, key))
            if hit is None:
                return None
            if hit[0] < time.monotonic():
                del self._items[(versions, key)]
                return None
            self._items.move_to_end((versions, key))
            return hit[1]

    def put(self, versions: tuple, key: Hashable, body: bytes, ttl: float) -> None:
        with self._lock:
            self._items[(versions, key)] = (time.monotonic() + ttl, body)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class _Numbers:
    """The version numbers last read from Redis, each with when it was asked for."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int]] = {}

    def fresh(self, names: list[str]) -> tuple[int, ...] | None:
        """All of `names`, if each was read less than RECHECK_SECONDS ago; else None."""
        oldest = time.monotonic() - RECHECK_SECONDS
        with self._lock:
            found = [self._seen.get(name) for name in names]
        if any(hit is None or hit[0] < oldest for hit in found):
            return None
        return tuple(hit[1] for hit in found)

    def remember(self, names: list[str], numbers: tuple, asked_at: float) -> None:
        with self._lock:
            if len(self._seen) > self.max_entries:
                self._seen.clear()
            for name, number in zip(names, numbers):
                if number is not None:
                    self._seen[name] = (asked_at, number)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


_pages = _Pages(MAX_PAGES)
_numbers = _Numbers(MAX_NUMBERS)


def clear() -> None:
    _pages.clear()
    _numbers.clear()


def _epoch() -> int:
    """Where a missing number starts: at random, so it never climbs back to one that pages
    cached before (say, before Redis restarted empty) are stored under."""
    return secrets.randbits(52)


def _serve(versions: list[str], key: Hashable, render: Callable[[], bytes],
           lazy: tuple[str, ...] = ()) -> bytes:
    """The body of `render()`, or the one cached under the current values of `versions`.

    A missing number is created (at a random start) after the page rendered; for the `lazy` ones
    (a wish's card version) only if it rendered, so ids the public cannot see never make keys.
    """
    ttl = float(current_app.config["FEED_CACHE_SECONDS"])
    numbers = _numbers.fresh(versions)
    if numbers is None:
        asked_at = time.monotonic()
        try:
            raw = get_redis().mget(versions)
        except redis.RedisError:
            return render()  # bypass, never trust
        numbers = tuple(None if value is None else int(value) for value in raw)
        _numbers.remember(versions, numbers, asked_at)
    if None not in numbers and ttl > 0:
        hit = _pages.get(numbers, key)
        if hit is not None:
            return hit
    body = render()  # raises for a page that is not there: nothing is stored
    missing = [name for name, number in zip(versions, numbers) if number is None]
    if not missing:
        if ttl > 0:
            _pages.put(numbers, key, body, ttl)
        return body
    try:
        client = get_redis()
        for name in missing:
            client.set(name, _epoch(), nx=True,
                       ex=feed_cache.CARD_VERSION_SECONDS if name in lazy else None)
    except redis.RedisError:
        pass  # its next reads stay uncached, which is safe
    return body


def wall(key: Hashable, render: Callable[[], bytes]) -> bytes:
    """A wish-wall page (`key`: its query string and anything else it depends on)."""
    return _serve([feed_cache.GENERATION_KEY], ("wall", key), render)


def wish(wish_id: str, key: Hashable, render: Callable[[], bytes]) -> bytes:
    """A wish's page (`key`: the id and anything else it depends on)."""
    card = feed_cache.CARD_VERSION_KEY.format(wish_id)
    return _serve([card, LEDGER_VERSION_KEY], ("wish", key), render, lazy=(card,))


def ledger(key: Hashable, render: Callable[[], bytes]) -> bytes:
    """A page of the ledger (`key`: its query string and page size)."""
    return _serve([LEDGER_VERSION_KEY], ("ledger", key), render)


# --- the ledger version ------------------------------------------------------------------------

def _bump_ledger(pipe) -> None:
    pipe.set(LEDGER_VERSION_KEY, _epoch(), nx=True)
    pipe.incr(LEDGER_VERSION_KEY)


def _ledger_bumped(replies) -> None:
    if isinstance(replies, Exception) or any(isinstance(r, Exception) for r in replies):
        log.warning("could not bump the ledger version; cached ledger pages expire by TTL")


def _ledger_grows(session: Session) -> None:
    """Any transaction that appended to the ledger (app.ledger.log.append, whatever called it;
    its INSERT is not the ORM's, so no flush shows it) makes the ledger's pages, and the wish
    pages that link into it, stale: the ledger version is bumped once, after the commit, in the
    one Redis round trip the transaction makes then (with the checkpoint bell, app.uow
    .pipeline_on_commit). A page rendered before the bump (from the state before the commit, or
    after it) is stored under the number the bump retires, and a read that starts after the
    writer's response reads the new number. Unlike the card versions, no bump before the commit:
    it cost an append a Redis round trip (a fifth of its time, bench/README.md) and only
    narrowed what a crash or a Redis failure between the commit and the bump leaves: ledger
    pages cached before the append, served until FEED_CACHE_SECONDS (the pages' own
    Cache-Control lets a browser keep them 30 s anyway)."""
    if not ledger_log.appended_in(session):
        return
    session.info[_WROTE] = True
    if not has_app_context():  # no app, no Redis, no process serving pages from this session
        return
    pipeline_on_commit(session, get_redis(), _bump_ledger, _ledger_bumped,
                       key="site:ledger-version")


# --- this process's own writes -----------------------------------------------------------------

_WROTE = "site:wrote"


def _note_write(session: Session, _flush_context, _instances) -> None:
    if session.new or session.dirty or session.deleted:
        session.info[_WROTE] = True


def _forget_numbers(session: Session) -> None:
    """A write committed here was bumped in Redis (feed_cache, the hook above): read the numbers
    again, so this process shows it at once."""
    if session.info.pop(_WROTE, False):
        _numbers.clear()


def _forget_write(session: Session) -> None:
    session.info.pop(_WROTE, None)


_LISTENERS = (("before_commit", _ledger_grows), ("before_flush", _note_write),
              ("after_commit", _forget_numbers), ("after_rollback", _forget_write))


def listen() -> None:
    """Install the session hooks above (public_site.register does, once): nothing is registered
    by importing this module."""
    for name, listener in _LISTENERS:
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)

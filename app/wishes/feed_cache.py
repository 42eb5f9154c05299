"""Caches of what the public reads: feed pages and wish cards. Never shows a stale wish.

Each API process keeps rendered bodies in memory, each stored under a version number that lives in
Redis and is read once per request, before the database is:

- feed pages under one *generation*: any move into or out of `open` bumps it (lifecycle.transition);
- a wish card under that wish's own *card version*: any change to a wish row, or to the alias or
  birth year of its beneficiary, bumps it (a flush hook, installed by the app factory with
  `listen()`, so no write path can forget it).

A change bumps its number twice: once before the commit and once after it, so a body rendered from
the old state in between is stored under a number that is already gone. A transaction bumps each
number at most once before its commit (a second flush touching the same wish needs no second bump:
the bump after the commit covers every read in between) and once after it; the feed generation
goes with the card versions of the flush that writes the move, and everything after the commit
goes in one Redis round trip. If Redis is unreachable the cache is bypassed, not trusted.

Reading the numbers costs no round trip most of the time: each process remembers the numbers it
read while a subscription tells it which ones every bump changes (version_watch).
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from typing import Callable, Iterable

import redis
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, scoped_session

from app.redis_conn import get_redis
from app.settings import has_environment
from app.uow import on_commit
from app.wishes.public import BENEFICIARY_FIELDS
from app.wishes.version_watch import channel_of, watch

log = logging.getLogger(__name__)

GENERATION_KEY = "feed:generation"
CARD_VERSION_KEY = "card:version:{}"
# A card version outlives any body cached under it by far; an expired (or flushed) key starts
# again at a random epoch, so it never matches a body cached before.
CARD_VERSION_SECONDS = 86400


class _Bodies:
    """A small thread-safe LRU of (version, key) -> (expires, body, etag)."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._items: "OrderedDict[tuple, tuple[float, bytes, str]]" = OrderedDict()

    def get(self, version: int, key) -> tuple[bytes, str] | None:
        with self._lock:
            hit = self._items.get((version, key))
            if hit is None:
                return None
            expires, body, etag = hit
            if expires < time.monotonic():
                del self._items[(version, key)]
                return None
            self._items.move_to_end((version, key))
            return body, etag

    def put(self, version: int, key, body: bytes, etag: str, ttl: float) -> None:
        with self._lock:
            self._items[(version, key)] = (time.monotonic() + ttl, body, etag)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_pages = _Bodies(max_entries=512)
_cards = _Bodies(max_entries=4096)


def _safely(action: Callable[[redis.Redis], object], what: str) -> None:
    try:
        action(get_redis())
    except redis.RedisError:
        log.warning("could not bump the %s; cached bodies expire by TTL", what)


def _epoch() -> int:
    """Where a missing counter starts (first use, or Redis restarted empty): a random number, so
    the counter never climbs back to a number that bodies cached before the restart are under."""
    return secrets.randbits(52)


def _read(client: redis.Redis, key: str, ttl: int | None = None) -> int:
    trusted = watch.trusted(client)
    if trusted:
        known = watch.known(key)
        if known is not None:
            return known
    seq = watch.seq
    value = client.get(key)
    if value is None:
        client.set(key, _epoch(), nx=True, ex=ttl)
        value = client.get(key)
    if trusted:
        watch.remember(key, int(value), seq)
    return int(value)


_BUMPED = "feed_cache_bumped"


class _Bumped:
    """What one transaction bumps: before its commit at most once per number, and after it all
    of them in one callback."""

    def __init__(self, transaction) -> None:
        self.transaction = transaction
        self.generation = False          # the feed generation is bumped by this transaction
        self.generation_pending = False  # ... and waits for the next flush's pipeline
        self.cards: set[str] = set()
        self.after_commit = False


def _bumped_in_transaction(session: Session) -> _Bumped:
    """A fresh record for each transaction (the root transaction object tells them apart)."""
    if isinstance(session, scoped_session):
        session = session()
    transaction = session.get_transaction()
    held = session.info.get(_BUMPED)
    if held is None or held.transaction is not transaction:
        held = session.info[_BUMPED] = _Bumped(transaction)
    return held


def _bump(generation: bool, wish_ids: Iterable[str],
          settle: bool = False) -> Callable[[redis.Redis], None]:
    """The feed generation and/or card versions (`bump_numbers`), then forgotten here."""
    def bump(client: redis.Redis) -> None:
        names = [GENERATION_KEY] if generation else []
        names += [CARD_VERSION_KEY.format(wish_id) for wish_id in wish_ids]
        try:
            bump_numbers(client, names, settle=settle)
        finally:
            watch.forget(names)  # this process reads them again, whether the bump got through
    return bump


def bump_numbers(client: redis.Redis, names: list[str], settle: bool = False) -> None:
    """Bump the version numbers `names` in one round trip that also tells every process's version
    watch they changed (the PUBLISH after the INCRs, so a process that forgets a number reads the
    new one).

    `settle` (the bump after a commit) adds a second round trip, a PING: Redis writes a PUBLISH's
    reply and its messages to the listeners' sockets in the same turn of its event loop, but in
    no set order, so a response sent on the strength of the first reply could reach a client, and
    its next request another process, before the message reached that process's socket (a
    redis-server descheduled between two writes, on a loaded machine). The PING is answered in a
    later turn, after every write of the earlier one: once it returns, every listener's socket
    holds the message, and a read that starts later sees it (version_watch)."""
    pipe = client.pipeline(transaction=False)
    for key in names:
        if key == GENERATION_KEY:
            pipe.set(key, _epoch(), nx=True)
            pipe.incr(key)
        else:
            pipe.set(key, _epoch(), nx=True, ex=CARD_VERSION_SECONDS)
            pipe.incr(key)
            pipe.expire(key, CARD_VERSION_SECONDS)
    pipe.publish(channel_of(client), "\n".join(names))
    pipe.execute()
    if settle:
        client.ping()


def _bump_after_commit(session: Session, bumped: _Bumped) -> None:
    if not bumped.after_commit:
        bumped.after_commit = True  # one callback; it reads what the transaction bumped by then
        on_commit(session, lambda: _safely(
            _bump(bumped.generation, sorted(bumped.cards), settle=True),
            "feed generation and card versions"))


def invalidate(session: Session) -> None:
    """Feed pages: call inside the transaction that moves a wish into or out of `open`."""
    bumped = _bumped_in_transaction(session)
    if bumped.generation:
        return  # bumped (or to be) before the commit already, and after it
    bumped.generation = True
    _bump_after_commit(session, bumped)
    if session.new or session.dirty or session.deleted:
        bumped.generation_pending = True  # with the flush of the move's rows, one round trip
    else:
        _safely(_bump(True, ()), "feed generation")


def generation() -> int | None:
    try:
        return _read(get_redis(), GENERATION_KEY)
    except redis.RedisError:
        return None


def get(gen: int, key: tuple) -> tuple[bytes, str] | None:
    return _pages.get(gen, key)


def remembered_page(client: redis.Redis, key) -> tuple[bytes, str] | None:
    """A feed page cached under the generation this process remembers, if the version watch
    vouches for it (no Redis round trip, no application context); else None."""
    if not watch.trusted(client):
        return None
    gen = watch.known(GENERATION_KEY)
    return None if gen is None else _pages.get(gen, key)


def remembered_card(client: redis.Redis, wish_id: str) -> bytes | None:
    """A card cached under the card version this process remembers, as `remembered_page`."""
    if not watch.trusted(client):
        return None
    number = watch.known(CARD_VERSION_KEY.format(wish_id))
    hit = None if number is None else _cards.get(number, wish_id)
    return None if hit is None else hit[0]


def put(gen: int, key: tuple, body: bytes, etag: str, ttl: float) -> None:
    _pages.put(gen, key, body, etag, ttl)


def clear() -> None:
    _pages.clear()
    _cards.clear()
    watch.clear()


# --- wish cards ----------------------------------------------------------------------------------

def card(wish_id: str, render: Callable[[], bytes], ttl: float) -> bytes:
    """The public card of a wish: from this process's cache if its card version still matches,
    else `render()` (which reads the database and raises for a wish the public may not see).

    The version is read before `render()` reads the database. A wish without a version yet
    is rendered uncached and then given one; reading never creates a version for an id that
    `render()` refused, so ids that are not wishes cannot fill Redis.
    """
    key = CARD_VERSION_KEY.format(wish_id)
    try:
        client = get_redis()
        trusted = watch.trusted(client)
        raw = watch.known(key) if trusted else None
        if raw is None:
            seq = watch.seq
            raw = client.get(key)
            if raw is not None and trusted:
                watch.remember(key, int(raw), seq)
    except redis.RedisError:
        return render()  # bypass, never trust
    if raw is not None:
        hit = _cards.get(int(raw), wish_id)
        if hit is not None:
            return hit[0]
    body = render()
    if raw is not None:
        _cards.put(int(raw), wish_id, body, "", ttl)
    else:
        # The wish's first version, set by this read: if the SET wins, no writer bumped between
        # the GET and now (its bump would have made the key), and any later bump moves the
        # version past it, so the body just read is cached under it (the next read is a hit).
        epoch = _epoch()
        try:
            if client.set(key, epoch, nx=True, ex=CARD_VERSION_SECONDS):
                _cards.put(epoch, wish_id, body, "", ttl)
                if trusted:
                    watch.remember(key, epoch, seq)
        except redis.RedisError:
            pass  # its next reads stay uncached, which is safe
    return body


def listen() -> None:
    """Install the flush hook that bumps card versions (the app factory does, once): nothing is
    registered by importing this module."""
    if not event.contains(Session, "before_flush", _cards_changed):
        event.listen(Session, "before_flush", _cards_changed)


def _cards_changed(session: Session, _flush_context, _instances) -> None:
    """Bump the card version of every wish whose row (or beneficiary's public part) changes."""
    from app.beneficiaries.models import Beneficiary
    from app.wishes.models import Wish

    ids = {obj.id for obj in session.deleted if isinstance(obj, Wish)}
    ids |= {obj.id for obj in session.dirty
            if isinstance(obj, Wish) and session.is_modified(obj, include_collections=False)}
    beneficiaries = [obj.id for obj in session.dirty if isinstance(obj, Beneficiary)
                     and any(inspect(obj).attrs[name].history.has_changes()
                             for name in BENEFICIARY_FIELDS)]
    if beneficiaries:
        with session.no_autoflush:
            ids |= set(session.scalars(
                select(Wish.id).where(Wish.beneficiary_id.in_(beneficiaries))))
    ids.discard(None)
    if not has_environment():  # no app, no Redis, no process serving cards from this session
        return
    bumped = _bumped_in_transaction(session)
    new = ids - bumped.cards
    generation = bumped.generation_pending
    if not new and not generation:
        return
    bumped.generation_pending = False
    bumped.cards |= new
    _bump_after_commit(session, bumped)
    _safely(_bump(generation, sorted(new)), "feed generation and card versions")

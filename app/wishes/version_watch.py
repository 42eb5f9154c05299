"""Version numbers read from Redis, kept by this process while Redis tells it when they change.

The public caches (feed_cache) store rendered bodies under version numbers in Redis, and a read
must see every change committed before it started. Asking Redis for the number on every read costs
a round trip (~100 µs of redis-py CPU, as much as the rest of a cached read). So each process
remembers the numbers it read, and every bump also PUBLISHes the names it changed, in the same
pipeline, on a channel of the Redis database (`CHANNEL`). A thread per process listens and forgets
each changed name; the next read asks Redis again.

A remembered number is used only while that is safe:

- the listener is subscribed to the database the caller's client talks to, and heard from Redis
  (a message or the answer to its own PING every `PING_SECONDS`) within `LIVENESS_SECONDS`: a lost
  or half-open connection, a starved thread or a restarted Redis falls back to a GET per read;
- nothing is waiting unread on the listener's socket, and the listener is not between taking
  bytes off it and forgetting what they name (a lock covers both): a message that reached this
  process's socket before a read began is never skipped. A bump after a commit returns only once
  every listener's socket holds its message (feed_cache.bump_numbers), so a request sent after a
  write's response sees the write, whichever process serves it;
- a number is stored only if no message arrived, and the subscription did not change, between the
  GET that read it and the store (a change racing with the read is never remembered as current);
- a number is kept at most `MAX_AGE_SECONDS`, and all are dropped on any (re)connection;
- this process's own bumps forget their names at once (`forget`), whether or not they reached
  Redis: the next read here asks again.

"""
from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import Iterable

import redis

log = logging.getLogger(__name__)

CHANNEL = "wxy:versions-changed:{db}"  # per database: pub/sub channels are server-wide
PING_SECONDS = 1.0
LIVENESS_SECONDS = 3.0
MAX_AGE_SECONDS = 60.0
MAX_NUMBERS = 50_000  # ~100 bytes each
_RECONNECT_SECONDS = 1.0


def readable(sock, timeout: float) -> bool:
    """Whether `sock` has bytes (or an error or hang-up) to read, waiting up to `timeout`
    seconds. poll(), not select(): select() refuses descriptors numbered 1024 and above, which a
    busy process's sockets reach."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(timeout * 1000))


def channel_of(client: redis.Redis) -> str:
    return CHANNEL.format(db=client.connection_pool.connection_kwargs.get("db", 0))


def _server_of(client: redis.Redis) -> tuple:
    kwargs = client.connection_pool.connection_kwargs
    return tuple(kwargs.get(name) for name in ("host", "port", "path", "db", "username"))


class _Watch:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Held by the listener from taking bytes off its socket until it has forgotten what they
        # name, and by a reader checking the socket: no message is ever neither in the socket
        # nor applied when a reader looks.
        self._draining = threading.Lock()
        self._numbers: dict[str, tuple[float, int]] = {}
        self.seq = 0  # moves on every forget and every (re)subscription
        self._pid: int | None = None
        self._server: tuple | None = None  # what the listener is subscribed to
        self._sock = None  # the listener's socket, while subscribed
        self._heard = 0.0  # monotonic time the listener last heard from Redis
        self._stop: threading.Event | None = None

    # --- readers -------------------------------------------------------------------------------

    def trusted(self, client: redis.Redis) -> bool:
        """May remembered numbers be used for reads through `client`? Starts the listener in this
        process on first use (after a fork, again)."""
        if self._pid != os.getpid():
            self._start(client)
            return False
        if self._sock is None or self._server != _server_of(client):
            return False
        if time.monotonic() - self._heard > LIVENESS_SECONDS:
            return False
        with self._draining:
            sock = self._sock
            if sock is None:
                return False
            try:
                return not readable(sock, 0)
            except (OSError, ValueError):
                return False

    def known(self, name: str) -> int | None:
        hit = self._numbers.get(name)
        if hit is None or time.monotonic() - hit[0] > MAX_AGE_SECONDS:
            return None
        return hit[1]

    def remember(self, name: str, number: int, seq: int) -> None:
        """Keep `number`, read from Redis by a GET sent when `seq` was current."""
        with self._lock:
            if seq != self.seq or self._sock is None:
                return
            if len(self._numbers) >= MAX_NUMBERS:
                self._numbers.clear()
            self._numbers[name] = (time.monotonic(), number)

    def forget(self, names: Iterable[str]) -> None:
        with self._lock:
            self.seq += 1
            for name in names:
                self._numbers.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self.seq += 1
            self._numbers.clear()

    # --- the listener --------------------------------------------------------------------------

    def _start(self, client: redis.Redis) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._sock = None
            self._numbers.clear()
            self.seq += 1
            self._stop = threading.Event()
        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs["socket_timeout"] = None  # reads wait in get_message's own timeout
        thread = threading.Thread(
            target=self._listen, name="version-watch", daemon=True,
            args=(pool.connection_class, kwargs, _server_of(client), channel_of(client),
                  self._stop))
        thread.start()

    def stop(self) -> None:
        """Stop this process's listener (tests); the next read starts another."""
        with self._lock:
            if self._stop is not None:
                self._stop.set()
            self._pid = None
            self._unsubscribed()

    def _unsubscribed(self) -> None:
        self._sock = None
        self._server = None
        self._numbers.clear()
        self.seq += 1

    def _listen(self, connection_class, kwargs: dict, server: tuple, channel: str,
                stop: threading.Event) -> None:
        while not stop.is_set():
            pool = redis.ConnectionPool(connection_class=connection_class, max_connections=1,
                                        **kwargs)
            pubsub = redis.Redis(connection_pool=pool).pubsub()
            try:
                pubsub.subscribe(channel)
                sock = pubsub.connection._sock
                pinged = 0.0
                while not stop.is_set():
                    now = time.monotonic()
                    if now - pinged >= PING_SECONDS:
                        pubsub.ping()
                        pinged = now
                    readable(sock, PING_SECONDS)  # waits without taking a byte
                    with self._draining:  # take everything there is, and apply it
                        while (message := pubsub.get_message(timeout=0)) is not None:
                            self._heard_from_redis(message, pubsub, server)
            except (redis.RedisError, OSError) as exc:
                log.info("version watch lost Redis (%s); reads ask Redis until it is back", exc)
            finally:
                with self._lock:
                    self._unsubscribed()
                try:
                    pubsub.close()
                    pool.disconnect()
                except Exception:  # noqa: BLE001 - the connection is gone either way
                    pass
            stop.wait(_RECONNECT_SECONDS)

    def _heard_from_redis(self, message: dict, pubsub, server: tuple) -> None:
        kind = message["type"]
        if kind == "message":
            self.forget(message["data"].decode().split("\n"))
        elif kind == "subscribe":
            with self._lock:
                self._numbers.clear()
                self.seq += 1
                self._server = server
                self._sock = pubsub.connection._sock
        self._heard = time.monotonic()


watch = _Watch()

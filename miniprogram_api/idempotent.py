"""`@idempotent`: the HTTP side of app.idempotency for writes a donor may retry."""
from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import Callable

from flask import Flask, Response, current_app, g, make_response, request

from sqlalchemy import bindparam

from app import idempotency, uow
from app.auth.models import User
from app.errors import DomainError
from app.extensions import db
from miniprogram_api.policy import WITH_USER_ATTR, current_user, require_user
from miniprogram_api.problems import render
from miniprogram_api.ratelimit import EXEMPT_ATTR

log = logging.getLogger(__name__)

REPLAY_HEADER = "Idempotent-Replayed"
_KEPT_HEADERS = ("Content-Type", "Location")
# No request of ours legitimately runs this long (the slowest waits for WeChat Pay, within its
# timeout); one that does is stuck, and stops renewing its lease so that a retry can take over.
MAX_HOLD_SECONDS = 600


class _Renewer:
    """Renews the leases of the requests running in this process, each every third of its
    lease, from one daemon thread (started on first use, and again in a forked child). A request
    registers its hold while it runs; most answer long before their first renewal is due and
    cost only the registration. If the process dies the renewals stop with it and the leases
    lapse: that is how a retry knows the owner is gone."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holds: dict[int, list] = {}  # token -> [app, hold, lease_seconds, started, due]
        self._tokens = itertools.count()
        self._pid: int | None = None
        # When the renewing thread wakes up next by itself (None: it waits for a notify). A new
        # hold wakes it only if its first beat is due before that: with one lease for every
        # request that is the first hold after a quiet spell, not every request (a thread
        # woken per request cost a context switch and a turn of the GIL each time).
        self._wake_at: float | None = None

    @contextmanager
    def holding(self, app: Flask, hold: idempotency.Hold, lease_seconds: int):
        started = time.monotonic()
        token = next(self._tokens)
        with self._cond:
            if self._pid != os.getpid():  # first use in this process (or a fork's child)
                self._pid = os.getpid()
                self._holds.clear()
                self._wake_at = None
                threading.Thread(target=self._run, name="idempotency-leases",
                                 daemon=True).start()
            due = started + lease_seconds / 3
            self._holds[token] = [app, hold, lease_seconds, started, due]
            if self._wake_at is None or due < self._wake_at:
                self._wake_at = due  # the thread recomputes it when it wakes
                self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._holds.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [(token, entry) for token, entry in self._holds.items() if entry[4] <= now]
                if not due:
                    nearest = min((entry[4] for entry in self._holds.values()), default=None)
                    self._wake_at = nearest
                    self._cond.wait(None if nearest is None else nearest - now)
                    continue
                for _token, entry in due:
                    entry[4] = now + entry[2] / 3  # the next beat, whatever this one does
            for token, (app, hold, lease_seconds, started, _due) in due:
                if not self._renew(app, hold, lease_seconds, started):
                    with self._cond:
                        self._holds.pop(token, None)

    @staticmethod
    def _renew(app: Flask, hold: idempotency.Hold, lease_seconds: int, started: float) -> bool:
        """One beat; False when there is nothing left to hold."""
        if time.monotonic() - started > MAX_HOLD_SECONDS:
            log.error("request holding idempotency record %s is stuck; lease left to lapse",
                      hold.record_id)
            return False
        try:
            with app.app_context():
                try:
                    # done, released or taken over: nothing left to hold
                    return idempotency.renew(hold, timedelta(seconds=lease_seconds))
                finally:
                    db.session.remove()
        except Exception:  # noqa: BLE001 - the next beat tries again; the lease has slack
            log.warning("idempotency lease %s not renewed", hold.record_id, exc_info=True)
            return True


_renewer = _Renewer()


def _body_parts() -> list[bytes]:
    """What makes two requests "the same": the JSON body, or the form fields and file contents
    (a retried multipart upload has a new boundary, so its raw bytes differ)."""
    if request.mimetype == "multipart/form-data":
        parts = [f"{k}={v}".encode() for k, v in sorted(request.form.items(multi=True))]
        for name, upload in sorted(request.files.items(multi=True)):
            digest = hashlib.sha256()
            for chunk in iter(lambda: upload.stream.read(65536), b""):
                digest.update(chunk)
            upload.stream.seek(0)
            parts.append(f"{name}:{upload.mimetype}:".encode() + digest.digest())
        return parts
    return [request.get_data(cache=True)]


# For the access policy: `answered_before` read in the statement that loads the caller.
_ANSWERED = idempotency.answered(User.id, bindparam("idempotency_key"))


def _answered_params() -> dict[str, str] | None:
    """The key to look up, or None without a valid key: nothing to look up, or left to
    `answered_before`'s guarded look-up (a key the database refuses must not make a 500)."""
    try:
        return {"idempotency_key": idempotency.validate_key(request.headers.get("Idempotency-Key"))}
    except DomainError:
        return None


def answered_before() -> bool:
    """For the rate limiter: whether this request's Idempotency-Key already has its answer
    stored. Such a request is answered from the record, doing no work (the stored answer, or 422
    `idempotency_key_reused` if it is not the same request), so it costs no limit slot: a
    donor's retry after the limit still gets the answer. Decided without reading the body (a
    photo upload over the limit is refused before it is read); once per request, usually by the
    token check, with the user (`_ANSWERED`)."""
    if "idempotency_answered" not in g:
        user, key = current_user(), request.headers.get("Idempotency-Key")
        answered = False
        if user is not None and key is not None and key.strip():
            try:
                answered = idempotency.is_answered(user.id, key.strip())
            except Exception:  # noqa: BLE001 - the limiter would take it for a storage outage
                uow.reset()
                log.warning("stored idempotent answer not looked up; the limits count",
                            exc_info=True)
        g.idempotency_answered = answered
    return g.idempotency_answered


def idempotent(render_resource: Callable[[str], Response]) -> Callable:
    """`render_resource(resource_id)` rebuilds the response when the first attempt committed its
    effect but died before its response was stored. A limited view (miniprogram_api/ratelimit.py) lets a
    request whose answer is stored past its limits (`answered_before`)."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = require_user()
            key = idempotency.validate_key(request.headers.get("Idempotency-Key"))
            fp = idempotency.fingerprint(request.method, request.path, _body_parts())
            lease_seconds = current_app.config["IDEMPOTENCY_LEASE_SECONDS"]
            outcome = idempotency.begin(user.id, key, fp, timedelta(seconds=lease_seconds))
            if isinstance(outcome, idempotency.Replay):
                response = current_app.response_class(outcome.body, status=outcome.status,
                                                      headers=outcome.headers)
                response.headers[REPLAY_HEADER] = "true"
                return response
            hold = outcome
            with _renewer.holding(current_app._get_current_object(), hold, lease_seconds):
                try:
                    if hold.resource_id is not None:
                        response = render_resource(hold.resource_id)
                    else:
                        with uow.idempotency_record(functools.partial(idempotency.attach, hold)):
                            response = make_response(view(*args, **kwargs))
                except DomainError as exc:
                    uow.reset()  # nothing half-done may ride along with the record
                    response = render(exc)
                except BaseException:
                    idempotency.abandon(hold)
                    raise
                if response.status_code >= 500 or response.status_code in (408, 429, 503):
                    idempotency.abandon(hold)  # transient: let the retry run for real
                    return response
                headers = {k: v for k, v in response.headers.items() if k in _KEPT_HEADERS}
                idempotency.finish(hold, response.status_code, headers, response.get_data())
                return response

        setattr(wrapper, EXEMPT_ATTR, answered_before)
        setattr(wrapper, WITH_USER_ATTR, ("idempotency_answered", _ANSWERED, _answered_params))
        return wrapper

    return decorator


"""Typed domain errors: what went wrong, in words a client can act on, and nothing of HTTP.

The domain raises `NotFound`, `Conflict("wish_already_claimed", "...")`, `Forbidden`,
`InvalidTransition`, `ValidationFailed(errors)`, `Unavailable`, ... Each carries a stable
snake_case `code` (clients branch on it) and a Chinese `detail` (people read it). The edge
(`miniprogram_api.problems`) holds the one catalogue that maps every code to its HTTP status and
Chinese title, and renders the error as RFC 9457 problem+json; a test fails when a code raised
anywhere has no catalogue entry.

`AppError(code, status, detail)` is the older shape that names its HTTP status: deprecated, still
rendered with the status it names, so code written that way keeps working until it is converted.
"""
from __future__ import annotations

import sqlite3
from typing import Any

import redis
from sqlalchemy import exc as sa_exc


class DomainError(Exception):
    """A failure the client can act on: stable `code`, Chinese `detail`, optional field `errors`
    (field -> messages), `extra` members for the client, and `retry_after` seconds."""

    default_code = "bad_request"

    def __init__(
        self,
        code: str | None = None,
        detail: str | None = None,
        *,
        errors: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.code = code or self.default_code
        super().__init__(self.code)
        self.detail = detail
        self.errors = errors
        self.extra = extra or {}
        self.retry_after = retry_after
        self.headers = headers or {}  # deprecated: only AppError's callers still pass headers


class BadRequest(DomainError):
    """The request itself is wrong (a missing header, a notice that does not match)."""


class Unauthenticated(DomainError):
    """No valid login. `bearer_error` names what was wrong with the token given, if one was."""

    default_code = "invalid_token"

    def __init__(self, code: str | None = None, detail: str | None = None, *,
                 bearer_error: str | None = None, **kwargs: Any) -> None:
        super().__init__(code, detail, **kwargs)
        self.bearer_error = bearer_error


class Forbidden(DomainError):
    default_code = "forbidden"


class NotFound(DomainError):
    """No such object, or one the caller may not know exists: the same answer for both."""

    default_code = "not_found"

    def __init__(self, detail: str | None = None, *, code: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(code, detail, **kwargs)


class Conflict(DomainError):
    """The request is fine but the state of things refuses it now."""

    default_code = "conflict"


class InvalidTransition(Conflict):
    """A lifecycle has no such move from the object's current status; nothing changed."""

    default_code = "invalid_transition"

    def __init__(self, detail: str | None = None, *, current_status: str | None = None,
                 action: str | None = None, code: str | None = None, **kwargs: Any) -> None:
        extra = {"current_status": current_status, "action": action, **kwargs.pop("extra", {})}
        super().__init__(code, detail, extra=extra, **kwargs)
        self.current_status = current_status
        self.action = action


class Invalid(DomainError):
    """The content cannot be accepted as it is (a field, a file, a missing consent)."""

    default_code = "validation_error"


class ValidationFailed(Invalid):
    """Fields with messages: `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, Any] | None = None, detail: str | None = None, *,
                 code: str | None = None, **kwargs: Any) -> None:
        super().__init__(code, detail, errors=errors, **kwargs)


class TooLarge(DomainError):
    default_code = "upload_too_large"


class UnsupportedType(DomainError):
    default_code = "unsupported_media_type"


class TooManyAttempts(DomainError):
    default_code = "too_many_attempts"


class Unavailable(DomainError):
    """Something we depend on is not answering: the client may retry (after `retry_after`)."""

    default_code = "service_unavailable"


class UpstreamRefused(DomainError):
    """An outside system (WeChat Pay) refused what we asked of it."""

    default_code = "upstream_rejected"


class AppError(DomainError):
    """Deprecated: the older shape that names its HTTP `status` (and optionally its title).
    New code raises one of the typed errors above; the edge still renders this with `status`."""

    def __init__(
        self,
        code: str,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code, detail, errors=errors, headers=headers, extra=extra)
        self.status = status
        self.title = title


SQLITE_OUTAGE_SIGNS = ("database is locked", "database table is locked", "unable to open",
                       "disk i/o error", "busy")


def is_transient_outage(exc: BaseException) -> bool:
    """A lost or refused connection to PostgreSQL or Redis (not a bug in our SQL): the pool
    (pre-ping) and redis-py reconnect on the next request, so the client should just retry."""
    if isinstance(exc, sa_exc.OperationalError) and isinstance(exc.orig, sqlite3.OperationalError):
        # SQLite files bad SQL ("no such table") under OperationalError too: that is our bug (a
        # 500), and only a busy, locked or unreadable database file is an outage
        return any(sign in str(exc.orig).lower() for sign in SQLITE_OUTAGE_SIGNS)
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return True  # disconnects, refused connections, pool exhausted, lock/statement timeouts
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError))

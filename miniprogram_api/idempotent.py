"""`@idempotent`: the HTTP side of app.idempotency for writes a donor may retry."""
from __future__ import annotations

import functools
import hashlib
from typing import Callable

from flask import Response, current_app, g, make_response, request

from app import idempotency
from app.auth.policy import require_user
from app.errors import DomainError
from app.extensions import db
from miniprogram_api.problems import render

REPLAY_HEADER = "Idempotent-Replayed"
_KEPT_HEADERS = ("Content-Type", "Location")


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


def idempotent(render_resource: Callable[[str], Response]) -> Callable:
    """`render_resource(resource_id)` rebuilds the response when the first attempt committed its
    effect but died before its response was stored."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = require_user()
            key = idempotency.validate_key(request.headers.get("Idempotency-Key"))
            fp = idempotency.fingerprint(request.method, request.path, _body_parts())
            outcome = idempotency.begin(user.id, key, fp)
            if isinstance(outcome, idempotency.Replay):
                response = current_app.response_class(outcome.body, status=outcome.status,
                                                      headers=outcome.headers)
                response.headers[REPLAY_HEADER] = "true"
                return response
            record = outcome
            try:
                if record.resource_id is not None:
                    response = render_resource(record.resource_id)
                else:
                    g.idempotency_record = record
                    response = make_response(view(*args, **kwargs))
            except DomainError as exc:
                db.session.rollback()  # nothing half-done may ride along with the record
                response = render(exc)
            except BaseException:
                idempotency.abandon(record)
                raise
            if response.status_code >= 500 or response.status_code in (408, 429, 503):
                idempotency.abandon(record)  # transient: let the retry run for real
                return response
            headers = {k: v for k, v in response.headers.items() if k in _KEPT_HEADERS}
            idempotency.finish(record, response.status_code, headers, response.get_data())
            return response

        return wrapper

    return decorator


def current_record():
    return g.get("idempotency_record")

"""The HTTP edge under gunicorn: bodies of unknown length, and connections an answer must close.

Bodies sent chunked (no Content-Length): Werkzeug reads them up to the request's limit and then
stops quietly, so a chunked body over the limit reached the JSON parser cut off at exactly the
limit and was answered 400 `malformed_json`. `Request.stream` here reads one byte past the limit
to tell "over" from "exactly at it", and answers 413 like a declared length over the limit.

Connections: gunicorn decides keep-alive itself and drops a `Connection` header from the app (it
is hop-by-hop, and PEP 3333 forbids apps to send one). After the answer it discards what is left
of the request body, 64 KiB at most, and closes the socket when more is left. So a 413 (the body
over the limit is never read) went out saying `Connection: keep-alive` and then the socket was
closed under the client. `gunicorn.conf.py` installs `pre_request`/`post_request` hooks that make
gunicorn's request object known here for the length of a request (gunicorn serves a request on
one thread from start to end); `close_connection()` marks it, and gunicorn then answers
`Connection: close` and closes, as it said. `finish()` (an after_request handler) closes the
connection whenever a body is left unread that gunicorn would not discard. Without gunicorn (the
test client, `flask run`) the hooks never run and closing does nothing.
"""
from __future__ import annotations

import threading
from typing import IO

from flask import Request as FlaskRequest
from flask import Response
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_input_stream

def answer_headers(request_id: str) -> tuple[tuple[str, str], ...]:
    """The headers every answer carries, however it was made: app/__init__.py's after_request hook
    adds them to Flask's answers (an answer with a `Vary` of its own gets `Authorization` added to
    it), and `miniprogram_api.wishes.CachedReads` to the cached public reads it answers before
    Flask, so both kinds of answer say the same."""
    return (("X-Content-Type-Options", "nosniff"), ("X-Request-Id", request_id),
            ("Vary", "Authorization"))


# What gunicorn discards of an unread body before it reuses a connection (gunicorn.http.parser's
# _DRAIN_MAX_BYTES): a body left unread beyond this makes it close the socket.
GUNICORN_DRAIN_BYTES = 64 * 1024

_current = threading.local()


# --- gunicorn hooks (installed by gunicorn.conf.py) ---------------------------------------------

def pre_request(worker, req) -> None:
    _current.request = req
    worker.log.debug("%s %s", req.method, req.path)  # what gunicorn's default hook does


def post_request(worker, req, environ, resp) -> None:
    _current.request = None


def close_connection() -> None:
    """Have gunicorn answer this request with `Connection: close` and then close the socket."""
    req = getattr(_current, "request", None)
    if req is not None:
        req.must_close = True


# --- bodies ------------------------------------------------------------------------------------

class _UnknownLengthBody(LimitedStream):
    """A body of unknown length (chunked), read up to `limit` bytes: one byte more is a 413.

    Werkzeug's own maximum-length stream stops at the limit without looking further, so the
    first `limit` bytes of a larger body read as if they were all of it."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        super().__init__(stream, limit, is_max=True)
        self.ended = False  # the client's last chunk has been read: nothing is left unread

    def on_exhausted(self) -> None:
        if self._stream.read(1):
            raise RequestEntityTooLarge()
        self.ended = True

    def on_disconnect(self, error: Exception | None = None) -> None:
        if error is None:
            self.ended = True  # zero bytes before the limit: the body ended
        super().on_disconnect(error)

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted and not self.ended:
            self.on_exhausted()  # at exactly the limit: is there more?
        return data


class Request(FlaskRequest):
    @cached_property
    def stream(self) -> IO[bytes]:
        limit = self.max_content_length
        if (self.content_length is None and limit is not None
                and self.environ.get("wsgi.input_terminated")
                and self.headers.get("Transfer-Encoding", "").lower().endswith("chunked")):
            return _UnknownLengthBody(self.environ["wsgi.input"], limit)
        return get_input_stream(self.environ, max_content_length=limit)


def _body_left_unread(request: FlaskRequest) -> int | None:
    """Bytes of the body not read (0 when it was read to its end); None when not known."""
    environ = request.environ
    if "HTTP_TRANSFER_ENCODING" not in environ and not environ.get("CONTENT_LENGTH"):
        return 0  # most requests (every GET): no body, without parsing any header
    chunked = request.headers.get("Transfer-Encoding", "").lower().endswith("chunked")
    length = request.content_length
    if not chunked and not length:
        return 0
    stream = request.__dict__.get("stream")  # made on first read; absent: nothing was read
    if chunked:
        return 0 if isinstance(stream, _UnknownLengthBody) and stream.ended else None
    position = getattr(stream, "_pos", 0) if isinstance(stream, LimitedStream) else 0
    return max(length - position, 0)


def finish(request: FlaskRequest, response: Response) -> Response:
    """Close the connection after this answer when gunicorn could not reuse it anyway: always
    after a 413, and whenever a body is left unread beyond what gunicorn discards."""
    unread = _body_left_unread(request)
    if response.status_code == 413 or unread is None or unread > GUNICORN_DRAIN_BYTES:
        close_connection()
    return response

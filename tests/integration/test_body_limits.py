"""Bodies over the limit against a live gunicorn, on a raw socket: the answer is a 413 that says
`Connection: close` and closes, whether the body declared its length or came chunked.

gunicorn answered `Connection: keep-alive` and then closed the socket (it discards at most 64 KiB
of a body the app never read), and a chunked body over the limit reached the JSON parser cut off
at the limit: 400 `malformed_json` instead of 413.
"""
from __future__ import annotations

import http.client
import json
import socket
import threading
import uuid

import pytest

API = "/api/v1"
JSON_LIMIT = 200_000     # MAX_JSON_BYTES for these servers: small bodies keep the test quick
UPLOAD_LIMIT = 300_000   # MAX_UPLOAD_BYTES
MULTIPART_ALLOWANCE = 64 * 1024  # miniprogram_api/proofs.py: framing around the photo


class Connection:
    """One keep-alive connection to the server: send raw bytes, read answers, see it close."""

    def __init__(self, base: str) -> None:
        port = int(base.rsplit(":", 1)[1])
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.senders: list[threading.Thread] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_in_background(self, data: bytes) -> None:
        """Send while the answer is read: the server may answer (and close) before it has all."""
        def send():
            try:
                self.sock.sendall(data)
            except OSError:
                pass  # the server closed: the rest was not wanted
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        self.senders.append(sender)

    def answer(self) -> tuple[int, http.client.HTTPMessage, bytes]:
        response = http.client.HTTPResponse(self.sock)
        response.begin()
        body = response.read()
        return response.status, response.headers, body

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()
        for sender in self.senders:
            sender.join(timeout=5)


@pytest.fixture
def connect():
    opened: list[Connection] = []

    def open_(base: str) -> Connection:
        opened.append(Connection(base))
        return opened[-1]
    yield open_
    for conn in opened:
        conn.close()


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(body: bytes, size: int = 16 * 1024) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"


def json_of_size(size: int) -> bytes:
    frame = b'{"code": ""}'
    return b'{"code": "' + b"a" * (size - len(frame)) + b'"}'


def assert_413_and_closed(conn: Connection, code: str) -> None:
    status, headers, body = conn.answer()
    assert status == 413, (status, body[:300])
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["code"] == code
    assert headers["Connection"] == "close"  # and it is:
    assert conn.closed_by_server()


def _server(processes) -> str:
    return processes.server(workers=1, threads=4, MAX_JSON_BYTES=str(JSON_LIMIT),
                            MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT))


def test_a_declared_body_over_the_limit_is_413_that_says_close_and_closes(processes, connect):
    base = _server(processes)
    json_headers = {"Content-Type": "application/json", "Content-Length": str(JSON_LIMIT + 1)}

    # the client waits for an answer before sending the body (as with Expect: 100-continue)
    conn = connect(base)
    conn.send(head("POST", f"{API}/auth/wechat", json_headers))
    assert_413_and_closed(conn, "payload_too_large")

    # the client sends it all
    conn = connect(base)
    conn.send_in_background(head("POST", f"{API}/auth/wechat", json_headers)
                            + json_of_size(JSON_LIMIT + 1))
    assert_413_and_closed(conn, "payload_too_large")


def test_a_chunked_body_over_the_limit_is_413_not_400(processes, connect):
    base = _server(processes)
    json_chunked = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}

    conn = connect(base)
    conn.send_in_background(head("POST", f"{API}/auth/wechat", json_chunked)
                            + chunked(json_of_size(JSON_LIMIT + 1)))
    assert_413_and_closed(conn, "payload_too_large")

    conn = connect(base)
    conn.send_in_background(head("POST", f"{API}/auth/wechat", json_chunked)
                            + chunked(json_of_size(3 * JSON_LIMIT)))
    assert_413_and_closed(conn, "payload_too_large")


def test_a_chunked_body_within_the_limit_is_read_whole_and_the_connection_stays(
        processes, connect):
    base = _server(processes)
    json_chunked = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    conn = connect(base)

    # exactly at the limit: read to its end, refused for what it says (a code far too long)
    conn.send(head("POST", f"{API}/auth/wechat", json_chunked) + chunked(json_of_size(JSON_LIMIT)))
    status, headers, body = conn.answer()
    assert status == 422 and json.loads(body)["code"] == "validation_error", body[:300]
    assert headers["Connection"] == "keep-alive"

    # a small one on the same connection: a dev login
    conn.send(head("POST", f"{API}/auth/wechat", json_chunked)
              + chunked(b'{"code": "dev:chunked"}', size=5))
    status, headers, body = conn.answer()
    assert status == 200 and json.loads(body)["access_token"], body[:300]
    assert headers["Connection"] == "keep-alive"

    conn.send(head("GET", f"{API}/healthz", {}))
    assert conn.answer()[0] == 200


def test_a_broken_chunked_body_is_400_that_says_close_and_closes(processes, connect):
    base = _server(processes)
    conn = connect(base)
    conn.send(head("POST", f"{API}/auth/wechat", {"Content-Type": "application/json",
                                                  "Transfer-Encoding": "chunked"})
              + b'5\r\n{"code": "dev:x"}\r\n0\r\n\r\n')  # the chunk is longer than it says
    status, headers, body = conn.answer()
    assert status == 400 and json.loads(body)["code"] == "bad_request", body[:300]
    assert headers["Connection"] == "close"
    assert conn.closed_by_server()


def _multipart(photo: bytes) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; "
            f"filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + photo \
        + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


def test_an_upload_over_the_limit_is_413_upload_too_large_that_closes(actors, processes,
                                                                     connect):
    base = _server(processes)
    caseworker, moderator, donor = actors.caseworker(), actors.moderator(), actors.donor()
    claim_id = actors.claim(donor, actors.open_wish(caseworker, moderator)["id"])["id"]
    content_type, body = _multipart(b"\xff\xd8\xff" + b"\0" * (UPLOAD_LIMIT + MULTIPART_ALLOWANCE))
    path = f"{API}/claims/{claim_id}/proofs"

    def headers(**more: str) -> dict[str, str]:
        return {**donor.headers, "Idempotency-Key": str(uuid.uuid4()),
                "Content-Type": content_type, **more}

    conn = connect(base)
    conn.send_in_background(head("POST", path, headers(**{"Content-Length": str(len(body))}))
                            + body)
    assert_413_and_closed(conn, "upload_too_large")

    conn = connect(base)
    conn.send_in_background(head("POST", path, headers(**{"Transfer-Encoding": "chunked"}))
                            + chunked(body))
    assert_413_and_closed(conn, "upload_too_large")

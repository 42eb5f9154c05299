"""A local fake of WeChat's server API, speaking its documented protocol (HTTP 200 + errcode).

`jscode2session` answers by the code it is given:
  ok:<openid>   -> {"openid": <openid>, "session_key": "..."}
  err:<errcode> -> {"errcode": <errcode>, "errmsg": "..."}
  http:<status> -> that HTTP status with an HTML body
  slow          -> sleeps past the client's timeout
  garbage       -> a body that is not JSON
Every request is recorded in `requests` so tests can check what was sent.

`POST /cgi-bin/stable_token` issues access tokens (`fake.issued`), valid until
`fake.invalidate_tokens()`; `fake.token_errcode` makes it answer an errcode instead.
`POST /cgi-bin/message/subscribe/send` answers 40001 for a token that is not valid, otherwise
by `fake.subscribe_outcomes[openid]` (default success): an errcode (43101, 45009, ...),
"http:<status>", "slow" or "garbage" as above; a list is consumed one outcome per request.
Successful sends are appended to `fake.delivered`; `send_delay` slows every send. `reset()`
forgets everything between tests.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeWechat:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.slow_seconds = 3.0
        self._lock = threading.Lock()
        self.reset()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests.append({"path": url.path, "query": query})
                if url.path == "/sns/jscode2session":
                    return fake._jscode2session(self, query)
                self._send(404, b"not found", "text/plain")

            def do_POST(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw.decode("utf-8"))
                except ValueError:
                    body = None
                fake.requests.append({"path": url.path, "query": query, "body": body})
                if url.path == "/cgi-bin/stable_token":
                    return fake._stable_token(self, body or {})
                if url.path == "/cgi-bin/message/subscribe/send":
                    return fake._subscribe_send(self, query, body or {})
                self._send(404, b"not found", "text/plain")

            def _send(self, status, body, ctype="application/json"):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (a "slow" answer past its timeout)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _jscode2session(self, handler, query):
        code = query.get("js_code", "")
        if query.get("grant_type") != "authorization_code" or not query.get("appid"):
            return handler._send(200, json.dumps({"errcode": 40013, "errmsg": "invalid appid"}).encode())
        if code.startswith("ok:"):
            body = {"openid": code[3:], "session_key": "SECRET-SESSION-KEY-tiHKx5Q=="}
            return handler._send(200, json.dumps(body).encode())
        if code.startswith("err:"):
            body = {"errcode": int(code[4:]), "errmsg": "fake error"}
            return handler._send(200, json.dumps(body).encode())
        if code.startswith("http:"):
            return handler._send(int(code[5:]), b"<html>upstream error</html>", "text/html")
        if code == "slow":
            time.sleep(self.slow_seconds)
            return handler._send(200, b'{"openid": "late"}')
        if code == "garbage":
            return handler._send(200, b"<html>not json</html>", "text/html")
        return handler._send(200, json.dumps({"errcode": 40029, "errmsg": "invalid code"}).encode())

    def reset(self) -> None:
        self.requests.clear()
        self.issued: list[str] = []
        self.valid_tokens: set[str] = set()
        self.token_errcode: int | None = None
        self.subscribe_outcomes: dict[str, object] = {}
        self.delivered: list[dict] = []
        self.send_delay = 0.0  # seconds every send takes (to widen race windows in tests)

    def invalidate_tokens(self) -> None:
        """Every token issued so far stops working (as after a refresh elsewhere, or expiry)."""
        self.valid_tokens.clear()

    def calls(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def _json(self, handler, body: dict):
        return handler._send(200, json.dumps(body).encode())

    def _stable_token(self, handler, body):
        if body.get("grant_type") != "client_credential" or not body.get("appid") \
                or not body.get("secret"):
            return self._json(handler, {"errcode": 40013, "errmsg": "invalid appid"})
        if self.token_errcode:
            return self._json(handler, {"errcode": self.token_errcode, "errmsg": "fake error"})
        with self._lock:
            token = f"FAKE-ACCESS-TOKEN-{len(self.issued) + 1}-{uuid.uuid4().hex}"
            self.issued.append(token)
            self.valid_tokens.add(token)
        return self._json(handler, {"access_token": token, "expires_in": 7200})

    def _subscribe_send(self, handler, query, body):
        if self.send_delay:
            time.sleep(self.send_delay)
        if query.get("access_token") not in self.valid_tokens:
            return self._json(handler, {"errcode": 40001, "errmsg": "invalid credential"})
        with self._lock:
            outcome = self.subscribe_outcomes.get(body.get("touser"), 0)
            if isinstance(outcome, list):
                outcome = outcome.pop(0) if outcome else 0
        if outcome == "slow":
            time.sleep(self.slow_seconds)
            return self._json(handler, {"errcode": 0, "errmsg": "ok (too late)"})
        if outcome == "garbage":
            return handler._send(200, b"<html>not json</html>", "text/html")
        if isinstance(outcome, str) and outcome.startswith("http:"):
            return handler._send(int(outcome[5:]), b"<html>upstream error</html>", "text/html")
        if outcome:
            return self._json(handler, {"errcode": int(outcome), "errmsg": "fake error"})
        self.delivered.append(body)
        return self._json(handler, {"errcode": 0, "errmsg": "ok", "msgid": len(self.delivered)})

    def start(self) -> "FakeWechat":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

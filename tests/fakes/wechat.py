"""A local fake of WeChat's server API, speaking its documented protocol (HTTP 200 + errcode).

`jscode2session` answers by the code it is given:
  ok:<openid>   -> {"openid": <openid>, "session_key": "..."}
  err:<errcode> -> {"errcode": <errcode>, "errmsg": "..."}
  http:<status> -> that HTTP status with an HTML body
  slow          -> sleeps past the client's timeout
  garbage       -> a body that is not JSON
Every request is recorded in `requests` so tests can check what was sent.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeWechat:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.slow_seconds = 3.0
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

            def _send(self, status, body, ctype="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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

    def start(self) -> "FakeWechat":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

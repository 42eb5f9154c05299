"""The yardstick: a bare Flask app that answers with a constant JSON body and does nothing else.

For every `<name>.json` in the folder named by BENCH_BASELINE_DIR it serves `GET /<name>` with
exactly those bytes, so each endpoint under test is compared with a bare endpoint returning a body
of the same size (run.py writes there a body captured from the real endpoint). Run it under the
same gunicorn settings as the app: `gunicorn --chdir bench/feed baseline_app:app`.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response


def create_app(folder: str) -> Flask:
    app = Flask(__name__)
    for path in sorted(Path(folder).glob("*.json")):
        body = path.read_bytes()
        app.add_url_rule(f"/{path.stem}", path.stem, _constant(body))
    return app


def _constant(body: bytes):
    def view() -> Response:
        return Response(body, mimetype="application/json")
    return view


app = create_app(os.environ["BENCH_BASELINE_DIR"])

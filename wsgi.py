"""gunicorn's entry point: `gunicorn wsgi:app` (and `flask --app wsgi ...`).

Not a program: `python wsgi.py` starts nothing (it used to build the app, start an embedded
redis-server for it, and exit, leaving the server behind). Run the service with scripts/run.
"""
import sys

if __name__ == "__main__":
    sys.exit("wsgi.py is gunicorn's entry point, not a program; run the service with scripts/run, "
             "or `gunicorn wsgi:app` (see README.md).")

import gc  # noqa: E402

from app import create_app  # noqa: E402  (only when imported, never when run as a script)

app = create_app()
# What the app is built of (~170,000 objects: models, schemas, the OpenAPI document) lives as
# long as the process: frozen out of the collector's sight, a full collection walks only what
# requests made (it was ~40 ms each, every few signal batches; bench/README.md "bench/signals").
gc.freeze()

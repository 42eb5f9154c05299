"""gunicorn's settings for this service. gunicorn reads ./gunicorn.conf.py by itself, so
`gunicorn wsgi:app` started in the repository's root (scripts/run, the tests, the benchmarks)
uses it; options on the command line override it.

Workers: `WEB_CONCURRENCY` processes (default 2), each with `GUNICORN_THREADS` threads (default
4, gthread). Threads, not one request per process: a request waiting on WeChat's or WeChat Pay's
servers (up to their 5 s timeouts) or on a row lock holds one thread, not a whole worker, and
clients keep their connections alive. bench/claims runs with these same settings (see
bench/README.md, issue 11, "Third pass").

The hooks let the app close the connection an answer must not keep open (a 413 over a body it
never read): see app/serving.py.
"""
import os

from app.serving import post_request, pre_request  # noqa: F401 - gunicorn's server hooks

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

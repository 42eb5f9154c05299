"""gunicorn's settings for this service. gunicorn reads ./gunicorn.conf.py by itself, so
`gunicorn wsgi:app` started in the repository's root (scripts/run, the tests) uses it.

The hooks let the app close the connection an answer must not keep open (a 413 over a body it
never read): see app/serving.py.
"""
from app.serving import post_request, pre_request  # noqa: F401 - gunicorn's server hooks

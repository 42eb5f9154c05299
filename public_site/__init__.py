"""The public site: server-rendered pages in zh-CN for people with a browser.

`/` the wish wall, `/w/<id>` one wish, `/ledger` the open ledger (verified in the browser by
static/verify.js), `/fund` the 505 fund, `/stats` the figures with server-drawn SVG charts; and the
content-hashed static files they use, plus the Swagger UI files for `/api/v1/docs`, all from this
app (nothing from another origin). Views are thin: one service read, one template.
"""
from __future__ import annotations

from flask import Flask, request

from public_site import assets, present
from public_site.headers import DOCS_CSP, DOCS_ENDPOINT

def register(app: Flask) -> None:
    """Register the site. Call before flask-smorest's Api(app): this blueprint's
    `swagger_ui.html` then replaces flask-smorest's (Jinja searches blueprints' template folders
    in registration order), so the docs page loads Swagger UI from our own hashed files."""
    from public_site import page_cache
    from public_site.views import bp

    page_cache.listen()
    site_assets = assets.collect()
    app.extensions["site_assets"] = site_assets
    present.register(app)
    app.jinja_env.globals["asset"] = lambda name: "/assets/" + site_assets.url_name(name)
    app.register_blueprint(bp)

    @app.after_request
    def _docs_headers(response):
        if request.endpoint == DOCS_ENDPOINT:
            response.headers["Content-Security-Policy"] = DOCS_CSP
        return response

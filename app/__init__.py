"""The application factory: one place that binds settings, extensions, routes and handlers."""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from flask import Flask, current_app, g, has_app_context, request
from flask.sessions import SessionInterface

from app import settings as _settings
from app.config import ConfigError, finalize, load_config

# The domain reads settings and per-app resources through app.settings, which knows no Flask:
# here, the composition root, they are the running Flask app's config, extensions and folder.
_settings.install(lambda: current_app._get_current_object() if has_app_context() else None)

API_TITLE = "微心愿 API"
API_VERSION = "1.0.0"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. Settings come from the environment, then `config` overrides them."""
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None,
                instance_relative_config=False)
    try:
        settings = load_config()
        settings.update(config or {})
        app.config.update(finalize(settings, app.instance_path))
    except ConfigError as error:
        if not _flask_cli_is_looking_up_a_command():
            raise
        from app.cli import settings_free_app
        return settings_free_app(error)
    os.makedirs(app.instance_path, exist_ok=True)
    _configure_logging(app)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    app.session_interface = _NoCookieSession()
    from app import serving
    app.request_class = serving.Request  # a chunked body over the limit is a 413, not cut off
    if app.config["TRUSTED_PROXY_COUNT"]:
        # request.remote_addr (rate limits, login throttle) from the trusted hops only
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXY_COUNT"],
                                x_proto=0, x_host=0, x_port=0, x_prefix=0)

    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Served by this app (public_site's swagger_ui.html loads its own hashed copies of the
        # swagger-ui-bundle package's files); flask-smorest only needs the setting to be set.
        OPENAPI_SWAGGER_UI_URL="/assets/",
        API_SPEC_OPTIONS={
            "info": {"description": "泉港微心愿平台后端接口。错误均为 application/problem+json，"
                                    "客户端按 `code` 分支。任何字符串（请求体、查询参数、表单字段、"
                                    "路径）都不能包含空字符 U+0000 或孤立的代理项（如 \\ud800），"
                                    "否则返回 422（路径中则为 404）。"},
            "components": {"securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                # Partner systems (医保, 残联, ...): OAuth 2.0 client credentials (RFC 6749 §4.4)
                "partnerBasic": {"type": "http", "scheme": "basic",
                                 "description": "client_id:client_secret，仅用于换取令牌"},
                "partnerOAuth": {"type": "oauth2", "flows": {"clientCredentials": {
                    "tokenUrl": "/api/v1/oauth/token",
                    "scopes": {"signals:write": "推送线索（POST /signals）"}}}}}},
        },
    )

    from app import redis_conn
    from flask_smorest import Api

    from app.extensions import db, migrate

    db.init_app(app)
    _close_sessions_after_outages(app, db)
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        from app.dbpool import ping_idle_connections
        with app.app_context():
            ping_idle_connections(db.engine, app.config["DB_PING_IDLE_SECONDS"])
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..",
                                                     "migrations"))
    redis_url = app.config["REDIS_URL"]
    if not redis_url:
        redis_url = app.config["REDIS_URL"] = redis_conn.embedded_redis_url(app.instance_path)
    app.extensions["redis"] = redis_conn.connect(redis_url)

    _import_models()
    from app import handlers
    handlers.install()  # the domain event table (app.handlers) into the unit of work
    from app.wishes import feed_cache
    feed_cache.listen()  # the public card cache's flush hook (installed once per process)
    import public_site
    public_site.register(app)  # before Api(app): its swagger_ui.html replaces flask-smorest's
    api = Api(app)
    import miniprogram_api
    with app.app_context():  # the document shows this app's settings (e.g. DONATION_MAX_FEN)
        miniprogram_api.register(api)

    from miniprogram_api.problems import register_error_handlers, request_id
    register_error_handlers(app)  # after api.init_app, so ours replace flask-smorest's

    from miniprogram_api.policy import check_access

    from app.errors import NotFound
    from app.text import is_unsafe

    @app.before_request
    def _before():
        request_id()
        check_access(app)
        if is_unsafe(request.path):  # `%00` in an id: no such object (and no database error)
            raise NotFound("未找到该资源")

    @app.after_request
    def _headers(response):
        headers = response.headers
        for name, value in serving.answer_headers(g.get("request_id", "")):
            if name == "Vary" and "Vary" in headers:
                response.vary.add(value)
            else:  # the usual case, without parsing and re-serialising a header set
                headers[name] = value
        if request.environ.get("HTTP_AUTHORIZATION") or "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
        return serving.finish(request, response)  # under gunicorn: close what must not stay open

    from miniprogram_api import ratelimit
    ratelimit.init_app(app)  # after every route is registered: it wraps the limited views
    miniprogram_api.serve_cached_reads(app)  # cached public reads answered before Flask

    from app.cli import register_cli
    register_cli(app)
    return app


def _flask_cli_is_looking_up_a_command() -> bool:
    """True while `flask ...` resolves a command of the app's own CLI: only then may a
    configuration error wait until a command that needs the settings runs. gunicorn, `flask run`
    and `flask shell` (whose click context is their own command's) still fail here."""
    import click
    from flask.cli import FlaskGroup

    ctx = click.get_current_context(silent=True)
    return ctx is not None and isinstance(ctx.command, FlaskGroup)


def _close_sessions_after_outages(app: Flask, db) -> None:
    """End each request's session even when its connection was killed.

    Flask-SQLAlchemy's own teardown rolls the session back, and a rollback on a connection the
    server has closed raises: the answer already made (often a success that committed) would be
    thrown away for gunicorn's bare HTML 500. Teardowns run in reverse order of registration, so
    this one runs first: on a lost connection it invalidates the session's connections (the pool
    drops them, nothing is sent to the dead socket) and removes the session; Flask-SQLAlchemy's
    teardown then has nothing left to do. Whatever was not committed was rolled back by the
    server when the connection ended."""
    from app.errors import is_transient_outage

    @app.teardown_appcontext
    def _remove_session(exc):
        try:
            db.session.remove()
        except Exception as error:  # noqa: BLE001 - only outages are swallowed
            if not is_transient_outage(error):
                raise
            logging.getLogger(__name__).warning(
                "database connection lost while ending a session (%s); connection discarded",
                type(error).__name__)
            try:
                db.session.invalidate()
            except Exception:  # noqa: BLE001 - the connection is gone either way
                logging.getLogger(__name__).debug("invalidate after a lost connection failed",
                                                  exc_info=True)
            db.session.registry.clear()


class _NoCookieSession(SessionInterface):
    """The API authenticates with bearer tokens and never uses Flask's cookie session; skipping
    it saves building a signing serializer on every request (measured by bench/feed)."""

    def open_session(self, app: Flask, request) -> None:
        return None  # Flask falls back to a NullSession, which refuses writes

    def save_session(self, app: Flask, session, response) -> None:
        return None


def _import_models() -> None:
    """Make every table known to the metadata (Alembic autogenerate and relationships)."""
    from app.auth import models as _auth  # noqa: F401
    from app.beneficiaries import models as _beneficiaries  # noqa: F401
    from app.wishes import models as _wishes  # noqa: F401
    from app.claims import models as _claims  # noqa: F401
    from app.notifications import models as _notifications  # noqa: F401
    from app.ledger import models as _ledger  # noqa: F401
    from app.fund import models as _fund  # noqa: F401
    from app.cases import models as _cases  # noqa: F401
    from app import idempotency as _idempotency  # noqa: F401
    from app.partners import models as _partners  # noqa: F401


def _configure_logging(app: Flask) -> None:
    level = getattr(logging, str(app.config["LOG_LEVEL"]).upper(), logging.INFO)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root.setLevel(level)
    # urllib3 logs whole request URLs at DEBUG, and jscode2session's carries the app secret.
    logging.getLogger("urllib3.connectionpool").setLevel(max(level, logging.INFO))
    # Alembic announces each of its autogenerate plugins at INFO on every `flask` command.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(level, logging.WARNING))

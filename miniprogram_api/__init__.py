"""The HTTP edge for the mini-program and the public: thin views over app services."""
import http

from flask_smorest import Api

from app.text import SAFE_TEXT_PATTERN
from miniprogram_api import (
    applications, auth, beneficiaries, claims, disbursements, donations, ledger, ledger_tiles,
    moderation, notifications, oauth, ops, proofs, signals, staff, stats, tasks, wishes,
)
from miniprogram_api.problems import PROBLEM_MIMETYPE
from miniprogram_api.schemas import ProblemSchema

PREFIX = "/api/v1"


def register(api: Api) -> None:
    _document_errors_as_problems(api)
    api.ma_plugin.converter.add_attribute_function(safe_text_pattern)
    api.register_converter(staff.UserIdConverter, staff.user_id_schema)
    for module in (ops, auth, staff, beneficiaries, wishes, moderation, claims, proofs,
                   notifications, ledger, ledger_tiles, donations, disbursements, stats, tasks,
                   applications, oauth, signals):
        api.register_blueprint(module.blp, url_prefix=PREFIX + module.blp.url_prefix_rel)


def serve_cached_reads(app) -> None:
    """Cached public feed pages and wish cards answered before Flask (wishes.CachedReads); the
    app factory calls this once every hook is installed."""
    app.wsgi_app = wishes.CachedReads(app, app.wsgi_app, PREFIX)


def _document_errors_as_problems(api: Api) -> None:
    """flask-smorest documents its own error shape; ours is problem+json (problems.py). The
    shared error responses are registered lazily, so registering them again here replaces them."""
    api.spec.components.schemas.pop("Error", None)  # flask-smorest's shape, which we never send
    statuses = [(s.name, s.phrase) for s in http.HTTPStatus if s >= 400]
    for name, description in [*statuses, ("DEFAULT_ERROR", "错误（RFC 9457），客户端按 code 分支")]:
        api.spec.components.response(name, {
            "description": description,
            "content": {PROBLEM_MIMETYPE: {"schema": ProblemSchema}},
        }, lazy=True)


def safe_text_pattern(self, field, ret: dict, **kwargs) -> dict:
    """An apispec attribute function: every string schema made from a marshmallow field says,
    as a `pattern`, that it cannot hold NUL, which the server refuses in any body, query or form
    (miniprogram_api/blueprint.py; lone surrogates too, see app/text.py) — so that what the
    document calls valid is accepted. A field with a pattern of its own keeps it (each of those is narrower); a
    photo's bytes (`format: binary`) are not text."""
    types = ret.get("type")
    is_string = types == "string" or (isinstance(types, list) and "string" in types)
    if not is_string or "pattern" in ret or ret.get("format") == "binary":
        return {}
    return {"pattern": SAFE_TEXT_PATTERN}

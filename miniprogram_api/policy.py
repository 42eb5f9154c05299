"""Access policy (the HTTP edge): default deny. Every route states who may call it with `@allow(...)`.

The check runs in a before_request hook, before any body is parsed, so an unauthenticated caller
gets 401 and a caller of the wrong role 403 whatever they sent. A route with no stated policy is
refused for everyone (and the access-matrix test fails on it). Region scope is checked by each
resource's access helper (`get_wish_for`, ...), where out-of-scope is 404.
"""
from __future__ import annotations

import logging
from typing import Callable

from flask import Flask, g, request
from flask_smorest import Blueprint
from sqlalchemy.orm import lazyload

from app.auth.models import ROLES, User
from app.auth.tokens import _invalid, decode_access_token
from app.errors import Forbidden, Unauthenticated
from app.extensions import db

log = logging.getLogger(__name__)

PUBLIC = "public"
# Endpoints that are not ours (the OpenAPI document and its UI pages) and are public by nature.
EXEMPT_ENDPOINTS = {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui",
                    "api-docs.openapi_redoc", "api-docs.openapi_rapidoc"}
BEARER = [{"bearerAuth": []}]


def allow(*roles: str) -> Callable:
    """Declare who may call a view: `@allow("donor")`, `@allow("caseworker", "moderator")`,
    or `@allow(PUBLIC)` (anyone; a valid token, if sent, identifies the caller)."""
    unknown = set(roles) - set(ROLES) - {PUBLIC}
    if not roles or unknown:
        raise ValueError(f"allow() needs known roles, got {roles!r}")

    def decorator(func: Callable) -> Callable:
        func.__access__ = frozenset(roles)
        security = [{}, *BEARER] if PUBLIC in roles else BEARER
        doc = {"security": security}
        if PUBLIC not in roles:
            doc["description"] = (func.__doc__ or "").strip() + \
                f"\n\n权限 (roles): {', '.join(sorted(roles))}"
        return Blueprint.doc(**doc)(func)

    return decorator


def access_of(app: Flask, endpoint: str) -> frozenset[str] | None:
    view = app.view_functions.get(endpoint)
    return getattr(view, "__access__", None)


def current_user() -> User | None:
    return g.get("user")


def require_user() -> User:
    user = current_user()
    if user is None:  # only reachable if a view forgot its policy
        raise _invalid()
    return user


def _user_from_header() -> User | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _invalid()
    claims = decode_access_token(token.strip())
    # The staff regions only when a scope check reads them: a donor's request never does.
    user = db.session.get(User, claims["sub"], options=[lazyload(User.regions)])
    if (user is None or not user.active or user.token_version != claims["tv"]
            or user.role != claims["role"]):
        raise _invalid()
    return user


def check_access(app: Flask) -> None:
    endpoint = request.endpoint
    if endpoint is None or endpoint in EXEMPT_ENDPOINTS:
        return  # 404/405 are rendered by the error handlers
    access = access_of(app, endpoint)
    if access is None:
        log.error("route %s has no access policy; refusing", endpoint)
        raise Forbidden("forbidden", "该接口未声明访问权限")
    g.user = _user_from_header()
    if PUBLIC in access:
        return
    if g.user is None:
        raise Unauthenticated("invalid_token", "请先登录")
    if g.user.role not in access:
        raise Forbidden("forbidden")

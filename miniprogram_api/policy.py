"""Access policy (the HTTP edge): default deny. Every route states who may call it with `@allow(...)`.

The check runs in a before_request hook, before any body is parsed, so an unauthenticated caller
gets 401 and a caller of the wrong role 403 whatever they sent. A route with no stated policy is
refused for everyone (and the access-matrix test fails on it). Region scope is checked by each
resource's access helper (`get_wish_for`, ...), where out-of-scope is 404.

Callers are people (a user's access token, app/auth/tokens.py) or partner systems (a partner
client's OAuth access token, app/partners/tokens.py, role-like name PARTNER_CLIENT). The two kinds
of token are signed under different keys, so a token is one or the other: a valid partner token
on a route for people, or a user's token on a partner route, is 403 `forbidden`. A route whose
view authenticates its caller itself (the OAuth token endpoint: HTTP Basic client credentials,
RFC 6749 §2.3.1) says so with `authenticates_itself=True`, and the policy leaves its
Authorization header alone.
"""
from __future__ import annotations

import logging
from typing import Callable

from flask import Flask, g, request
from flask_smorest import Blueprint
from sqlalchemy import bindparam, select
from sqlalchemy.orm import lazyload

from app.auth.models import ROLES, User
from app.auth.tokens import _invalid, decode_access_token
from app.errors import DomainError, Forbidden, Unauthenticated
from app.extensions import db
from app.partners.models import PartnerClient
from app.partners.service import client_of_token
from app.partners.tokens import decode_partner_token, invalid_partner_token

log = logging.getLogger(__name__)

PUBLIC = "public"
# A partner system (医保, 残联, ...) calling with its OAuth client-credentials token.
PARTNER_CLIENT = "partner_client"
# Endpoints that are not ours (the OpenAPI document and its UI pages) and are public by nature.
EXEMPT_ENDPOINTS = {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui",
                    "api-docs.openapi_redoc", "api-docs.openapi_rapidoc"}
BEARER = [{"bearerAuth": []}]
# The OpenAPI security schemes of partner systems (registered by the app factory).
PARTNER_OAUTH_SCHEME = "partnerOAuth"
PARTNER_BASIC_SCHEME = "partnerBasic"
SCOPES_ATTR = "__scopes__"
SELF_AUTH_ATTR = "__authenticates_itself__"
# A view may have the token check read one more value in the statement that loads the caller:
# `(name, expression, params)`, where `expression` is an SQL expression over `User.id` and bind
# parameters that `params()` gives for this request (None: nothing to read this time); its value
# lands in `g.<name>`. @idempotent reads whether the request's Idempotency-Key is already
# answered this way (one statement less per write).
WITH_USER_ATTR = "__read_with_user__"


def allow(*roles: str, scopes: tuple[str, ...] = (),
          authenticates_itself: bool = False) -> Callable:
    """Declare who may call a view: `@allow("donor")`, `@allow("caseworker", "moderator")`,
    `@allow(PUBLIC)` (anyone; a valid token, if sent, identifies the caller), or
    `@allow(PARTNER_CLIENT, scopes=("signals:write",))` (a partner system whose token holds
    every one of `scopes`). `authenticates_itself=True` (with PUBLIC only): the view reads its
    own credentials from the Authorization header, which the policy then does not read."""
    unknown = set(roles) - set(ROLES) - {PUBLIC, PARTNER_CLIENT}
    if not roles or unknown:
        raise ValueError(f"allow() needs known roles, got {roles!r}")
    if scopes and PARTNER_CLIENT not in roles:
        raise ValueError("allow(): scopes are for PARTNER_CLIENT routes")
    if authenticates_itself and set(roles) != {PUBLIC}:
        raise ValueError("allow(): authenticates_itself is for PUBLIC routes only")

    def decorator(func: Callable) -> Callable:
        func.__access__ = frozenset(roles)
        setattr(func, SCOPES_ATTR, frozenset(scopes))
        setattr(func, SELF_AUTH_ATTR, authenticates_itself)
        people = set(roles) - {PARTNER_CLIENT}
        security = []
        if authenticates_itself:
            security = [{PARTNER_BASIC_SCHEME: []}]
        elif PUBLIC in roles:
            security = [{}, *BEARER]
        elif people:
            security = list(BEARER)
        if PARTNER_CLIENT in roles:
            security.append({PARTNER_OAUTH_SCHEME: sorted(scopes)})
        doc = {"security": security}
        if PUBLIC not in roles:
            doc["description"] = (func.__doc__ or "").strip() + \
                f"\n\n权限 (roles): {', '.join(sorted(roles))}" + \
                (f"；范围 (scopes): {', '.join(sorted(scopes))}" if scopes else "")
        return Blueprint.doc(**doc)(func)

    return decorator


def access_of(app: Flask, endpoint: str) -> frozenset[str] | None:
    view = app.view_functions.get(endpoint)
    return getattr(view, "__access__", None)


def current_user() -> User | None:
    return g.get("user")


def current_partner_client() -> PartnerClient:
    """The partner system calling a PARTNER_CLIENT route (the policy has checked it)."""
    client = g.get("partner_client")
    if client is None:  # only reachable if a view forgot its policy
        raise invalid_partner_token()
    return client


def require_user() -> User:
    user = current_user()
    if user is None:  # only reachable if a view forgot its policy
        raise _invalid()
    return user


def _caller_from_header(with_user=None) -> tuple[User | None, dict | None]:
    """(user, None) for a user's token, (None, partner claims) for a partner token, (None,
    None) without a token; 401 for a bad one."""
    header = request.headers.get("Authorization")
    if header is None:
        return None, None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _invalid()
    token = token.strip()
    # A person's token first: most callers are people, and checking a token under the other
    # kind's key first cost a whole JWT verification per request.
    try:
        claims = decode_access_token(token)
    except DomainError:
        partner = decode_partner_token(token)
        if partner is not None:
            return None, partner
        raise
    return _user_of(claims, with_user), None


_WITH_USER: dict[int, tuple] = {}  # id(expression) -> (expression, its statement), built once


def _user_with(expression):
    known = _WITH_USER.get(id(expression))
    if known is None:
        known = _WITH_USER[id(expression)] = (expression, select(User, expression).where(
            User.id == bindparam("with_user_id")).options(lazyload(User.regions)))
    return known[1]


def _user_of(claims: dict, with_user=None) -> User:
    """The account a verified user token names, re-read: a disabled account or a changed role
    fails at once."""
    params = with_user[2]() if with_user is not None else None
    if params is None:
        # The staff regions only when a scope check reads them: a donor's request never does.
        user = db.session.get(User, claims["sub"], options=[lazyload(User.regions)])
    else:
        row = db.session.execute(_user_with(with_user[1]),
                                 {"with_user_id": claims["sub"], **params}).first()
        user = None
        if row is not None:
            user = row[0]
            setattr(g, with_user[0], bool(row[1]))
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
    view = app.view_functions[endpoint]
    if getattr(view, SELF_AUTH_ATTR, False):
        g.user = None
        return
    g.user, partner = _caller_from_header(getattr(view, WITH_USER_ATTR, None))
    if partner is not None:
        # Re-read the client: a disabled one's tokens, or those from before its secret was
        # rotated, stop at once.
        client = client_of_token(partner)
        if client is None:
            raise invalid_partner_token()
        g.partner_client = client
        if PUBLIC in access:
            return
        if PARTNER_CLIENT not in access:
            raise Forbidden("forbidden", "合作方系统不能调用该接口")
        held = set(str(partner["scope"]).split())
        if not getattr(view, SCOPES_ATTR, frozenset()) <= held:
            raise Forbidden("forbidden", "访问令牌的范围（scope）不足")
        return
    if PUBLIC in access:
        return
    if g.user is None:
        raise Unauthenticated("invalid_token", "请先登录")
    if g.user.role not in access:
        raise Forbidden("forbidden")

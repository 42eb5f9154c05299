"""The OAuth 2.0 token endpoint for partner systems: client-credentials grant (RFC 6749 §4.4).

Authlib's authorization server does the protocol: it reads the form body, authenticates the
client with HTTP Basic (`client_secret_basic`, the only method offered), checks the grant type
and the scope, and answers successes and errors in RFC 6749's own JSON (not problem+json: OAuth
clients and libraries parse `{"error": ...}`), with `Cache-Control: no-store` and, for a failed
client authentication, 401 with `WWW-Authenticate: Basic`. The clients, their hashed secrets and
the tokens are the domain's (app/partners/); this module only adapts them to Authlib.
"""
from __future__ import annotations

import json

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidClientError
from flask import Flask, Response, current_app, request
import marshmallow as ma
from marshmallow import fields

from app.partners import service
from app.partners.models import PartnerClient
from app.partners.tokens import SCOPES, SIGNALS_WRITE, issue_partner_token
from app.text import SAFE_TEXT_PATTERN
from miniprogram_api.blueprint import Blueprint
from miniprogram_api.policy import PUBLIC, allow
from miniprogram_api.ratelimit import rate_limited

blp = Blueprint("oauth", __name__, description="合作方系统（医保、残联、公安等）的 OAuth 2.0 接入")
blp.url_prefix_rel = ""

TOKEN_PATH = "/oauth/token"


class PartnerTokenOut(ma.Schema):
    access_token = fields.String()
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer()
    scope = fields.String(metadata={"example": SIGNALS_WRITE})


class OAuthErrorOut(ma.Schema):
    """RFC 6749 §5.2 error response."""

    error = fields.String(metadata={"example": "invalid_client"})
    error_description = fields.String()


_text = {"type": "string", "pattern": SAFE_TEXT_PATTERN}
TOKEN_REQUEST = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "required": ["grant_type"],
    "properties": {"grant_type": {**_text, "enum": ["client_credentials"]},
                   "scope": {**_text, "enum": [SIGNALS_WRITE]}}}}}}
_oauth_error = {"application/json": {"schema": OAuthErrorOut}}


class _Client(ClientMixin):
    """Authlib's view of a partner client. An unknown client id is a client with no row: its
    secret check costs the same Argon2 work and fails, so timing tells no id from another."""

    def __init__(self, client: PartnerClient | None, client_id: str) -> None:
        self.client = client
        self.client_id = client_id

    def get_client_id(self) -> str:
        return self.client_id

    def check_client_secret(self, client_secret: str) -> bool:
        return service.check_secret(self.client, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic" and endpoint == "token"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == grants.ClientCredentialsGrant.GRANT_TYPE

    def get_allowed_scope(self, scope: str | None) -> str:
        return SIGNALS_WRITE


class _ClientCredentials(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]


def _generate_token(grant_type, client, user=None, scope=None, expires_in=None,
                    include_refresh_token=True) -> dict:
    scope = scope or client.get_allowed_scope(scope)
    token, ttl = issue_partner_token(client.get_client_id(), scope,
                                     client.client.secret_version)
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": scope}


def _server(app: Flask) -> AuthorizationServer:
    server = app.extensions.get("partner_oauth")
    if server is None:
        server = AuthorizationServer(
            query_client=lambda client_id: _Client(service.find_client(client_id), client_id),
            save_token=lambda token, req: None)  # self-contained tokens: nothing to store
        server.init_app(app)
        server.scopes_supported = list(SCOPES)
        server.register_token_generator("default", _generate_token)
        server.register_grant(_ClientCredentials)
        app.extensions["partner_oauth"] = server
    return server


def _unreadable_credentials() -> Response:
    """Basic credentials that are not base64 of UTF-8 text: Authlib would raise on them."""
    status, body, headers = InvalidClientError(
        status_code=401, description="Malformed HTTP Basic credentials.")()
    return Response(json.dumps(body), status=status, headers=headers)


def _basic_is_unreadable() -> bool:
    import base64
    import binascii

    scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        base64.b64decode(value.strip()).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return True
    return False


@blp.route(TOKEN_PATH, methods=["POST"])
@rate_limited("oauth_token", keys=("address",))
@blp.response(200, PartnerTokenOut, description="访问令牌（RFC 6749 §5.1）")
@blp.doc(requestBody=TOKEN_REQUEST, responses={
    "400": {"description": "RFC 6749 §5.2：invalid_request、unsupported_grant_type、invalid_scope",
            "content": _oauth_error},
    "401": {"description": "RFC 6749 §5.2：invalid_client（客户端认证失败），"
                           "带 WWW-Authenticate: Basic",
            "content": _oauth_error}})
@allow(PUBLIC, authenticates_itself=True)
def token():
    """合作方系统以客户端凭证（HTTP Basic：client_id:client_secret）换取访问令牌，
    grant_type=client_credentials，表单提交；令牌短期有效"""
    if _basic_is_unreadable():
        return _unreadable_credentials()
    return _server(current_app._get_current_object()).create_token_response()

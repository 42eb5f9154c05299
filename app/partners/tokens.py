"""Partner access tokens: short-lived JWTs (RFC 9068 profile), not stored.

Why a JWT and not an opaque token kept hashed in a table: a partner posts a batch every few
seconds during a monthly upload, and a self-contained token needs no row written per token nor a
table to sweep. What a stored token would give, revocation, comes anyway: every request re-reads
the client (one indexed row), so a disabled client's tokens stop working at once, and a token
lives only PARTNER_TOKEN_TTL_SECONDS (15 minutes by default).

They are signed like the users' access tokens (HS256) but under a key of their own (HKDF with a
different `info`), with their own audience and `typ: at+jwt`: a partner token can never pass as a
user's token, nor the other way round, even if one check were forgotten.
"""
from __future__ import annotations

import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from app.errors import DomainError, Unauthenticated
from app.settings import resources, settings

ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"
AUDIENCE = "weixinyuan-partner-api"
SIGNALS_WRITE = "signals:write"
SCOPES = (SIGNALS_WRITE,)


def _signing_key() -> OctKey:
    cached = resources().get("partner_jwt_key")
    if cached is None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"weixinyuan partner access token v1").derive(
            settings()["SECRET_KEY"].encode())
        cached = resources()["partner_jwt_key"] = OctKey.import_key(derived)
    return cached


def issue_partner_token(client_id: str, scope: str, secret_version: int = 1
                        ) -> tuple[str, int]:
    """Return (token, lifetime in seconds) for an authenticated client; `secret_version` (claim
    `sv`) is the version of the secret it authenticated with (app.partners.service)."""
    ttl = settings()["PARTNER_TOKEN_TTL_SECONDS"]
    now = int(time.time())
    claims = {
        "iss": settings()["JWT_ISSUER"],
        "aud": AUDIENCE,
        "sub": client_id,
        "client_id": client_id,
        "scope": scope,
        "sv": secret_version,
        "iat": now,
        "nbf": now - 5,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode({"alg": ALGORITHM, "typ": TOKEN_TYPE}, claims, _signing_key()), ttl


def decode_partner_token(token: str) -> dict[str, Any] | None:
    """Verified claims of a partner token, or None when it is not a valid one (the caller then
    decides: another kind of token, or 401)."""
    if not token or len(token) > 4096:
        return None
    try:
        decoded = jwt.decode(token, _signing_key(), algorithms=[ALGORITHM])
        jwt.JWTClaimsRegistry(
            leeway=5,
            iss={"essential": True, "value": settings()["JWT_ISSUER"]},
            aud={"essential": True, "value": AUDIENCE},
            exp={"essential": True},
            sub={"essential": True},
            scope={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError, TypeError):
        return None
    if decoded.header.get("alg") != ALGORITHM or decoded.header.get("typ") != TOKEN_TYPE:
        return None
    return decoded.claims


def invalid_partner_token() -> DomainError:
    return Unauthenticated("invalid_token", "访问令牌无效或已过期，请重新获取",
                           bearer_error="invalid_token")

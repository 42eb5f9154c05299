"""JWT access tokens (joserfc, HS256 under a key derived from SECRET_KEY).

A token carries `sub`, `role`, `tv` (the account's token version), `iss`, `aud`, `iat`, `exp` and a
random `jti`. Verification pins the algorithm, so `alg: none` and HS/RS confusion are refused; the
account is then re-read so that a disabled account or a changed role fails at once.
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


def _signing_key() -> OctKey:
    cached = resources().get("jwt_key")
    if cached is None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"weixinyuan access token v1").derive(
            settings()["SECRET_KEY"].encode())
        cached = resources()["jwt_key"] = OctKey.import_key(derived)
    return cached


def issue_access_token(user) -> tuple[str, int]:
    """Return (token, lifetime in seconds) for an active account."""
    ttl = settings()["ACCESS_TOKEN_TTL_SECONDS"]
    now = int(time.time())
    claims = {
        "iss": settings()["JWT_ISSUER"],
        "aud": settings()["JWT_AUDIENCE"],
        "sub": user.id,
        "role": user.role,
        "tv": user.token_version,
        "iat": now,
        "nbf": now - 5,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode({"alg": ALGORITHM, "typ": "JWT"}, claims, _signing_key()), ttl


# Verified tokens, per app (so per signing key), each with what its check compared: a token is
# verified once per process, not on every request (42 µs alone; the JWT decode and HMAC were 3.7 %
# of the gunicorn workers' GIL samples in a claim storm). A hit re-checks the expiry (with the same leeway) and the issuer and audience
# as configured now; a disabled account or a changed role or token version is the caller's
# re-read of the account (miniprogram_api/policy.py), as for a token verified anew.
_VERIFIED_MAX = 10_000
_LEEWAY = 5


def decode_access_token(token: str) -> dict[str, Any]:
    """Verified claims, or Unauthenticated(invalid_token) for anything bad about the token."""
    if not token or len(token) > 4096:
        raise _invalid()
    verified = resources().setdefault("jwt_verified", {})
    known = verified.get(token)
    if known is not None:
        claims, iss, aud = known
        if (time.time() <= claims["exp"] + _LEEWAY and iss == settings()["JWT_ISSUER"]
                and aud == settings()["JWT_AUDIENCE"]):
            return dict(claims)
        verified.pop(token, None)
    claims = _verify(token)
    if len(verified) >= _VERIFIED_MAX:
        verified.clear()
    verified[token] = (dict(claims), settings()["JWT_ISSUER"], settings()["JWT_AUDIENCE"])
    return claims


def _verify(token: str) -> dict[str, Any]:
    try:
        decoded = jwt.decode(token, _signing_key(), algorithms=[ALGORITHM])
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(time.time()),  # the clock the remembered tokens are checked on
            leeway=_LEEWAY,
            iss={"essential": True, "value": settings()["JWT_ISSUER"]},
            aud={"essential": True, "value": settings()["JWT_AUDIENCE"]},
            exp={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
            role={"essential": True},
            tv={"essential": True},
        )
        registry.validate(decoded.claims)
    except (JoseError, ValueError, TypeError):
        raise _invalid() from None
    if decoded.header.get("alg") != ALGORITHM:
        raise _invalid()
    return decoded.claims


def _invalid() -> DomainError:
    return Unauthenticated("invalid_token", "登录凭证无效或已过期，请重新登录",
                           bearer_error="invalid_token")

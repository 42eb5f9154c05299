"""Expiring signed links to media: the only way a stored photo is ever served.

A link is `/api/v1/media/<key>?expires=<unix seconds>&sig=<HMAC>`. The HMAC-SHA256 covers the key and
the expiry, under a key derived from SECRET_KEY with HKDF for this one purpose (so a media link can
never be replayed as, or forged from, any other thing SECRET_KEY signs). Anyone holding a link may
fetch the object until it expires; a bad, edited or expired link is a plain 404, as if nothing
were there. Rotating SECRET_KEY invalidates every outstanding link, which is fine at minutes of TTL.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.errors import DomainError, NotFound
from app.media.storage import check_key
from app.settings import resources, settings

URL_PREFIX = "/api/v1/media/"
DEFAULT_TTL_SECONDS = 300
MAX_TTL_SECONDS = 7 * 24 * 3600
_HKDF_INFO = b"weixinyuan media link v1"
_SIG_CHARS = 43  # unpadded base64url of a 32-byte HMAC


def signed_url(key: str, ttl_seconds: int = DEFAULT_TTL_SECONDS, *, now: float | None = None) -> str:
    """A path (no host) that serves `key` until `ttl_seconds` from now."""
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}")
    check_key(key)
    expires = int(time.time() if now is None else now) + int(ttl_seconds)
    query = urlencode({"expires": expires, "sig": _sign(key, expires)})
    return f"{URL_PREFIX}{quote(key, safe='/')}?{query}"


def verify(key: str, expires: str | int | None, sig: str | None, *, now: float | None = None) -> None:
    """Return if the link is authentic and unexpired; NotFound otherwise."""
    try:
        check_key(key)
    except ValueError:
        raise _not_found() from None
    if isinstance(expires, str) and expires.isascii() and expires.isdigit() and len(expires) <= 12:
        expires_at = int(expires)
    elif isinstance(expires, int) and not isinstance(expires, bool):
        expires_at = expires
    else:
        raise _not_found()
    if not isinstance(sig, str) or len(sig) != _SIG_CHARS:
        raise _not_found()
    # Constant-time compare first, on every path that gets this far, then the clock.
    authentic = hmac.compare_digest(_sign(key, expires_at).encode(), sig.encode("utf-8", "replace"))
    if not authentic or expires_at <= (time.time() if now is None else now):
        raise _not_found()


def _sign(key: str, expires: int) -> str:
    mac = hmac.new(_link_key(), f"{key}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _link_key() -> bytes:
    cached = resources().get("media_link_key")
    if cached is None:
        cached = resources()["media_link_key"] = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO,
        ).derive(settings()["SECRET_KEY"].encode())
    return cached


def _not_found() -> DomainError:
    return NotFound("图片链接无效或已过期")

"""Partner clients: made and disabled on the command line, authenticated at the token endpoint."""
from __future__ import annotations

import logging
import re
import secrets

from sqlalchemy import select

from app.auth.passwords import hash_password, verify_password
from app.cases.signals import DEPARTMENTS
from app.errors import NotFound, ValidationFailed
from app.extensions import db
from app.regions import validate_region_code
from app.settings import settings
from app.partners.models import PartnerClient
from app.uow import use_case

log = logging.getLogger(__name__)

# What a well-formed client id looks like; anything else is unknown without a database query.
CLIENT_ID_RE = re.compile(r"^pc_[A-Za-z0-9_-]{16,48}$")
SECRET_BYTES = 32  # 256 bits: no guessing, so Argon2 guards only against a stolen table


@use_case
def create_client(name: str, department: str, region_code: str | None = None
                  ) -> tuple[PartnerClient, str]:
    """Make a client; returns it and its secret, which is never stored and never shown again."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ValidationFailed(detail="名称必须是 1–64 个字符", errors={"name": ["长度无效"]})
    if department not in DEPARTMENTS:
        raise ValidationFailed(detail=f"部门必须是 {', '.join(DEPARTMENTS)} 之一",
                               errors={"department": ["取值无效"]})
    if region_code is not None:
        validate_region_code(region_code)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    client = PartnerClient(
        client_id="pc_" + secrets.token_urlsafe(18), name=name, department=department,
        region_code=region_code,
        client_secret_hash=hash_password(secret, settings()["PASSWORD_HASH_PROFILE"]))
    db.session.add(client)
    log.info("partner client %s (%s) created for %s", client.client_id, name, department)
    return client, secret


@use_case
def set_client_active(client_id: str, active: bool) -> PartnerClient:
    """Disable (or enable again) a client: a disabled one gets no token, and the tokens it holds
    stop working at once (every request re-reads the client)."""
    client = find_client(client_id)
    if client is None:
        raise NotFound(f"没有合作方客户端 {client_id}")
    client.active = active
    log.info("partner client %s %s", client_id, "enabled" if active else "disabled")
    return client


@use_case
def rotate_secret(client_id: str) -> tuple[PartnerClient, str]:
    """A new secret for the client (returned, never stored); the old secret gets no token any
    more, and the tokens issued under it stop working at once (their `sv` claim is stale)."""
    client = db.session.execute(
        select(PartnerClient).where(PartnerClient.client_id == client_id).with_for_update()
    ).scalar_one_or_none() if CLIENT_ID_RE.match(client_id or "") else None
    if client is None:
        raise NotFound(f"没有合作方客户端 {client_id}")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    client.client_secret_hash = hash_password(secret, settings()["PASSWORD_HASH_PROFILE"])
    client.secret_version = (client.secret_version or 1) + 1
    log.info("partner client %s: secret rotated (version %d)", client_id, client.secret_version)
    return client, secret


def list_clients() -> list[PartnerClient]:
    return list(db.session.execute(
        select(PartnerClient).order_by(PartnerClient.created_at, PartnerClient.id)).scalars())


def client_of_token(claims: dict) -> PartnerClient | None:
    """The client a verified partner token speaks for, re-read on every request: None when it
    is gone, disabled, or its secret was rotated after the token was issued."""
    client = find_client(claims.get("client_id"))
    if client is None or not client.active:
        return None
    if claims.get("sv", 1) != client.secret_version:  # tokens from before 0012 carry no `sv`
        return None
    return client


def find_client(client_id: str) -> PartnerClient | None:
    if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
        return None
    return db.session.execute(
        select(PartnerClient).where(PartnerClient.client_id == client_id)).scalar_one_or_none()


def check_secret(client: PartnerClient | None, secret: str) -> bool:
    """True only for an active client and its secret. An unknown or disabled client costs the
    same hash check, so the answer's timing does not tell which client ids exist."""
    stored = client.client_secret_hash if client is not None else None
    ok = verify_password(stored, secret or "", settings()["PASSWORD_HASH_PROFILE"])
    return ok and client is not None and client.active

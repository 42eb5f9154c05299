"""Beneficiary use cases: record, read (masked or revealed with an audit row), withdraw consent."""
from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app import pii
from app.auth.models import User
from app.auth.scope import in_scope, scope_prefixes
from app.beneficiaries.models import (
    GUARDIAN_AGE, IDENTITY_FIELDS, MAX_AGE, Beneficiary, Consent, PiiAccess,
)
from app.errors import Forbidden, Invalid, NotFound, ValidationFailed
from app.events import ConsentWithdrawn
from app.extensions import db
from app.pagination import Page, keyset_page
from app.pii_scan import refuse_pii
from app.regions import validate_region_code
from app.types import new_id, utcnow
from app.uow import current, lock, unit_of_work, use_case

log = logging.getLogger(__name__)

ID_NUMBER_RE = re.compile(r"^[0-9]{17}[0-9X]$")  # ASCII only: \d would take full-width digits
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_number_is_valid(value: str) -> bool:
    """GB 11643 resident ID: 17 digits and a check character."""
    if not ID_NUMBER_RE.match(value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == value[17]


def _context(ben_id: str, field: str) -> str:
    return f"beneficiaries.{field}.{ben_id}"


def identity_of(ben: Beneficiary) -> dict[str, str | None]:
    """The beneficiary's identity in clear. Callers that show it to a person must audit it."""
    return {field: pii.decrypt(getattr(ben, f"{field}_enc"), _context(ben.id, field))
            for field in IDENTITY_FIELDS}


def check_alias(alias: str, identity: dict[str, str | None]) -> None:
    """The alias is public (the wish card, the feed): 422 `pii_in_text` if it holds the person's
    name or a part of it (surname alone aside), any part of their ID number, phone or address,
    or any phone, ID or card number. Every route that sets an alias goes through here."""
    refuse_pii({"alias": alias}, identity, what="化名", alias_fields=("alias",))


@use_case
def create_beneficiary(actor: User, data: dict[str, Any]) -> Beneficiary:
    """POST /beneficiaries: record a beneficiary (see `record_beneficiary`)."""
    return record_beneficiary(actor, data)


def record_beneficiary(actor: User, data: dict[str, Any], now: datetime | None = None
                       ) -> Beneficiary:
    """Check and record a beneficiary and their consents in the caller's unit of work: the
    actor's scope, the ID number's check character, the public alias free of the person's
    identity, a plausible birth year, the sensitive-data consent and, under 14, the guardian's.
    `data` is POST /beneficiaries' body (real_name, id_number?, phone?, address?, birth_year,
    region_code, alias, assessment, consents). Other domains enrolling someone (a visit's
    `enrolled` outcome) call this inside their own use case, so the rules are one."""
    region = validate_region_code(data["region_code"])
    if not in_scope(actor, region):
        raise Forbidden("forbidden", "该区划不在您的负责范围内")
    id_number = data.get("id_number")
    if id_number is not None:
        id_number = id_number.strip().upper()
        if not id_number_is_valid(id_number):
            raise ValidationFailed(detail="身份证号码格式或校验位不正确",
                                   errors={"id_number": ["身份证号码无效"]})
    values = {"real_name": data["real_name"].strip(), "id_number": id_number,
              "phone": data.get("phone"), "address": data.get("address")}
    alias = data["alias"].strip()
    check_alias(alias, values)
    now = now or utcnow()
    age = now.year - data["birth_year"]
    if not 0 <= age <= MAX_AGE:
        raise ValidationFailed(detail="出生年份不合理",
                               errors={"birth_year": ["出生年份不合理"]})
    kinds = {c["kind"] for c in data["consents"]}
    if "sensitive_data" not in kinds:
        raise Invalid("consent_missing", "记录受助人的敏感个人信息须有其单独同意（sensitive_data）",
                      errors={"consents": ["缺少 sensitive_data 同意"]})
    if age < GUARDIAN_AGE:
        guardian = [c for c in data["consents"] if c["kind"] == "guardian"]
        if not guardian or any(c["given_by"] != "guardian" or not c.get("relation")
                               for c in guardian):
            raise Invalid("guardian_consent_required",
                          "受助人未满14周岁，须由监护人给出 guardian 同意并注明关系",
                          errors={"consents": ["缺少监护人同意"]})
        if any(c["given_by"] != "guardian" for c in data["consents"]):
            raise Invalid("guardian_consent_required", "未满14周岁受助人的同意须由监护人给出",
                          errors={"consents": ["须由监护人给出"]})
    for consent in data["consents"]:
        if consent["given_by"] == "guardian" and not consent.get("relation"):
            raise ValidationFailed(detail="监护人同意须注明与受助人的关系",
                                   errors={"consents": ["缺少 relation"]})

    ben_id = new_id("ben")
    ben = Beneficiary(
        id=ben_id, region_code=region, alias=alias, birth_year=data["birth_year"],
        categories=sorted(set(data["assessment"]["categories"])),
        level=data["assessment"]["level"], created_by=actor.id,
        consents=[Consent(kind=c["kind"], given_by=c["given_by"], relation=c.get("relation"),
                          notice_version=c["notice_version"], collected_by=actor.id,
                          collected_at=now)
                  for c in data["consents"]],
    )
    for field, value in values.items():
        setattr(ben, f"{field}_enc", pii.encrypt(value, _context(ben_id, field)))
    ben.id_hash = pii.id_number_hash(id_number) if id_number else None
    db.session.add(ben)
    log.info("beneficiary %s recorded by %s in %s", ben.id, actor.id, region)
    return ben


def get_beneficiary_for(actor: User, ben_id: str) -> Beneficiary:
    """The beneficiary if the actor's scope covers it; otherwise 404, as if it did not exist."""
    ben = db.session.get(Beneficiary, ben_id)
    if ben is None or not in_scope(actor, ben.region_code):
        raise NotFound("未找到该受助人")
    return ben


def list_beneficiaries_for(actor: User, *, limit: int, cursor: str | None) -> Page:
    query = select(Beneficiary)
    prefixes = scope_prefixes(actor)
    if prefixes is not None:
        query = query.where(db.or_(*[Beneficiary.region_code.startswith(p) for p in prefixes]))
    return keyset_page(query, (Beneficiary.created_at, Beneficiary.id), ("asc", "asc"),
                       limit=limit, cursor=cursor, cursor_kind="beneficiaries")


@use_case
def view_beneficiary(actor: User, ben: Beneficiary, *, reveal: bool,
                     purpose: str | None = None, request_id: str | None = None
                     ) -> dict[str, Any]:
    """Staff view: identity masked, or in clear with an access-audit row written first."""
    identity = identity_of(ben)
    if reveal and not ben.erased:
        db.session.add(PiiAccess(beneficiary_id=ben.id, actor_id=actor.id,
                                 fields=[f for f in IDENTITY_FIELDS if identity[f]],
                                 purpose=purpose, request_id=request_id))
        log.info("identity of beneficiary %s revealed to %s", ben.id, actor.id)
        shown = identity
    else:
        shown = {
            "real_name": pii.mask_name(identity["real_name"]),
            "id_number": pii.mask_id_number(identity["id_number"]),
            "phone": pii.mask_phone(identity["phone"]),
            "address": pii.mask_address(identity["address"]),
        }
    return {
        "id": ben.id, "alias": ben.alias, "region_code": ben.region_code,
        "birth_year": ben.birth_year, **shown, "revealed": bool(reveal and not ben.erased),
        "assessment": {"categories": ben.categories, "level": ben.level},
        "consents": ben.consents, "created_at": ben.created_at,
        "consent_withdrawn_at": ben.consent_withdrawn_at, "erased": ben.erased,
    }


def list_access_log(ben: Beneficiary) -> list[PiiAccess]:
    return list(db.session.execute(
        select(PiiAccess).where(PiiAccess.beneficiary_id == ben.id).order_by(PiiAccess.id)
    ).scalars())


@use_case
def withdraw_consent(actor: User, ben_id: str) -> Beneficiary:
    """Withdrawal of consent (PIPL art. 15): every wish leaves the public views, photos are
    deleted, identity is erased, the alias is replaced by a pseudonym. Ledger entries stay; new
    ones name no beneficiary at all, and those written before the alias left the ledger keep the
    alias they were written with (an append-only log cannot forget)."""
    ben = get_beneficiary_for(actor, ben_id)
    if ben.consent_withdrawn_at is not None:
        return ben
    now = utcnow()
    for consent in ben.consents:
        if consent.withdrawn_at is None:
            consent.withdrawn_at = now
    ben.consent_withdrawn_at = now
    current().emit(ConsentWithdrawn(ben.id, actor.id))  # wishes hidden, photos deleted
    for field in IDENTITY_FIELDS:
        setattr(ben, f"{field}_enc", None)
    ben.id_hash = None  # the hash is the ID number too, for whoever holds the secret
    ben.birth_year = None
    ben.alias = "受助人" + ben.id[-6:].upper()
    ben.erased = True
    log.info("consent withdrawn for beneficiary %s by %s; identity erased", ben.id, actor.id)
    return ben


def reencrypt_identities(batch_size: int = 200) -> int:
    """After a key rotation: rewrite every identity field still under an old key with the current
    key, a batch per transaction. Rows already current are left alone, so it can be rerun."""
    changed = 0
    last_id = ""
    while True:
        with unit_of_work():
            batch = list(lock("beneficiary", select(Beneficiary).where(Beneficiary.id > last_id)
                              .order_by(Beneficiary.id).limit(batch_size).with_for_update()
                              ).scalars())
            if not batch:
                return changed
            for ben in batch:
                for field in IDENTITY_FIELDS:
                    blob = getattr(ben, f"{field}_enc")
                    if not pii.is_current_key(blob):
                        context = _context(ben.id, field)
                        setattr(ben, f"{field}_enc",
                                pii.encrypt(pii.decrypt(blob, context), context))
                        changed += 1
            last_id = batch[-1].id
        log.info("re-encrypted identity fields up to beneficiary %s (%d fields so far)",
                 last_id, changed)

"""One application for four kinds of help (莆田 极简申请): submitted from the mini-program, verified
by a caseworker of the applicant's village (a `verify_application` task), decided by a
moderator; the applicant is told at each change (app.cases.notices)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.auth.models import User
from app.beneficiaries.models import CATEGORIES, Beneficiary
from app.cases.identity import id_hash, id_number_is_valid, normalize_id_number, seal
from app.cases.lifecycle import APPLICATION, OPEN_APPLICATION_STATUSES
from app.cases.models import ASSISTANCE_TYPES, Application, Person
from app.cases.notices import tell_applicant
from app.cases.signals import insert_ignoring_duplicates
from app.cases.tasks import VERIFY_APPLICATION, open_task
from app.divisions import COUNTY
from app.errors import Conflict, Invalid, NotFound, ValidationFailed
from app.extensions import db
from app.regions import town_of, validate_region_code
from app.types import new_id, utcnow
from app.uow import current, lock, use_case

log = logging.getLogger(__name__)


def _person_for(id_number: str, name: str, region_code: str, now: datetime) -> Person:
    """The person with this ID number, made if new, and locked (one open application each)."""
    key = id_hash(id_number)
    person_id = new_id("per")
    linked = db.session.execute(select(Beneficiary.id).where(Beneficiary.id_hash == key)
                                .limit(1)).scalar()
    insert_ignoring_duplicates(Person, [{
        "id": person_id, "id_hash": key, "region_code": region_code,
        "name_enc": seal(name, "persons", "name", person_id),
        "id_number_enc": seal(id_number, "persons", "id_number", person_id),
        "beneficiary_id": linked, "created_at": now, "updated_at": now}], ["id_hash"])
    return lock("person", select(Person).where(Person.id_hash == key)
                .with_for_update(key_share=True)).scalar_one()


@use_case
def submit_application(user: User, data: dict[str, Any], now: datetime | None = None
                       ) -> Application:
    now = now or utcnow()
    applicant = data["applicant"]
    id_number = normalize_id_number(applicant["id_number"])
    if not id_number_is_valid(id_number):
        raise ValidationFailed({"applicant.id_number": ["身份证号码无效"]},
                               "身份证号码格式或校验位不正确")
    region = validate_region_code(applicant["region_code"], "applicant.region_code")
    if not region.startswith(COUNTY):
        raise ValidationFailed({"applicant.region_code": ["不在本区服务范围内"]},
                               "所在区划不在本区服务范围内")
    categories = data["situation"]["categories"]
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise ValidationFailed({"situation.categories": [f"未知的类别：{'、'.join(unknown)}"]},
                               "困难类别无效")
    if not any(c["kind"] == "data_check" for c in data["consents"]):
        raise Invalid("consent_missing", "申请须同意核对家庭经济状况（data_check）",
                      errors={"consents": ["缺少 data_check 同意"]})
    name = applicant["name"].strip()
    person = _person_for(id_number, name, region, now)
    open_one = db.session.execute(select(Application.id).where(
        Application.person_id == person.id,
        Application.status.in_(OPEN_APPLICATION_STATUSES)).limit(1)).scalar()
    if open_one is not None:
        raise Conflict("application_exists", "该身份证号已有正在办理的申请")
    app_id = new_id("apl")
    application = Application(
        id=app_id, user_id=user.id, person_id=person.id, id_hash=person.id_hash,
        name_enc=seal(name, "applications", "name", app_id),
        id_number_enc=seal(id_number, "applications", "id_number", app_id),
        phone_enc=seal(applicant.get("phone"), "applications", "phone", app_id),
        description_enc=seal(data["situation"].get("description"), "applications",
                             "description", app_id),
        region_code=region, for_self=data["for_self"], categories=sorted(set(categories)),
        consents=[{"kind": c["kind"], "given_by": c["given_by"],
                   "notice_version": c["notice_version"], "at": now.isoformat()}
                  for c in data["consents"]],
        status=None, created_at=now)
    APPLICATION.move(application, "submit", user.id, at=now)
    open_task(VERIFY_APPLICATION, region, person.id, now=now, application_id=app_id,
              beneficiary_id=person.beneficiary_id)
    tell_applicant(application)
    current().produced("application", app_id)
    log.info("application %s received in %s", app_id, region)
    return application


def my_applications(user: User) -> list[Application]:
    return list(db.session.execute(select(Application).where(Application.user_id == user.id)
                                   .order_by(Application.created_at.desc(),
                                             Application.id)).scalars())


@use_case
def decide(moderator: User, application_id: str, decision: str,
           assistance_type: str | None = None, reason: str | None = None,
           now: datetime | None = None) -> Application:
    """approved (with an assistance type, set on the person and their beneficiary) or refused
    (with a reason the applicant reads)."""
    now = now or utcnow()
    application = lock("application", select(Application).where(
        Application.id == application_id).with_for_update()).scalar()
    if application is None:
        raise NotFound("未找到该申请")
    if decision == "approved":
        if assistance_type not in ASSISTANCE_TYPES:
            raise ValidationFailed({"assistance_type": ["批准须注明救助类型"]},
                                   "批准须注明救助类型（dibao、tekun、dibao_edge、temporary）")
        action = "approve"
    elif decision == "refused":
        if not (reason and reason.strip()):
            raise ValidationFailed({"reason": ["不予批准须说明理由"]}, "不予批准须说明理由")
        action = "refuse"
    else:
        raise ValidationFailed({"decision": ["须为 approved 或 refused"]}, "决定无效")
    APPLICATION.move(application, action, moderator.id, reason, at=now)
    application.decided_at, application.decided_by = now, moderator.id
    if action == "approve":
        application.assistance_type = assistance_type
        person = lock("person", select(Person).where(Person.id == application.person_id)
                      .with_for_update(key_share=True)).scalar_one()
        person.assistance_type = assistance_type
        if person.beneficiary_id:
            ben = lock("beneficiary", select(Beneficiary).where(
                Beneficiary.id == person.beneficiary_id).with_for_update()).scalar_one()
            ben.assistance_type = assistance_type
    else:
        application.reason = reason.strip()
    tell_applicant(application)
    return application


def view(application: Application) -> dict[str, Any]:
    """What the applicant sees of their own application: no identity (they typed it, and a
    WeChat account may be shared), and the place cut to the town, as donors see places."""
    return {"id": application.id, "status": application.status,
            "categories": application.categories, "region_code": town_of(application.region_code),
            "for_self": application.for_self, "assistance_type": application.assistance_type,
            "reason": application.reason, "created_at": application.created_at,
            "decided_at": application.decided_at}

"""One application for four kinds of help (莆田 极简申请), from the mini-program."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.beneficiaries.models import CATEGORIES
from app.cases import applications
from app.cases.models import ASSISTANCE_TYPES
from miniprogram_api.blueprint import Blueprint, refuses_valid_input
from miniprogram_api.policy import allow, require_user
from miniprogram_api.schemas import BoundedList, UTCDateTime
from miniprogram_api.tasks import StrictBoolean

blp = Blueprint("applications", __name__, description="救助申请（低保、特困、低保边缘、临时救助）")
blp.url_prefix_rel = ""


class ApplicantIn(ma.Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    # the format; the check character is verified by the service (GB 11643)
    id_number = fields.String(required=True, validate=[
        validate.Length(equal=18),
        validate.Regexp(r"^[0-9]{17}[0-9Xx]$", error="身份证号码格式不正确")])
    phone = fields.String(required=True, validate=validate.Regexp(r"^1[0-9]{10}$",
                                                                  error="手机号码格式不正确"))
    # a division of 泉港区 (350505): the county, a town or a village
    region_code = fields.String(required=True, validate=validate.Regexp(
        r"^350505(?:[0-9]{3}|[0-9]{6})?(?!\n)$", error="须为泉港区（350505）内的区划代码"))


class SituationIn(ma.Schema):
    categories = BoundedList(fields.String(validate=validate.OneOf(CATEGORIES)), required=True,
                             validate=validate.Length(min=1, max=len(CATEGORIES)))
    description = fields.String(load_default=None, validate=validate.Length(max=1000))


class ApplicationConsentIn(ma.Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["data_check"]))
    given_by = fields.String(required=True, validate=validate.OneOf(["self", "guardian", "agent"]))
    notice_version = fields.String(required=True, validate=validate.Length(min=1, max=32))


class ApplicationIn(ma.Schema):
    applicant = fields.Nested(ApplicantIn, required=True)
    for_self = StrictBoolean(required=True)
    situation = fields.Nested(SituationIn, required=True)
    consents = BoundedList(fields.Nested(ApplicationConsentIn), required=True,
                           validate=validate.Length(min=1, max=4))


class ApplicationCreatedOut(ma.Schema):
    id = fields.String()
    status = fields.String()


class ApplicationOut(ApplicationCreatedOut):
    categories = fields.List(fields.String())
    region_code = fields.String(metadata={"description": "所在乡镇（街道）代码"})
    for_self = fields.Boolean()
    assistance_type = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    created_at = UTCDateTime()
    decided_at = UTCDateTime(allow_none=True)


class ApplicationList(ma.Schema):
    items = fields.List(fields.Nested(ApplicationOut))


class DecisionIn(ma.Schema):
    decision = fields.String(required=True, validate=validate.OneOf(["approved", "refused"]))
    assistance_type = fields.String(load_default=None,
                                    validate=validate.OneOf(list(ASSISTANCE_TYPES)))
    reason = fields.String(load_default=None, validate=validate.Length(max=500))


@blp.route("/applications", methods=["POST"])
@blp.arguments(ApplicationIn)
@blp.response(201, ApplicationCreatedOut)
@blp.doc(responses=refuses_valid_input("身份证号码校验位不正确（validation_error）"))
@allow("donor")
def submit(body):
    """提交救助申请（本人或代他人）：须同意核对家庭经济状况；同一身份证号同时只能有一份办理中的申请"""
    application = applications.submit_application(require_user(), body)
    return {"id": application.id, "status": application.status}


@blp.route("/me/applications", methods=["GET"])
@blp.response(200, ApplicationList)
@allow("donor")
def mine():
    """我的申请及办理状态：received → visiting → reviewing → approved | refused"""
    return {"items": [applications.view(a)
                      for a in applications.my_applications(require_user())]}


@blp.route("/applications/<application_id>/decision", methods=["POST"])
@blp.arguments(DecisionIn)
@blp.response(200, ApplicationOut)
@blp.doc(responses=refuses_valid_input(
    "批准未注明救助类型，或不予批准未说明理由（validation_error）"))
@allow("moderator")
def decision(body, application_id):
    """审核决定：approved 须注明救助类型，refused 须说明理由"""
    application = applications.decide(require_user(), application_id, body["decision"],
                                      body["assistance_type"], body["reason"])
    return applications.view(application)

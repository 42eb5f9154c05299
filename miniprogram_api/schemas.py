"""Request and response schemas shared by the HTTP edge.

Input schemas check shape only (types, lengths, enums); services check meaning. Unknown fields
raise (marshmallow's default RAISE), so a client sending `status` or `region_code` where the
server owns it gets a 422 naming the field. Public responses dump through allowlist schemas.
"""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.beneficiaries.models import CATEGORIES, CONSENT_KINDS, LEVELS, MAX_AGE
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.regions import REGION_RE
from app.types import isoformat, utcnow
from app.wishes.models import KINDS, STATUSES


class UTCDateTime(fields.DateTime):
    """RFC 3339 in UTC with a `Z`."""

    def _serialize(self, value, attr, obj, **kwargs):
        return isoformat(value)


class BoundedList(fields.List):
    """A list whose `validate.Length(max=...)` is checked before its items: a body of 100,000
    bad items costs one message, not 100,000 item validations and a 12 MB problem."""

    def _deserialize(self, value, attr, data, **kwargs):
        limits = [v.max for v in self.validators
                  if isinstance(v, validate.Length) and v.max is not None]
        if limits and isinstance(value, (list, tuple)) and len(value) > min(limits):
            raise ma.ValidationError(f"Longer than maximum length {min(limits)}.")
        return super()._deserialize(value, attr, data, **kwargs)


RegionCode = lambda **kw: fields.String(  # noqa: E731 - a field factory
    validate=validate.Regexp(REGION_RE, error="区划代码必须是 6、9 或 12 位数字"), **kw)


class ProblemSchema(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE  # documents that some problems carry more members (request_id, ...)

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    code = fields.String(metadata={"description": "稳定的错误代码，客户端据此分支"})
    errors = fields.Dict(metadata={"description": "字段 → 错误信息"})


class PageArgs(ma.Schema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT,
                           validate=validate.Range(min=1, max=MAX_LIMIT))
    # a `next_cursor` as issued (URL-safe base64 and dots, app/pagination.py): any valid cursor
    # fits in a URL, and a cursor of other characters is refused before it is decoded
    cursor = fields.String(load_default=None, validate=[
        validate.Length(max=512),
        validate.Regexp(r"^[A-Za-z0-9_.-]*$", error="分页游标无效")])


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    return type(name, (ma.Schema,), {
        "items": fields.List(fields.Nested(item_schema)),
        "next_cursor": fields.String(allow_none=True),
    })


# --- auth --------------------------------------------------------------------------------------

class WechatLoginIn(ma.Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=128))


class StaffLoginIn(ma.Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256),
                             load_only=True)


class UserOut(ma.Schema):
    id = fields.String()
    role = fields.String()
    display_name = fields.String()


class TokenOut(ma.Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()
    user = fields.Nested(UserOut)


class MeIn(ma.Schema):
    display_name = fields.String(validate=validate.Length(min=1, max=32), metadata={
        "description": "昵称（小程序昵称填写框）。账本中仅在选择不匿名时显示首字加*（如 陈*）"})


class MeOut(UserOut):
    username = fields.String(allow_none=True)
    regions = fields.List(fields.String(), attribute="region_codes")
    created_at = UTCDateTime()


class StaffOut(MeOut):
    active = fields.Boolean()
    last_login_at = UTCDateTime(allow_none=True)


class StaffUpdateIn(ma.Schema):
    active = fields.Boolean()
    role = fields.String(validate=validate.OneOf(["caseworker", "moderator", "admin"]))
    regions = BoundedList(RegionCode(), validate=validate.Length(max=50))


# --- beneficiaries -----------------------------------------------------------------------------

class AssessmentIn(ma.Schema):
    categories = BoundedList(fields.String(validate=validate.OneOf(CATEGORIES)), required=True,
                             validate=validate.Length(min=1, max=len(CATEGORIES)))
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))


class ConsentIn(ma.Schema):
    kind = fields.String(required=True, validate=validate.OneOf(CONSENT_KINDS))
    given_by = fields.String(required=True, validate=validate.OneOf(["self", "guardian"]))
    relation = fields.String(validate=validate.Length(min=1, max=32))
    notice_version = fields.String(required=True, validate=validate.Length(min=1, max=32))


class BirthYear(validate.Range):
    """0 to MAX_AGE years old this year, as app.beneficiaries.service enforces it. The bounds are
    read each time (when checking, and when the OpenAPI document is built), so they follow the
    calendar in a long-running process."""

    def __init__(self) -> None:
        super().__init__(error="出生年份不合理")

    min = property(lambda self: utcnow().year - MAX_AGE, lambda self, value: None)
    max = property(lambda self: utcnow().year, lambda self, value: None)


class MaxFromSetting(validate.Range):
    """A range whose maximum is a setting (e.g. DONATION_MAX_FEN): read from the running app's
    config when checking, so the document and the check agree with what is configured; without
    an app context (the OpenAPI document built at start-up) the setting's default is shown."""

    def __init__(self, setting: str, *, min: int, error: str) -> None:  # noqa: A002
        self.setting = setting
        super().__init__(min=min, error=error)

    @property
    def max(self) -> int:
        from flask import current_app, has_app_context

        from app.config import SETTINGS

        if has_app_context():
            return int(current_app.config[self.setting])
        return int(SETTINGS[self.setting][1])

    @max.setter
    def max(self, value) -> None:
        pass  # Range.__init__ assigns it; the setting decides


class BeneficiaryIn(ma.Schema):
    real_name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    # the format; the check character is verified by the service (GB 11643)
    id_number = fields.String(validate=[validate.Length(equal=18),
                                        validate.Regexp(r"^[0-9]{17}[0-9Xx]$",
                                                        error="身份证号码格式不正确")])
    phone = fields.String(validate=validate.Regexp(r"^[0-9+\- ]{5,20}$",
                                                   error="电话号码格式不正确"))
    address = fields.String(validate=validate.Length(min=1, max=200))
    birth_year = fields.Integer(required=True, validate=BirthYear())
    region_code = RegionCode(required=True)
    alias = fields.String(required=True, validate=validate.Length(min=1, max=32))
    assessment = fields.Nested(AssessmentIn, required=True)
    consents = BoundedList(fields.Nested(ConsentIn), required=True,
                           validate=validate.Length(min=1, max=10))


class ConsentOut(ma.Schema):
    kind = fields.String()
    given_by = fields.String()
    relation = fields.String(allow_none=True)
    notice_version = fields.String()
    collected_by = fields.String()
    collected_at = UTCDateTime()
    withdrawn_at = UTCDateTime(allow_none=True)


class AssessmentOut(ma.Schema):
    categories = fields.List(fields.String())
    level = fields.String()


class BeneficiaryOut(ma.Schema):
    id = fields.String()
    alias = fields.String()
    region_code = fields.String()
    birth_year = fields.Integer(allow_none=True)
    real_name = fields.String(allow_none=True)
    id_number = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    revealed = fields.Boolean(metadata={"description": "true 时身份字段为明文，且已写入访问审计"})
    assessment = fields.Nested(AssessmentOut)
    consents = fields.List(fields.Nested(ConsentOut))
    created_at = UTCDateTime()
    consent_withdrawn_at = UTCDateTime(allow_none=True)
    erased = fields.Boolean()


class BeneficiarySummaryOut(ma.Schema):
    id = fields.String()
    alias = fields.String()
    region_code = fields.String()
    level = fields.String()
    categories = fields.List(fields.String())
    created_at = UTCDateTime()
    erased = fields.Boolean()


class BeneficiaryReadArgs(ma.Schema):
    reveal = fields.Boolean(load_default=False)
    purpose = fields.String(load_default=None, validate=validate.Length(max=200))


class PiiAccessOut(ma.Schema):
    actor_id = fields.String()
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields")
    purpose = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    at = UTCDateTime()


# --- wishes ------------------------------------------------------------------------------------

_TITLE = validate.Length(min=2, max=60)
_STORY = validate.Length(min=10, max=2000)
_ITEM = validate.Length(min=1, max=120)
_VALUE = validate.Range(min=0, max=100_000_000)


class WishCreateIn(ma.Schema):
    beneficiary_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    title = fields.String(required=True, validate=_TITLE)
    story = fields.String(required=True, validate=_STORY)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    item = fields.String(validate=_ITEM, allow_none=True)
    estimated_value_fen = fields.Integer(required=True, strict=True, validate=_VALUE)


class WishUpdateIn(ma.Schema):
    title = fields.String(validate=_TITLE)
    story = fields.String(validate=_STORY)
    kind = fields.String(validate=validate.OneOf(KINDS))
    item = fields.String(validate=_ITEM, allow_none=True)
    estimated_value_fen = fields.Integer(strict=True, validate=_VALUE)


class RejectIn(ma.Schema):
    reason = fields.String(required=True, validate=validate.Length(min=2, max=500))


class WithdrawIn(ma.Schema):
    reason = fields.String(validate=validate.Length(min=1, max=500))


class PublicWishCard(ma.Schema):
    """The public card: an allowlist. Nothing here identifies the person behind the wish."""

    id = fields.String()
    title = fields.String()
    story = fields.String()
    kind = fields.String()
    item = fields.String(allow_none=True)
    estimated_value_fen = fields.Integer()
    level = fields.String()
    categories = fields.List(fields.String())
    alias = fields.String()
    age_band = fields.String(allow_none=True)
    region_code = fields.Function(lambda wish: wish.region_code[:9],
                                  metadata={"description": "截至乡镇（9 位）的区划代码"})
    status = fields.String()
    published_at = UTCDateTime(allow_none=True)
    due_at = fields.Method("_due_at", allow_none=True)
    fulfilled_at = UTCDateTime(allow_none=True)

    def _due_at(self, wish):
        return isoformat(wish.due_at) if wish.status == "claimed" else None


class StaffWishRecord(PublicWishCard):
    """The full record, for staff in scope."""

    region_code = fields.String()
    beneficiary_id = fields.String()
    author_id = fields.String()
    approved_by = fields.String(allow_none=True)
    reject_reason = fields.String(allow_none=True)
    hidden = fields.Boolean()
    created_at = UTCDateTime()
    updated_at = UTCDateTime()
    submitted_at = UTCDateTime(allow_none=True)
    due_at = UTCDateTime(allow_none=True)


class WishTransitionOut(ma.Schema):
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    action = fields.String()
    actor_id = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    at = UTCDateTime()


class FeedArgs(PageArgs):
    kind = fields.String(validate=validate.OneOf(KINDS))
    level = fields.String(validate=validate.OneOf(LEVELS))
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    region = RegionCode()
    sort = fields.String(load_default="urgency", validate=validate.OneOf(["urgency", "newest"]))


class StaffWishArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(STATUSES))

"""Claims (认领): a donor claims an open wish, delivers it within the deadline, proves it."""
from __future__ import annotations

from flask import Response, jsonify
from miniprogram_api.blueprint import Blueprint
import marshmallow as ma
from marshmallow import fields, validate

from app.auth.policy import allow, require_user
from app.claims import service
from app.extensions import db
from app.ratelimit import rate_limited
from app.claims.models import Claim
from miniprogram_api.idempotent import current_record, idempotent
from miniprogram_api.schemas import PageArgs, PublicWishCard, UTCDateTime, page_schema

blp = Blueprint("claims", __name__, description="认领与48小时承诺")
blp.url_prefix_rel = ""

IDEMPOTENCY_HEADER = {"in": "header", "name": "Idempotency-Key", "required": True,
                      "schema": {"type": "string", "maxLength": 200},
                      "description": "客户端生成的唯一键；网络重试时使用同一个键"}


class ClaimOut(ma.Schema):
    id = fields.String()
    wish_id = fields.String()
    status = fields.String()
    claimed_at = UTCDateTime()
    due_at = UTCDateTime()
    delivered_at = UTCDateTime(allow_none=True)
    ended_at = UTCDateTime(allow_none=True)
    dispute_count = fields.Integer()
    last_dispute_reason = fields.String(allow_none=True)
    anonymous = fields.Boolean(metadata={"description": "公开账本中是否匿名显示"})
    wish = fields.Nested(PublicWishCard)


class ClaimIn(ma.Schema):
    anonymous = fields.Boolean(load_default=True, metadata={
        "description": "true（默认）：公开账本显示“爱心人士”；false：显示姓氏加*（如 陈*）"})


class DisputeIn(ma.Schema):
    reason = fields.String(required=True, validate=validate.Length(min=2, max=500))


ClaimPage = page_schema(ClaimOut, "ClaimPage")
_claim_out = ClaimOut()


def created(schema: ma.Schema, obj) -> Response:
    """A 201 rendered here, not by @blp.response: @idempotent must store the exact bytes sent."""
    response = jsonify(schema.dump(obj))
    response.status_code = 201
    return response


def _render_claim(claim_id: str) -> Response:
    return created(_claim_out, db.session.get(Claim, claim_id))


@blp.route("/wishes/<wish_id>/claims", methods=["POST"])
@rate_limited("claims")
@blp.arguments(ClaimIn, required=False)
@blp.response(201, ClaimOut)
@blp.alt_response(409, description="wish_already_claimed / wish_not_open / claim_limit_reached")
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
@allow("donor")
@idempotent(_render_claim)
def claim(body, wish_id):
    """认领一个待认领的心愿；须在 due_at 之前送达并上传凭证。请求体可省略"""
    return created(_claim_out, service.claim_wish(require_user(), wish_id, current_record(),
                                                  anonymous=body.get("anonymous", True)))


@blp.route("/me/claims", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, ClaimPage)
@allow("donor")
def my_claims(args):
    """我的认领，最新的在前"""
    page = service.list_claims_of(require_user(), limit=args["limit"], cursor=args["cursor"])
    return page


@blp.route("/claims/<claim_id>", methods=["GET"])
@blp.response(200, ClaimOut)
@allow("donor", "caseworker", "moderator")
def get(claim_id):
    """认领详情（认领人、负责该区划的协理员、审核员）"""
    return service.get_claim_for(require_user(), claim_id)


@blp.route("/claims/<claim_id>/release", methods=["POST"])
@blp.response(200, ClaimOut)
@allow("donor")
def release(claim_id):
    """放弃认领；心愿立即重新开放"""
    return service.release_claim(require_user(), claim_id)


@blp.route("/claims/<claim_id>/confirm", methods=["POST"])
@blp.response(200, ClaimOut)
@blp.alt_response(409, description="invalid_transition / proof_not_ready：送达照片还在处理中或处理失败")
@allow("caseworker")
def confirm(claim_id):
    """协理员确认送达：认领完成，心愿实现，记入公开账本。须等送达照片处理完成"""
    return service.confirm_claim(require_user(), claim_id)


@blp.route("/claims/<claim_id>/dispute", methods=["POST"])
@blp.arguments(DisputeIn)
@blp.response(200, ClaimOut)
@allow("caseworker")
def dispute(body, claim_id):
    """对送达凭证提出异议：认领恢复进行中，新的截止时间为 24 小时后，并通知认领人"""
    return service.dispute_claim(require_user(), claim_id, body["reason"])

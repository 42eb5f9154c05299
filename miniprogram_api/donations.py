"""Money donations to the 505 fund (505公益基金), and WeChat Pay's payment notifications."""
from __future__ import annotations

import functools

import marshmallow as ma
from flask import Response, jsonify, request
from miniprogram_api.blueprint import Blueprint
from marshmallow import fields, validate

from app import wechatpay
from app.auth.policy import PUBLIC, allow, require_user
from app.extensions import db
from app.fund import donations as service
from app.fund import payments
from app.fund.models import Donation
from app.ratelimit import rate_limited
from miniprogram_api.claims import IDEMPOTENCY_HEADER
from miniprogram_api.idempotent import current_record, idempotent
from miniprogram_api.schemas import MaxFromSetting, PageArgs, UTCDateTime, page_schema

blp = Blueprint("donations", __name__, description="505公益基金：爱心捐款与微信支付")
blp.url_prefix_rel = ""

class DonationIn(ma.Schema):
    amount_fen = fields.Integer(
        required=True, strict=True,
        validate=MaxFromSetting("DONATION_MAX_FEN", min=1,
                                error="单笔捐款须在 {min} 到 {max} 分之间"),
        metadata={"description": "捐款金额（分），上限为配置 DONATION_MAX_FEN（默认 5000000）"})
    wish_id = fields.String(validate=validate.Length(min=1, max=64),
                            metadata={"description": "指定捐给某个待认领的心愿（可选）"})
    anonymous = fields.Boolean(required=True,
                               metadata={"description": "true：账本显示“爱心人士”；false：显示姓氏加*"})
    receipt_requested = fields.Boolean(required=True, metadata={"description": "是否需要捐赠票据"})


class PayParams(ma.Schema):
    appId = fields.String()
    timeStamp = fields.String()
    nonceStr = fields.String()
    package = fields.String()
    signType = fields.String()
    paySign = fields.String()


class DonationOut(ma.Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "pending_payment / paid / closed"})
    amount_fen = fields.Integer()
    wish_id = fields.String(allow_none=True)
    anonymous = fields.Boolean()
    receipt_requested = fields.Boolean()
    donor_display = fields.Method("_display", metadata={"description": "公开账本中显示的捐赠人"})
    created_at = UTCDateTime()
    expires_at = UTCDateTime(metadata={"description": "超过此时间未支付，订单关闭"})
    paid_at = UTCDateTime(allow_none=True)
    closed_at = UTCDateTime(allow_none=True)
    transaction_id = fields.String(allow_none=True, metadata={"description": "微信支付订单号"})
    ledger_index = fields.Integer(allow_none=True, metadata={"description": "公开账本中的编号"})

    def _display(self, obj) -> str:
        return service.display_for(obj)


class DonationCreated(DonationOut):
    pay = fields.Nested(PayParams, allow_none=True,
                        metadata={"description": "传给 wx.requestPayment 的参数"})


class NotifyOut(ma.Schema):
    code = fields.String()
    message = fields.String()


NOTIFY_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "微信支付 v3 支付结果通知（resource 以 APIv3 密钥加密）",
    "properties": {
        "id": {"type": "string"}, "create_time": {"type": "string"},
        "event_type": {"type": "string", "example": "TRANSACTION.SUCCESS"},
        "resource_type": {"type": "string"}, "summary": {"type": "string"},
        "resource": {"type": "object", "properties": {
            "algorithm": {"type": "string"}, "ciphertext": {"type": "string"},
            "associated_data": {"type": "string"}, "original_type": {"type": "string"},
            "nonce": {"type": "string"}}},
    }}}}}
NOTIFY_HEADERS = [{"in": "header", "name": name, "required": True, "schema": {"type": "string"}}
                  for name in ("Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce",
                               "Wechatpay-Serial")]

DonationPage = page_schema(DonationOut, "DonationPage")
_created = DonationCreated()


def _render(donation: Donation, pay: dict | None) -> Response:
    """A 201 rendered here, not by @blp.response: @idempotent must store the exact bytes sent."""
    data = _created.dump(donation)
    data["pay"] = pay
    response = jsonify(data)
    response.status_code = 201
    return response


def _render_donation(donation_id: str) -> Response:
    donation = db.session.get(Donation, donation_id)
    return _render(donation, service.ensure_order(donation))


def _payments_on(view):
    """Refuse before @idempotent stores a key: without WeChat Pay nothing at all is written."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        wechatpay.require_configured()
        return view(*args, **kwargs)
    return wrapper


@blp.route("/donations", methods=["POST"])
@rate_limited("donations")
@blp.arguments(DonationIn)
@blp.response(201, DonationCreated)
@blp.alt_response(409, description="wish_not_open / donation_closed")
@blp.alt_response(503, description="wechatpay_unavailable：下单失败，可用同一个 Idempotency-Key 重试；"
                                    "payments_not_configured：未开通在线捐款（未配置微信支付），"
                                    "重试无用，不记录任何数据，无 Retry-After")
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
@allow("donor")
@_payments_on
@idempotent(_render_donation)
def donate(body):
    """向505公益基金捐款：创建待支付的捐款并下微信支付订单，返回 wx.requestPayment 所需参数"""
    return _render(*service.create_donation(require_user(), body, current_record()))


@blp.route("/donations/<donation_id>", methods=["GET"])
@blp.response(200, DonationOut)
@allow("donor", "moderator")
def get(donation_id):
    """捐款详情（捐款人本人或审核员）"""
    return service.get_donation_for(require_user(), donation_id)


@blp.route("/me/donations", methods=["GET"])
@blp.arguments(PageArgs, location="query")
@blp.response(200, DonationPage)
@allow("donor")
def my_donations(args):
    """我的捐款，最新的在前"""
    return service.list_donations_of(require_user(), limit=args["limit"], cursor=args["cursor"])


@blp.route("/payments/wechatpay/notify", methods=["POST"])
@blp.response(200, NotifyOut)
@blp.alt_response(400, description="payment_mismatch / payment_notification_malformed")
@blp.alt_response(401, description="payment_notification_invalid：签名无效")
@blp.alt_response(503, description="payments_not_configured：未开通在线捐款，通知未处理，微信支付稍后重发")
@blp.doc(requestBody=NOTIFY_BODY, parameters=NOTIFY_HEADERS)
@allow(PUBLIC)
def wechatpay_notify():
    """微信支付结果通知（由微信支付服务器调用）：验签、解密、核对金额后入账；重复通知只确认不重复入账"""
    payments.handle_notification(request.headers, request.get_data(cache=False))
    return {"code": "SUCCESS", "message": "成功"}

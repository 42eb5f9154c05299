"""Disbursements from the 505 fund (moderators): request, approve by a second moderator, reject;
and reversals of ledger entries."""
from __future__ import annotations

import marshmallow as ma
from miniprogram_api.blueprint import Blueprint
from marshmallow import fields, validate

from miniprogram_api.policy import allow, require_user
from app.fund import disbursements as service
from app.fund import reversals
from app.fund.models import DISBURSEMENT_STATUSES
from miniprogram_api.ledger import MAX_INDEX
from miniprogram_api.schemas import PageArgs, UTCDateTime, page_schema

blp = Blueprint("disbursements", __name__, description="505公益基金：拨付（双人审批）与账目冲正")
blp.url_prefix_rel = ""


# More than the fund could ever hold (100 亿元); also keeps a huge number out of the database.
MAX_AMOUNT_FEN = 10**12


class DisbursementIn(ma.Schema):
    amount_fen = fields.Integer(required=True, strict=True,
                                validate=validate.Range(min=1, max=MAX_AMOUNT_FEN))
    purpose = fields.String(required=True, validate=validate.Length(min=2, max=200),
                            metadata={"description": "用途；会公开显示在账本中，不得含个人信息"})
    wish_id = fields.String(validate=validate.Length(min=1, max=64))
    payee = fields.String(validate=validate.Length(min=1, max=100),
                          metadata={"description": "收款方（仅内部可见）"})
    note = fields.String(validate=validate.Length(max=500),
                         metadata={"description": "内部备注"})


class DisbursementRejectIn(ma.Schema):
    reason = fields.String(required=True, validate=validate.Length(min=2, max=500))


class DisbursementArgs(PageArgs):
    status = fields.String(load_default=None, validate=validate.OneOf(DISBURSEMENT_STATUSES))


class DisbursementOut(ma.Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "pending_approval / approved / rejected"})
    amount_fen = fields.Integer()
    purpose = fields.String()
    wish_id = fields.String(allow_none=True)
    payee = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    requested_by = fields.String()
    requested_at = UTCDateTime()
    approved_by = fields.String(allow_none=True)
    decided_at = UTCDateTime(allow_none=True)
    reject_reason = fields.String(allow_none=True)
    ledger_index = fields.Integer(allow_none=True)


class ReversalIn(ma.Schema):
    index = fields.Integer(required=True, strict=True,
                           validate=validate.Range(min=0, max=MAX_INDEX),
                           metadata={"description": "要冲正的账目编号"})
    reason = fields.String(required=True, validate=validate.Length(min=2, max=500),
                           metadata={"description": "冲正原因（仅内部可见）"})


class ReversalOut(ma.Schema):
    id = fields.String()
    ledger_index = fields.Integer(metadata={"description": "被冲正的账目编号"})
    reversal_index = fields.Integer(metadata={"description": "新的冲正账目编号"})
    value_fen = fields.Integer(metadata={"description": "随之退回或收回的金额（分）；0 表示不涉及资金"})
    reason = fields.String()
    requested_by = fields.String()
    created_at = UTCDateTime()


DisbursementPage = page_schema(DisbursementOut, "DisbursementPage")


@blp.route("/disbursements", methods=["POST"])
@blp.arguments(DisbursementIn)
@blp.response(201, DisbursementOut)
@blp.alt_response(409, description="insufficient_funds")
@allow("moderator")
def request_disbursement(body):
    """申请从505公益基金拨付；须由另一位审核员批准后才入账"""
    return service.request_disbursement(require_user(), body)


@blp.route("/disbursements", methods=["GET"])
@blp.arguments(DisbursementArgs, location="query")
@blp.response(200, DisbursementPage)
@allow("moderator")
def list_disbursements(args):
    """拨付申请列表，最新的在前；可按状态筛选"""
    return service.list_disbursements(status=args["status"], limit=args["limit"],
                                      cursor=args["cursor"])


@blp.route("/disbursements/<disbursement_id>", methods=["GET"])
@blp.response(200, DisbursementOut)
@allow("moderator")
def get(disbursement_id):
    """拨付申请详情"""
    return service.get_disbursement(disbursement_id)


@blp.route("/disbursements/<disbursement_id>/approve", methods=["POST"])
@blp.response(200, DisbursementOut)
@blp.alt_response(403, description="second_approver_required：申请人不能批准自己的申请")
@blp.alt_response(409, description="insufficient_funds / invalid_transition")
@allow("moderator")
def approve(disbursement_id):
    """批准拨付（申请人以外的审核员）：记账并写入公开账本"""
    return service.approve_disbursement(require_user(), disbursement_id)


@blp.route("/disbursements/<disbursement_id>/reject", methods=["POST"])
@blp.arguments(DisbursementRejectIn)
@blp.response(200, DisbursementOut)
@allow("moderator")
def reject(body, disbursement_id):
    """驳回拨付申请（申请人也可以撤回自己的申请）"""
    return service.reject_disbursement(require_user(), disbursement_id, body["reason"])


@blp.route("/ledger/reversals", methods=["POST"])
@blp.arguments(ReversalIn)
@blp.response(201, ReversalOut)
@blp.alt_response(409,
                  description="already_reversed / cannot_reverse_reversal / insufficient_funds")
@allow("moderator")
def reverse(body):
    """冲正一条账目：追加一条注明原编号与叶哈希的冲正账目；原账目不变。冲正捐款即退款，冲正拨付即收回"""
    return reversals.reverse_entry(require_user(), body["index"], body["reason"])

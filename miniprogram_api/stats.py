"""Public platform totals (`GET /stats`): numbers only, never an id or a person."""
from __future__ import annotations

import marshmallow as ma
from miniprogram_api.blueprint import Blueprint
from marshmallow import fields

from app import stats
from miniprogram_api.policy import PUBLIC, allow

blp = Blueprint("stats", __name__, description="公开统计")
blp.url_prefix_rel = "/stats"


class WishTotals(ma.Schema):
    wishes_published = fields.Integer(metadata={"description": "曾经发布（进入 open）的心愿数"})
    wishes_open = fields.Integer(metadata={"description": "当前可认领的心愿数"})
    wishes_fulfilled = fields.Integer(metadata={"description": "已实现的心愿数"})
    value_fulfilled_fen = fields.Integer(metadata={"description": "已实现心愿的估值合计（分）"})


class StatsOut(WishTotals):
    claims_expired = fields.Integer(metadata={"description": "超时未送达而失效的认领数"})
    donors = fields.Integer(metadata={"description": "至少认领过一次的爱心人士人数"})
    money_donated_fen = fields.Integer(
        metadata={"description": "505 公益基金收到的捐款（分），扣除已冲正（退款）的"})
    money_disbursed_fen = fields.Integer(
        metadata={"description": "505 公益基金拨付的金额（分），扣除已冲正的"})
    by_kind = fields.Dict(keys=fields.String(), values=fields.Nested(WishTotals),
                          metadata={"description": "按心愿类型（goods/service/education）"})
    by_level = fields.Dict(keys=fields.String(), values=fields.Nested(WishTotals),
                           metadata={"description": "按困难等级（red/orange/yellow/blue）"})


@blp.route("", methods=["GET"])
@blp.response(200, StatsOut)
@allow(PUBLIC)
def get_stats():
    """平台公开统计：心愿、认领、爱心人士与金额合计，并按类型与等级细分（数秒缓存）"""
    return stats.public_stats()

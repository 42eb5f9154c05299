"""Signals in from partner systems: thin over the cases domain's `ingest_signals`.

The schema checks only the envelope (a list of at most 1000 objects): each item is checked by the
service, which answers a malformed one with its code and still takes the others.
"""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from app.cases.signals import MAX_BATCH, SignalSource, ingest_signals
from app.partners.tokens import SIGNALS_WRITE
from miniprogram_api.blueprint import Blueprint, refuses_valid_input
from miniprogram_api.policy import PARTNER_CLIENT, allow, current_partner_client
from miniprogram_api.schemas import BoundedList

blp = Blueprint("signals", __name__, description="政策找人：合作方系统推送的线索")
blp.url_prefix_rel = ""

MAX_ITEMS = MAX_BATCH  # 1000
RESULTS = ("accepted", "duplicate", "rejected")


class SignalBatchIn(ma.Schema):
    items = BoundedList(fields.Dict(), required=True, validate=validate.Length(max=MAX_ITEMS),
                        metadata={"description": "每条 {external_id, kind, subject: {id_number, "
                                                 "name, region_code}, observed_at, data}；"
                                                 "逐条校验，单条有误不影响其他条"})


class SignalResultOut(ma.Schema):
    external_id = fields.String(allow_none=True)
    result = fields.String(validate=validate.OneOf(RESULTS))
    code = fields.String(metadata={"description": "rejected 时的原因代码"})
    alert_id = fields.String()


class SignalBatchOut(ma.Schema):
    items = fields.List(fields.Nested(SignalResultOut))


@blp.route("/signals", methods=["POST"])
@blp.arguments(SignalBatchIn)
@blp.response(200, SignalBatchOut)
@blp.doc(responses=refuses_valid_input(
    "items 中任何位置（包括对象的键）含空字符 U+0000 或孤立的代理项：整批拒绝（422），"
    "文档无法用模式描述任意对象的键"))
@allow(PARTNER_CLIENT, scopes=(SIGNALS_WRITE,))
def post_signals(body):
    """合作方系统批量推送线索（每批至多 1000 条），逐条答复 accepted / duplicate / rejected；
    同一客户端同一 external_id 重复推送为 duplicate，不产生任何变化"""
    client = current_partner_client()
    source = SignalSource(client_id=client.client_id, department=client.department,
                          region_code=client.region_code)
    return {"items": ingest_signals(source, body["items"])}

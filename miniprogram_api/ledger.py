"""The open ledger's public read side: signed checkpoint, verifier key, entries, proofs."""
from __future__ import annotations

import base64
import json

import marshmallow as ma
from flask import Response
from miniprogram_api.blueprint import Blueprint, refuses_valid_input
from marshmallow import fields, validate

from miniprogram_api.policy import PUBLIC, allow
from app.errors import NotFound
from app.ledger import log as ledger

blp = Blueprint("ledger", __name__, description="公开账本（可验证的 Merkle 树日志）")
blp.url_prefix_rel = "/ledger"

class KeyOut(ma.Schema):
    origin = fields.String(metadata={"description": "检查点第一行（即签名密钥名）"})
    vkey = fields.String(metadata={"description": "C2SP 验证公钥 <name>+<hex id>+<base64>"})


class EntryOut(ma.Schema):
    index = fields.Integer()
    entry = fields.Dict(metadata={"description": "账目内容（leaf_b64 解码后的 JSON）"})
    leaf_b64 = fields.String(metadata={"description": "被哈希的原始字节（规范 JSON），base64"})


class EntryPage(ma.Schema):
    items = fields.List(fields.Nested(EntryOut))
    tree_size = fields.Integer(metadata={"description": "当前账本条目总数"})


# Far beyond any real ledger, and start + limit still fits the BIGINT index column (a start of
# 10**30 was a 500 from PostgreSQL; now it is a 422, and such an index in a path is a 404).
MAX_INDEX = 2**53


class EntryArgs(ma.Schema):
    start = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_INDEX))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class InclusionArgs(ma.Schema):
    index = fields.Integer(required=True, validate=validate.Range(min=0),
                           metadata={"description": "须小于 tree_size"})
    # an empty tree includes nothing: tree_size starts at 1 (documented, not just enforced)
    tree_size = fields.Integer(required=True, validate=validate.Range(min=1),
                               metadata={"description": "不超过账本当前大小"})


class ConsistencyArgs(ma.Schema):
    # a proof from the empty tree means nothing: first starts at 1 (documented, not just enforced)
    first = fields.Integer(required=True, validate=validate.Range(min=1),
                           metadata={"description": "不大于 second"})
    second = fields.Integer(required=True, validate=validate.Range(min=1),
                            metadata={"description": "不超过账本当前大小"})


class InclusionOut(ma.Schema):
    index = fields.Integer()
    tree_size = fields.Integer()
    hashes = fields.List(fields.String(), metadata={"description": "RFC 6962 审计路径，十六进制"})


class ConsistencyOut(ma.Schema):
    first = fields.Integer()
    second = fields.Integer()
    hashes = fields.List(fields.String(), metadata={"description": "RFC 6962 一致性证明，十六进制"})


def _item(row) -> dict:
    leaf = bytes(row.leaf)
    return {"index": row.index, "entry": json.loads(leaf.decode("utf-8")),
            "leaf_b64": base64.b64encode(leaf).decode()}


@blp.route("/checkpoint", methods=["GET"])
@blp.doc(responses={"200": {"description": "C2SP tlog-checkpoint 签名笔记（Ed25519）", "content": {
    "text/plain": {"schema": {"type": "string"}}}}})
@allow(PUBLIC)
def checkpoint():
    """当前签名检查点：来源、树大小、根哈希、签名；账本增长后自动签发新的检查点"""
    return Response(ledger.checkpoint(), content_type="text/plain; charset=utf-8")


@blp.route("/key", methods=["GET"])
@blp.response(200, KeyOut)
@allow(PUBLIC)
def key():
    """检查点的验证公钥"""
    origin, vkey = ledger.verifier_key()
    return {"origin": origin, "vkey": vkey}


@blp.route("/entries", methods=["GET"])
@blp.arguments(EntryArgs, location="query")
@blp.response(200, EntryPage)
@allow(PUBLIC)
def entries(args):
    """按序号读取账目（从 start 起最多 limit 条）"""
    return {"items": [_item(r) for r in ledger.entries(args["start"], args["limit"])],
            "tree_size": ledger.size()}


@blp.route("/entries/<int:index>", methods=["GET"])
@blp.response(200, EntryOut)
@allow(PUBLIC)
def entry(index):
    """读取一条账目"""
    rows = ledger.entries(index, 1) if index <= MAX_INDEX else []
    if not rows:
        raise NotFound("账本中没有该序号的账目")
    return _item(rows[0])


@blp.route("/proof/inclusion", methods=["GET"])
@blp.arguments(InclusionArgs, location="query")
@blp.response(200, InclusionOut)
@blp.doc(responses=refuses_valid_input(
    "参数有误（validation_error）：tree_size 超过账本当前大小（见 /ledger/checkpoint），"
    "或 index 不小于 tree_size"))
@allow(PUBLIC)
def inclusion(args):
    """包含证明：第 index 条账目在大小为 tree_size 的树中"""
    hashes = ledger.inclusion(args["index"], args["tree_size"])
    return {**args, "hashes": [h.hex() for h in hashes]}


@blp.route("/proof/consistency", methods=["GET"])
@blp.arguments(ConsistencyArgs, location="query")
@blp.response(200, ConsistencyOut)
@blp.doc(responses=refuses_valid_input(
    "参数有误（validation_error）：second 超过账本当前大小（见 /ledger/checkpoint），"
    "或 first 大于 second"))
@allow(PUBLIC)
def consistency(args):
    """一致性证明：大小为 first 的树是大小为 second 的树的前缀"""
    hashes = ledger.consistency(args["first"], args["second"])
    return {**args, "hashes": [h.hex() for h in hashes]}

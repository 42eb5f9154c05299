"""The open ledger as a C2SP tlog-tiles log (https://c2sp.org/tlog-tiles), for transparency-log
tools to mirror and verify: prefix /api/v1/ledger/tlog.

The checkpoint here is the latest *signed* one, read without signing: a GET on this surface never
takes the ledger's writer lock nor writes, so mirrors polling it cannot contend with appends. The
signer is the ledger-checkpoint job, rung after every commit that appends (and periodically), so
this lags the log by seconds; /ledger/checkpoint still signs on demand. Tiles are bounded by the
same signed checkpoint, so nothing here reveals an entry before a signed tree commits to it.
"""
from __future__ import annotations

import gzip

from flask import Response, request
from miniprogram_api.blueprint import Blueprint

from miniprogram_api.policy import PUBLIC, allow
from app.errors import DomainError, NotFound
from app.ledger import tiles

blp = Blueprint("ledger_tiles", __name__,
                description="公开账本的 C2SP tlog-tiles 静态布局（供透明日志工具镜像与验证）")
blp.url_prefix_rel = "/ledger/tlog"

OCTETS = "application/octet-stream"
# Every tile that exists is immutable (the ledger tables refuse UPDATE and DELETE); partial ones
# too: a tile .p/W always holds the same W hashes. 404s are never cached (problem+json: no-store),
# so a tile becomes visible as soon as a checkpoint covers it.
IMMUTABLE = "public, max-age=31536000, immutable"
# The spec: the checkpoint's headers SHOULD prevent caching beyond a few seconds.
CHECKPOINT_CACHE = "public, max-age=5"

_BINARY = {"schema": {"type": "string", "format": "binary"}}


def _not_found(exc: Exception) -> DomainError:
    return NotFound(f"没有这个瓦片：{exc}")


def _octets(data: bytes, *, compress: bool = False) -> Response:
    response = Response(data, content_type=OCTETS)
    if compress:
        # The spec: entry bundles SHOULD be compressed at the HTTP layer.
        response.vary.add("Accept-Encoding")
        if request.accept_encodings["gzip"]:
            response.set_data(gzip.compress(data, mtime=0))
            response.headers["Content-Encoding"] = "gzip"
    response.headers["Cache-Control"] = IMMUTABLE
    return response


@blp.route("/checkpoint", methods=["GET"])
@blp.doc(responses={"200": {"description": "最新的已签名检查点（C2SP tlog-checkpoint 签名笔记）",
                            "content": {"text/plain": {"schema": {"type": "string"}}}}})
@blp.alt_response(404, response="NOT_FOUND")
@allow(PUBLIC)
def checkpoint():
    """tlog-tiles 检查点：最新已签名的检查点（只读，不签发新的；签名任务在账本增长后数秒内签发）"""
    latest = tiles.latest_checkpoint()
    if latest is None:
        raise NotFound("账本尚未签发检查点")
    response = Response(latest.note, content_type="text/plain; charset=utf-8")
    response.headers["Cache-Control"] = CHECKPOINT_CACHE
    return response


@blp.route("/tile/<path:tile>", methods=["GET"], parameters=[{
    "in": "path", "name": "tile", "example": "1/x001/234.p/17",
    "description": ("`<L>/<N>[.p/<W>]`，含斜杠，按原样拼入路径（不要转义）：L 为 0..63（无前导零）；"
                    "N 按三位一组书写，除最后一组外都以 x 开头（1234067 → `x001/x234/067`）；"
                    "`.p/<W>` 仅用于不满的瓦片，W 为 1..255（无前导零）")}])
@blp.doc(
    summary="Merkle 哈希瓦片 tile/<L>/<N>[.p/<W>]",
    description=("第 8L 层的 W 个节点哈希（每个 32 字节，即 RFC 6962 中 256^L 条连续账目的 MTH）。"
                 "仅提供最新已签名检查点覆盖的瓦片；超出的、以及非规范写法的路径一律 404。"),
    responses={"200": {"description": "W×32 字节的哈希（满瓦片 8192 字节）；永不变化，可长期缓存",
                       "content": {OCTETS: _BINARY}}})
@blp.alt_response(404, response="NOT_FOUND")
@allow(PUBLIC)
def tile(tile):
    try:
        wanted = tiles.parse_tile_path(tile)
        return _octets(tiles.hash_tile(wanted))
    except tiles.TileNotFound as exc:
        raise _not_found(exc) from None


@blp.route("/tile/entries/<path:bundle>", methods=["GET"], parameters=[{
    "in": "path", "name": "bundle", "example": "x001/234.p/5",
    "description": "`<N>[.p/<W>]`，写法同哈希瓦片（含斜杠，不要转义）"}])
@blp.doc(
    summary="账目包 tile/entries/<N>[.p/<W>]",
    description=("第 N×256 起的 W 条账目，每条为 2 字节大端长度加被哈希的原始字节（规范 JSON），"
                 "对应第 0 层哈希瓦片。仅提供最新已签名检查点覆盖的部分，其余 404。"
                 "客户端声明接受 gzip 时以 gzip 传输。"),
    responses={"200": {"description": "长度前缀的账目序列；永不变化，可长期缓存",
                       "content": {OCTETS: _BINARY}}})
@blp.alt_response(404, response="NOT_FOUND")
@allow(PUBLIC)
def bundle(bundle):
    try:
        wanted = tiles.parse_bundle_path(bundle)
        return _octets(tiles.entry_bundle(wanted), compress=True)
    except tiles.TileNotFound as exc:
        raise _not_found(exc) from None

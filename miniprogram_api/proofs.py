"""Photo proofs of delivery, and the signed-link route that serves stored photos."""
from __future__ import annotations

import functools

import marshmallow as ma
from flask import current_app, jsonify, request, send_file
from miniprogram_api.blueprint import Blueprint
from marshmallow import fields, validate
from werkzeug.exceptions import RequestEntityTooLarge

from miniprogram_api.policy import PUBLIC, allow, require_user
from app.claims import proofs as service
from app.claims.models import Proof
from app.errors import NotFound, TooLarge
from app.extensions import db
from app.media import images
from app.media.signing import verify
from app.media.storage import content_type_for, get_storage
from miniprogram_api.ratelimit import rate_limited
from miniprogram_api.claims import IDEMPOTENCY_HEADER
from miniprogram_api.idempotent import idempotent
from miniprogram_api.schemas import UTCDateTime

blp = Blueprint("proofs", __name__, description="送达凭证照片")
blp.url_prefix_rel = ""


class ProofForm(ma.Schema):
    note = fields.String(load_default=None, validate=validate.Length(max=500))


class ProofFiles(ma.Schema):
    photo = fields.Raw(required=True, metadata={"type": "string", "format": "binary",
                                                "description": "JPEG、PNG 或 WebP 照片"})


class ProofOut(ma.Schema):
    id = fields.String()
    claim_id = fields.String()
    status = fields.String(metadata={"description": "processing → ready（或 failed）"})
    note = fields.String(allow_none=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    created_at = UTCDateTime()
    processed_at = UTCDateTime(allow_none=True)
    image_url = fields.String(allow_none=True, metadata={"description": "限时签名链接"})
    thumb_url = fields.String(allow_none=True)


def _dump(proof: Proof) -> dict:
    return ProofOut().dump({**{c: getattr(proof, c) for c in (
        "id", "claim_id", "status", "note", "width", "height", "created_at", "processed_at")},
        **service.links(proof)})


def _render_proof(proof_id: str):
    return _created(db.session.get(Proof, proof_id))


def _created(proof: Proof):
    response = jsonify(_dump(proof))
    response.status_code = 201
    return response


def upload_limit(view):
    """Refuse an oversized upload from its Content-Length, before the body is read; a body that
    turns out longer than it said is cut off by Werkzeug at the same limit."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        limit = current_app.config["MAX_UPLOAD_BYTES"]
        # multipart framing adds a little around the photo itself
        request.max_content_length = limit + 64 * 1024
        images.ensure_upload_size(request.content_length, limit + 64 * 1024)
        try:
            return view(*args, **kwargs)
        except RequestEntityTooLarge:
            raise TooLarge("upload_too_large",
                           f"照片不能超过 {limit / (1024 * 1024):g} MB") from None

    return wrapper


@blp.route("/claims/<claim_id>/proofs", methods=["POST"])
@rate_limited("uploads")
@upload_limit
@blp.arguments(ProofForm, location="form")
@blp.arguments(ProofFiles, location="files")
@blp.response(201, ProofOut)
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
@allow("donor")
@idempotent(_render_proof)
def upload(form, files, claim_id):
    """上传送达照片：认领变为已送达，计时停止；照片去除全部元数据后重新编码保存"""
    photo = files["photo"].read(current_app.config["MAX_UPLOAD_BYTES"] + 1)
    proof = service.submit_proof(require_user(), claim_id, photo, form.get("note"))
    return _created(proof)


@blp.route("/claims/<claim_id>/proofs", methods=["GET"])
@blp.response(200, ProofOut(many=True))
@allow("donor", "caseworker", "moderator")
def list_(claim_id):
    """该认领的送达照片（认领人、负责该区划的协理员、审核员），链接限时有效"""
    return jsonify([_dump(p) for p in service.proofs_of(require_user(), claim_id)])


@blp.route("/media/<path:key>", methods=["GET"])
@blp.doc(responses={"200": {"description": "照片（JPEG，已去除全部元数据）", "content": {
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}})
@allow(PUBLIC)
def media(key):
    """按签名链接读取照片；签名无效或过期 → 404"""
    verify(key, request.args.get("expires"), request.args.get("sig"))
    try:
        handle = get_storage().open(key)
    except FileNotFoundError:
        raise NotFound("图片不存在或已删除") from None
    response = send_file(handle, mimetype=content_type_for(key), conditional=False,
                         max_age=None)
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["Content-Disposition"] = "inline"
    return response

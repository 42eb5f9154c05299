"""Liveness and readiness."""
from flask import current_app
from miniprogram_api.blueprint import Blueprint
import marshmallow as ma
import redis
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from miniprogram_api.policy import PUBLIC, allow
from app.extensions import db
from app.redis_conn import get_redis
from app.uow import reset

blp = Blueprint("ops", __name__, description="运维：存活与就绪检查")
blp.url_prefix_rel = ""


class HealthOut(ma.Schema):
    status = ma.fields.String()
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthOut)
@allow(PUBLIC)
def healthz():
    """进程存活"""
    return {"status": "ok", "checks": {}}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, HealthOut)
@blp.alt_response(503, schema=HealthOut, description="数据库或 Redis 不可达")
@allow(PUBLIC)
def readyz():
    """数据库与 Redis 可达"""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError:
        reset()
        checks["database"] = "unreachable"
        current_app.logger.warning("readyz: database unreachable")
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except redis.RedisError:
        checks["redis"] = "unreachable"
        current_app.logger.warning("readyz: redis unreachable")
    ok = all(v == "ok" for v in checks.values())
    return {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503

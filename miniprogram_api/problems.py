"""The HTTP face of errors: one catalogue (code -> status, Chinese title) and problem+json.

The domain raises typed errors (`app.errors`) that know nothing of HTTP. Here every code gets its
HTTP status and the Chinese title people read (clients branch on `code`); `render()` turns an
error into RFC 9457 problem+json, and the handlers registered by the factory render it, and
every HTTP error Flask, Werkzeug or webargs raises, in the same shape. A 500 never shows a
traceback, SQL or a path: it is logged with a request id and the client sees only that id.
tests/unit/test_problems.py fails when a code raised anywhere has no entry here.
"""
from __future__ import annotations

import itertools
import logging
import os
import re
from typing import Any, NamedTuple

import redis
from flask import Flask, g, json, request
from werkzeug.exceptions import HTTPException

from app.errors import (
    AppError, BadRequest, Conflict, DomainError, Forbidden, Invalid, NotFound, TooLarge,
    TooManyAttempts, Unauthenticated, Unavailable, UnsupportedType, UpstreamRefused,
    is_transient_outage,
)
from app.text import printable_value

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"


class Problem(NamedTuple):
    status: int
    title: str


# Every code a client can meet: its HTTP status and its Chinese title.
CATALOGUE: dict[str, Problem] = {
    # the request itself
    "bad_request": Problem(400, "请求有误"),
    "malformed_json": Problem(400, "请求内容不是有效的 JSON"),
    "idempotency_key_required": Problem(400, "缺少 Idempotency-Key 请求头"),
    "payment_mismatch": Problem(400, "支付通知与订单不符"),
    "payment_notification_malformed": Problem(400, "支付通知格式有误"),
    "method_not_allowed": Problem(405, "不支持该请求方法"),
    "payload_too_large": Problem(413, "请求内容过大"),
    "upload_too_large": Problem(413, "上传文件过大"),
    "unsupported_media_type": Problem(415, "不支持的文件类型"),
    # who is asking
    "invalid_token": Problem(401, "登录已失效，请重新登录"),
    "invalid_credentials": Problem(401, "用户名或密码错误"),
    "wechat_code_invalid": Problem(401, "微信登录凭证无效"),
    "payment_notification_invalid": Problem(401, "支付通知签名无效"),
    "forbidden": Problem(403, "没有权限执行此操作"),
    "account_disabled": Problem(403, "账号已停用"),
    "wechat_user_blocked": Problem(403, "该微信用户已被限制登录"),
    "self_approval": Problem(403, "不能审核自己提交的心愿"),
    "second_approver_required": Problem(403, "须由另一位审核员批准"),
    "donor_cooldown": Problem(403, "认领暂时受限，请稍后再来"),
    "not_found": Problem(404, "未找到"),
    # the state of things
    "conflict": Problem(409, "请求与当前状态冲突"),
    "invalid_transition": Problem(409, "当前状态不允许此操作"),
    "proof_not_ready": Problem(409, "送达照片尚未就绪"),
    "last_admin": Problem(409, "不能停用或降级最后一位管理员"),
    "wish_already_claimed": Problem(409, "心愿已被认领"),
    "wish_not_open": Problem(409, "心愿当前不可捐助"),
    "claim_expired": Problem(409, "认领已超时"),
    "claim_limit_reached": Problem(409, "进行中的认领已达上限"),
    "idempotency_key_in_use": Problem(409, "相同请求正在处理中"),
    "insufficient_funds": Problem(409, "基金余额不足"),
    "donation_closed": Problem(409, "捐款订单已关闭"),
    "already_reversed": Problem(409, "该账目已被冲正"),
    "cannot_reverse_reversal": Problem(409, "冲正账目不能再被冲正"),
    "task_closed": Problem(409, "任务已完成"),
    "application_exists": Problem(409, "已有正在办理的申请"),
    # the content
    "validation_error": Problem(422, "请求参数有误"),
    "invalid_cursor": Problem(422, "分页游标无效"),
    "invalid_image": Problem(422, "图片无效"),
    "consent_missing": Problem(422, "缺少受助人的公开同意"),
    "guardian_consent_required": Problem(422, "未满14周岁须有监护人同意"),
    "pii_in_text": Problem(422, "内容包含个人敏感信息"),
    "idempotency_key_reused": Problem(422, "Idempotency-Key 已用于其他请求"),
    # too much, too often
    "too_many_attempts": Problem(429, "尝试次数过多，请稍后再试"),
    "rate_limited": Problem(429, "请求过于频繁，请稍后再试"),
    "wechat_rate_limited": Problem(429, "微信登录过于频繁，请稍后再试"),
    # us and the systems we depend on
    "internal_error": Problem(500, "服务器内部错误"),
    "upstream_rejected": Problem(502, "外部服务拒绝了请求"),
    "wechatpay_rejected": Problem(502, "微信支付拒绝了请求"),
    "service_unavailable": Problem(503, "服务暂时不可用"),
    "database_unavailable": Problem(503, "数据库暂时不可用，请稍后重试"),
    "wechat_unavailable": Problem(503, "微信服务暂时不可用"),
    "wechatpay_unavailable": Problem(503, "微信支付暂时不可用"),
    "payments_not_configured": Problem(503, "在线捐款暂未开通"),
}

# A code missing from the catalogue still gets the status of its kind (and the test fails).
KIND_STATUS: dict[type[DomainError], int] = {
    BadRequest: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404, Conflict: 409,
    TooLarge: 413, UnsupportedType: 415, Invalid: 422, TooManyAttempts: 429,
    UpstreamRefused: 502, Unavailable: 503, DomainError: 400,
}


def status_of(exc: DomainError) -> int:
    if isinstance(exc, AppError):  # deprecated: it names its own status
        return exc.status
    entry = CATALOGUE.get(exc.code)
    if entry is not None:
        return entry.status
    for kind in type(exc).__mro__:
        if kind in KIND_STATUS:
            return KIND_STATUS[kind]
    return 400


def title_of(code: str, fallback: str | None = None) -> str:
    entry = CATALOGUE.get(code)
    return entry.title if entry else (fallback or code)


def problem(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    title: str | None = None,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
):
    title = title or title_of(code)
    body: dict[str, Any] = {
        "type": f"https://weixinyuan.example/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    # A problem often names the input it refuses (a key, a value): never as raw text that
    # cannot be encoded (a lone surrogate) or should not be handed back (NUL)
    body = printable_value(body)
    response = Flask.response_class(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_MIMETYPE
    )
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def render(exc: DomainError):
    """The problem+json answer for a domain error."""
    headers = dict(exc.headers)
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if exc.code == "invalid_token":  # a bearer-token API says how to authenticate (RFC 6750)
        bearer_error = getattr(exc, "bearer_error", None)
        headers.setdefault("WWW-Authenticate",
                           f'Bearer error="{bearer_error}"' if bearer_error else "Bearer")
    title = getattr(exc, "title", None) or title_of(exc.code)  # AppError may name its own
    return problem(status_of(exc), exc.code, exc.detail, title=title, errors=exc.errors,
                   headers=headers, extra=exc.extra)


# marshmallow/webargs messages -> Chinese, by prefix.
_MESSAGE_TRANSLATIONS = [
    ("Unknown field.", "不允许的字段"),
    ("Missing data for required field.", "必填字段缺失"),
    ("Field may not be null.", "不能为空"),
    ("Not a valid string.", "应为字符串"),
    ("Not a valid integer.", "应为整数"),
    ("Not a valid boolean.", "应为布尔值"),
    ("Not a valid list.", "应为数组"),
    ("Not a valid mapping type.", "应为对象"),
    ("Invalid input type.", "类型错误"),
    ("Must be one of:", "取值必须为以下之一："),
    ("Must be greater than or equal to", "不能小于"),
    ("Must be less than or equal to", "不能大于"),
    ("Length must be between", "长度超出范围："),
    ("Shorter than minimum length", "长度过短："),
    ("Longer than maximum length", "长度过长："),
    ("String does not match expected pattern.", "格式不正确"),
    ("Invalid value.", "取值无效"),
]


# Messages with two numbers, matched whole (a prefix match would leave English in the rest).
_PATTERN_TRANSLATIONS = [
    (re.compile(r"^Must be greater than or equal to (\S+) and less than or equal to (\S+?)\.$"),
     "取值须在 {0} 到 {1} 之间"),
    (re.compile(r"^Length must be between (\S+) and (\S+?)\.$"), "长度须在 {0} 到 {1} 之间"),
    (re.compile(r"^Length must be (\S+?)\.$"), "长度须为 {0}"),
]


def translate_message(message: str) -> str:
    for pattern, chinese in _PATTERN_TRANSLATIONS:
        match = pattern.match(message)
        if match:
            return chinese.format(*match.groups())
    for prefix, chinese in _MESSAGE_TRANSLATIONS:
        if message.startswith(prefix):
            rest = message[len(prefix):].strip().rstrip(".")
            return f"{chinese}{rest}" if rest and chinese.endswith(("：", "于")) else chinese
    return message


# A hostile body can fail validation in many places at once (60,000 unknown keys, a list of
# 100,000 bad items): the problem names the first few, so the answer stays small.
MAX_ERROR_ENTRIES = 20
MORE_ERRORS_KEY = "…"


def _first_entries(messages: dict) -> dict:
    if len(messages) <= MAX_ERROR_ENTRIES:
        return messages
    kept = dict(itertools.islice(messages.items(), MAX_ERROR_ENTRIES))
    kept[MORE_ERRORS_KEY] = [f"另有 {len(messages) - MAX_ERROR_ENTRIES} 项错误未列出"]
    return kept


def _translate(messages: Any) -> Any:
    if isinstance(messages, dict):
        return {str(k): _translate(v) for k, v in _first_entries(messages).items()}
    if isinstance(messages, list):
        return [_translate(m) for m in messages]
    if isinstance(messages, str):
        return translate_message(messages)
    return messages


def flatten_validation_messages(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs nests messages by location ({"json": {...}}); clients want field -> messages."""
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            for name, value in fields.items():
                flat[str(name)] = value
        else:
            flat[location] = fields
    return _translate(flat)


_HTTP_CODES = {
    400: "bad_request",
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


def request_id() -> str:
    if "request_id" not in g:
        g.request_id = request_id_of(request.environ)
    return g.request_id


def request_id_of(environ: dict) -> str:
    """The client's X-Request-Id (64 characters at most), else a new one: uuid4().hex's 32 hex
    digits, without making a UUID."""
    return environ.get("HTTP_X_REQUEST_ID", "")[:64] or os.urandom(16).hex()


def is_json_too_deep(exc: BaseException) -> bool:
    """json.loads (in webargs or request.get_json) on a body nested thousands of levels deep runs
    out of stack: that is the client's malformed body, not our bug. The C decoder names it."""
    return isinstance(exc, RecursionError) and "decoding a JSON" in str(exc)


def is_broken_body(exc: BaseException) -> bool:
    """gunicorn raises its parser's errors from a read of a malformed chunked body (a bad chunk
    size or terminator) inside the view that reads it: the client's malformed request."""
    try:
        from gunicorn.http.errors import ParseException
    except ImportError:  # not served by gunicorn
        return False
    return isinstance(exc, ParseException)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        return render(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status >= 500:
            return _server_error(exc)
        data = getattr(exc, "data", None) or {}
        messages = data.get("messages") or data.get("errors")
        code = _HTTP_CODES.get(status, "bad_request")
        errors = None
        detail = None
        if status == 400 and messages and "json" in messages and isinstance(messages["json"], list):
            code, detail = "malformed_json", "请求内容不是有效的 JSON，请检查格式"
        elif status == 422 and messages:
            errors = flatten_validation_messages(messages)
            detail = "以下字段有误：" + "、".join(k for k in errors if k != MORE_ERRORS_KEY)
        elif status == 405:
            detail = f"该地址不支持 {request.method} 方法"
        elif status == 413:
            detail = "请求内容超过大小上限"
        headers = dict(data.get("headers") or {})
        if status == 405 and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        return problem(status, code, detail, errors=errors, headers=headers)

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception):
        if is_json_too_deep(exc):
            return problem(400, "malformed_json", "请求内容嵌套层数过深，不是可接受的 JSON")
        if is_broken_body(exc):
            return problem(400, "bad_request", "请求体的分块传输编码无效")
        if is_transient_outage(exc):
            return _unavailable(exc)
        return _server_error(exc)

    def _unavailable(exc: BaseException):
        """The database or Redis went away mid-request (restart, failover, a killed backend): a
        clean 503 the client may retry (with the same Idempotency-Key), never a 500."""
        rid = request_id()
        database = not isinstance(exc, redis.RedisError)
        log.warning("%s unavailable on %s %s [request %s]: %s",
                    "database" if database else "redis", request.method, request.path, rid,
                    type(exc).__name__)
        if database:
            return problem(503, "database_unavailable",
                           f"数据库连接中断，请稍后重试（请求编号 {rid}）",
                           headers={"Retry-After": "1"}, extra={"request_id": rid})
        return problem(503, "service_unavailable", f"服务暂时不可用，请稍后重试（请求编号 {rid}）",
                       headers={"Retry-After": "1"}, extra={"request_id": rid})

    def _server_error(exc: BaseException):
        rid = request_id()
        log.error("unhandled error on %s %s [request %s]", request.method, request.path, rid,
                  exc_info=exc)
        return problem(500, "internal_error", f"服务器出错了，请稍后再试（请求编号 {rid}）",
                       extra={"request_id": rid})

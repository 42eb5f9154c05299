"""One error shape: RFC 9457 problem+json with a stable snake_case `code`.

Services raise `AppError("wish_already_claimed", 409)`; the handlers registered here render it, and
render every HTTP error Flask, Werkzeug or webargs raises in the same shape. A 500 never shows a
traceback, SQL or a path: it is logged with a request id and the client sees only that id.
"""
from __future__ import annotations

import itertools
import logging
import re
import sqlite3
import uuid
from typing import Any

import redis
from flask import Flask, g, json, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from app.text import printable_value

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"

# code -> (Chinese title shown to users). Clients branch on `code`, people read `title`.
TITLES: dict[str, str] = {
    "bad_request": "请求有误",
    "malformed_json": "请求内容不是有效的 JSON",
    "validation_error": "请求参数有误",
    "invalid_token": "登录已失效，请重新登录",
    "forbidden": "没有权限执行此操作",
    "not_found": "未找到",
    "method_not_allowed": "不支持该请求方法",
    "payload_too_large": "请求内容过大",
    "upload_too_large": "上传文件过大",
    "unsupported_media_type": "不支持的文件类型",
    "invalid_image": "图片无效",
    "too_many_attempts": "尝试次数过多，请稍后再试",
    "rate_limited": "请求过于频繁，请稍后再试",
    "internal_error": "服务器内部错误",
    "service_unavailable": "服务暂时不可用",
    "database_unavailable": "数据库暂时不可用，请稍后重试",
    "invalid_transition": "当前状态不允许此操作",
    "proof_not_ready": "送达照片尚未就绪",
    "invalid_cursor": "分页游标无效",
    "invalid_credentials": "用户名或密码错误",
    "account_disabled": "账号已停用",
    "wechat_code_invalid": "微信登录凭证无效",
    "wechat_rate_limited": "微信登录过于频繁，请稍后再试",
    "wechat_user_blocked": "该微信用户已被限制登录",
    "wechat_unavailable": "微信服务暂时不可用",
    "consent_missing": "缺少受助人的公开同意",
    "guardian_consent_required": "未满14周岁须有监护人同意",
    "pii_in_text": "内容包含个人敏感信息",
    "self_approval": "不能审核自己提交的心愿",
    "conflict": "请求与当前状态冲突",
    "payments_not_configured": "在线捐款暂未开通",
    "last_admin": "不能停用或降级最后一位管理员",
}


class AppError(Exception):
    """A failure the client can act on: stable `code`, HTTP `status`, Chinese `detail`."""

    def __init__(
        self,
        code: str,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.title = title or TITLES.get(code, code)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


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
    title = title or TITLES.get(code, code)
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
        g.request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    return g.request_id


SQLITE_OUTAGE_SIGNS = ("database is locked", "database table is locked", "unable to open",
                       "disk i/o error", "busy")


def is_transient_outage(exc: BaseException) -> bool:
    """A lost or refused connection to PostgreSQL or Redis (not a bug in our SQL): the pool
    (pre-ping) and redis-py reconnect on the next request, so the client should just retry."""
    if isinstance(exc, sa_exc.OperationalError) and isinstance(exc.orig, sqlite3.OperationalError):
        # SQLite files bad SQL ("no such table") under OperationalError too: that is our bug (a
        # 500), and only a busy, locked or unreadable database file is an outage
        return any(sign in str(exc.orig).lower() for sign in SQLITE_OUTAGE_SIGNS)
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return True  # disconnects, refused connections, pool exhausted, lock/statement timeouts
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError))


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
    @app.errorhandler(AppError)
    def _app_error(exc: AppError):
        return problem(
            exc.status, exc.code, exc.detail, title=exc.title, errors=exc.errors,
            headers=exc.headers, extra=exc.extra,
        )

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

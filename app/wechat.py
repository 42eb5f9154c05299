"""The one module that talks to WeChat's server API (base URL from WECHAT_API_BASE).

WeChat answers most errors with HTTP 200 and a non-zero `errcode`, so the body is always read.
`session_key` is never returned from here, logged or stored.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from flask import current_app

from app.errors import AppError

log = logging.getLogger(__name__)

# errcode -> (our code, HTTP status, Chinese detail) for jscode2session.
_LOGIN_ERRORS = {
    40029: ("wechat_code_invalid", 401, "微信登录凭证无效或已使用，请重新登录"),
    40163: ("wechat_code_invalid", 401, "微信登录凭证已被使用，请重新登录"),
    45011: ("wechat_rate_limited", 429, "微信登录过于频繁，请稍后再试"),
    40226: ("wechat_user_blocked", 403, "该微信用户存在风险，已被限制登录"),
}


@dataclass(frozen=True)
class WechatSession:
    openid: str
    unionid: str | None


def _unavailable(reason: str) -> AppError:
    return AppError("wechat_unavailable", 503, "微信服务暂时不可用，请稍后再试",
                    headers={"Retry-After": "5"}, extra={"reason": reason})


def _get(path: str, params: dict) -> dict:
    base = current_app.config["WECHAT_API_BASE"].rstrip("/")
    timeout = current_app.config["WECHAT_TIMEOUT_SECONDS"]
    try:
        response = requests.get(base + path, params=params, timeout=timeout,
                                allow_redirects=False)
    except requests.RequestException as exc:
        log.warning("wechat %s failed: %s", path, type(exc).__name__)
        raise _unavailable("network") from None
    if response.status_code != 200:
        log.warning("wechat %s answered HTTP %s", path, response.status_code)
        raise _unavailable("http_status")
    try:
        body = response.json()
    except ValueError:
        log.warning("wechat %s answered a body that is not JSON", path)
        raise _unavailable("bad_body") from None
    if not isinstance(body, dict):
        raise _unavailable("bad_body")
    return body


def code_to_session(code: str) -> WechatSession:
    """Exchange a wx.login code for the user's openid (jscode2session)."""
    body = _get("/sns/jscode2session", {
        "appid": current_app.config["WECHAT_APP_ID"],
        "secret": current_app.config["WECHAT_APP_SECRET"],
        "js_code": code,
        "grant_type": "authorization_code",
    })
    errcode = body.get("errcode") or 0
    if errcode:
        log.info("wechat jscode2session errcode=%s", errcode)
        if errcode in _LOGIN_ERRORS:
            code_, status, detail = _LOGIN_ERRORS[errcode]
            raise AppError(code_, status, detail)
        raise _unavailable(f"errcode {errcode}")
    openid = body.get("openid")
    if not isinstance(openid, str) or not openid:
        raise _unavailable("no openid")
    unionid = body.get("unionid")
    return WechatSession(openid=openid, unionid=unionid if isinstance(unionid, str) else None)

"""The one module that talks to WeChat's server API (base URL from WECHAT_API_BASE).

WeChat answers most errors with HTTP 200 and a non-zero `errcode`, so the body is always read.
`session_key` is never returned from here, logged or stored.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import redis
import requests

from app.errors import DomainError, Forbidden, TooManyAttempts, Unauthenticated, Unavailable
from app.settings import settings

log = logging.getLogger(__name__)

# errcode -> (our error, its code, Chinese detail) for jscode2session.
_LOGIN_ERRORS = {
    40029: (Unauthenticated, "wechat_code_invalid", "微信登录凭证无效或已使用，请重新登录"),
    40163: (Unauthenticated, "wechat_code_invalid", "微信登录凭证已被使用，请重新登录"),
    45011: (TooManyAttempts, "wechat_rate_limited", "微信登录过于频繁，请稍后再试"),
    40226: (Forbidden, "wechat_user_blocked", "该微信用户存在风险，已被限制登录"),
}


@dataclass(frozen=True)
class WechatSession:
    openid: str
    unionid: str | None


def _unavailable(reason: str) -> DomainError:
    return Unavailable("wechat_unavailable", "微信服务暂时不可用，请稍后再试",
                       retry_after=5, extra={"reason": reason})


def _get(path: str, params: dict) -> dict:
    base = settings()["WECHAT_API_BASE"].rstrip("/")
    timeout = settings()["WECHAT_TIMEOUT_SECONDS"]
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
        "appid": settings()["WECHAT_APP_ID"],
        "secret": settings()["WECHAT_APP_SECRET"],
        "js_code": code,
        "grant_type": "authorization_code",
    })
    errcode = body.get("errcode") or 0
    if errcode:
        log.info("wechat jscode2session errcode=%s", errcode)
        if errcode in _LOGIN_ERRORS:
            kind, code_, detail = _LOGIN_ERRORS[errcode]
            raise kind(code_, detail)
        raise _unavailable(f"errcode {errcode}")
    openid = body.get("openid")
    if not isinstance(openid, str) or not openid:
        raise _unavailable("no openid")
    unionid = body.get("unionid")
    return WechatSession(openid=openid, unionid=unionid if isinstance(unionid, str) else None)


# --- server-side access token and subscribe messages ------------------------------------------
# The access token is a secret like the app secret: it lives only in Redis (shared by every
# process, so one fetch serves them all) and in the query string of a send, never in a log line,
# an exception message or the outbox's last_error.

TOKEN_KEY = "wechat:stable_token:{appid}"
TOKEN_MARGIN_SECONDS = 300  # refresh this long before WeChat says the token expires
_TOKEN_INVALID = {40001, 40014, 42001}  # invalid credential, invalid token, token expired
SUBSCRIBE_REFUSED = 43101  # the user has no consent left for this template (or refused)


class WechatError(Exception):
    """WeChat could not be reached or answered an error; the message holds no secret."""


@dataclass(frozen=True)
class SendResult:
    """`outcome` is "sent", "refused" (43101: do not retry) or "failed" (retry later)."""

    outcome: str
    detail: str = ""


def _post(path: str, body: dict, params: dict | None = None) -> dict:
    """POST JSON to WeChat and return the JSON body; raise WechatError (no URL, no secret)."""
    base = settings()["WECHAT_API_BASE"].rstrip("/")
    timeout = settings()["WECHAT_TIMEOUT_SECONDS"]
    try:
        response = requests.post(
            base + path, params=params, timeout=timeout, allow_redirects=False,
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json; charset=utf-8"})
    except requests.RequestException as exc:
        # str(exc) would carry the URL, and with it the access token: name the type only.
        raise WechatError(f"network: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise WechatError(f"http {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise WechatError("bad body: not json") from None
    if not isinstance(answer, dict):
        raise WechatError("bad body: not an object")
    return answer


def _token_key() -> str:
    return TOKEN_KEY.format(appid=settings()["WECHAT_APP_ID"])


def get_stable_access_token() -> str:
    """The app's access token (getStableAccessToken), cached in Redis until shortly before it
    expires. The stable-token API hands every caller the same token, so concurrent refreshes in
    several processes are harmless."""
    from app.redis_conn import get_redis

    config = settings()
    if not config.get("WECHAT_APP_ID") or not config.get("WECHAT_APP_SECRET"):
        raise WechatError("not configured: WECHAT_APP_ID / WECHAT_APP_SECRET")
    try:
        cached = get_redis().get(_token_key())
    except redis.RedisError:  # the cache is a convenience: without it, ask WeChat
        cached = None
    if cached:
        return cached.decode()
    answer = _post("/cgi-bin/stable_token", {
        "grant_type": "client_credential",
        "appid": config["WECHAT_APP_ID"],
        "secret": config["WECHAT_APP_SECRET"],
    })
    errcode = answer.get("errcode") or 0
    token, expires_in = answer.get("access_token"), answer.get("expires_in")
    if errcode or not isinstance(token, str) or not token:
        raise WechatError(f"stable_token errcode {errcode}")
    ttl = int(expires_in) - TOKEN_MARGIN_SECONDS if isinstance(expires_in, int) else 0
    if ttl > 0:
        try:
            get_redis().set(_token_key(), token, ex=ttl)
        except redis.RedisError:
            log.warning("cannot cache the wechat access token: redis unavailable")
    log.info("wechat access token fetched (valid %ss)", expires_in)
    return token


def _drop_token(token: str) -> None:
    """Forget the cached token, unless another process has already stored a newer one."""
    from app.redis_conn import get_redis

    try:
        connection = get_redis()
        if (connection.get(_token_key()) or b"").decode() == token:
            connection.delete(_token_key())
    except redis.RedisError:
        log.warning("cannot drop the cached wechat access token: redis unavailable")


def send_subscribe_message(openid: str, template_id: str, data: dict[str, str],
                           page: str) -> SendResult:
    """subscribeMessage.send. A rejected token is refreshed and the send retried once."""
    body = {
        "touser": openid,
        "template_id": template_id,
        "page": page,
        "data": {key: {"value": value} for key, value in data.items()},
        "miniprogram_state": settings()["WECHAT_MINIPROGRAM_STATE"],
        "lang": "zh_CN",
    }
    errcode = None
    for _ in range(2):  # a second go only after a rejected token
        try:
            token = get_stable_access_token()
            answer = _post("/cgi-bin/message/subscribe/send", body,
                           params={"access_token": token})
        except WechatError as exc:
            return SendResult("failed", str(exc))
        errcode = answer.get("errcode") or 0
        if errcode not in _TOKEN_INVALID:
            break
        log.info("wechat rejected the access token (errcode %s); refreshing it", errcode)
        _drop_token(token)
    if errcode == 0:
        return SendResult("sent")
    if errcode == SUBSCRIBE_REFUSED:
        return SendResult("refused", f"errcode {errcode}: no subscription left")
    return SendResult("failed", f"errcode {errcode}")

"""The one module that talks to WeChat Pay API v3 (base URL from WECHATPAY_API_BASE).

Merchant side of the "WeChat Pay public key" mode (微信支付公钥): every request is signed with the
merchant private key (`Authorization: WECHATPAY2-SHA256-RSA2048 ...`) and names the platform
public key in `Wechatpay-Serial` (so WeChat Pay signs its answer with that key), every answer and every
notification is verified with the platform public key named WECHATPAY_PLATFORM_PUBLIC_KEY_ID, and
notification resources are decrypted with the APIv3 key (AEAD_AES_256_GCM).

Errors (typed, `app.errors`; their HTTP statuses are the edge's catalogue's):
- `payments_not_configured` (Unavailable, 503, no Retry-After): PAYMENTS_ENABLED=false or a
  merchant setting missing (development); nothing is sent. Only an operator can change that.
- `wechatpay_unavailable` (Unavailable, 503): unreachable, timeout, 5xx, 429, a redirect, a body
  that is not JSON, an unsigned 2xx or a badly signed answer of any status (WeChat Pay signs every
  answer to a correctly signed request; an unsigned success is forged by its own documentation).
  Retrying later may help.
- `wechatpay_rejected` (UpstreamRefused, 502): WeChat Pay answered 4xx with an error code
  (PARAM_ERROR, ORDERPAID, INVALID_REQUEST, SIGN_ERROR, ...). Retrying the same request will not
  help; the code is in `extra["wechatpay_code"]`. 502 because the failure is upstream, not in the
  client's request.
- `payment_notification_invalid` (Unauthenticated, 401): a notification whose signature headers
  are missing or bad, whose serial is not our platform key, whose timestamp is more than 300 s
  off, or whose signature does not match the body. (WeChat Pay sends such probes on purpose; 401
  is the expected answer.)
- `payment_notification_malformed` (BadRequest, 400): correctly signed, but the body or the
  decrypted resource is not what a notification is.

The APIv3 key, the private key and the payer's full openid are never logged.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping
from urllib.parse import quote

import requests
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.errors import (
    BadRequest, DomainError, Unauthenticated, Unavailable, UpstreamRefused,
)
from app.settings import environment, settings

log = logging.getLogger(__name__)

AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
USER_AGENT = "weixinyuan/1.0 (WeChatPay-APIv3; python-requests)"
MAX_CLOCK_SKEW_SECONDS = 300  # for notification (and answer) timestamps
CHINA_TZ = timezone(timedelta(hours=8))

# Every setting place_jsapi_order / parse_notification needs.
MERCHANT_SETTINGS = (
    "WECHATPAY_APP_ID", "WECHATPAY_MCH_ID", "WECHATPAY_MCH_CERT_SERIAL",
    "WECHATPAY_MCH_PRIVATE_KEY_FILE", "WECHATPAY_API_V3_KEY", "WECHATPAY_PLATFORM_PUBLIC_KEY_ID",
    "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE", "WECHATPAY_NOTIFY_URL",
)

_CACHE_KEY = "wechatpay_keys"
_cache_lock = threading.Lock()


def _unavailable(reason: str) -> DomainError:
    return Unavailable("wechatpay_unavailable", "微信支付暂时不可用，请稍后再试", retry_after=5,
                       extra={"reason": reason})


def _invalid(reason: str) -> DomainError:
    log.warning("wechatpay notification refused: %s", reason)
    return Unauthenticated("payment_notification_invalid", "支付通知的签名无效",
                           extra={"reason": reason})


def _malformed(reason: str) -> DomainError:
    log.warning("wechatpay notification malformed: %s", reason)
    return BadRequest("payment_notification_malformed", "支付通知的内容无法解析",
                      extra={"reason": reason})


# --- keys ----------------------------------------------------------------------------------------

def load_private_key(path: str) -> rsa.RSAPrivateKey:
    """The merchant API private key (apiclient_key.pem); ValueError names what is wrong."""
    try:
        with open(path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
    except OSError as exc:
        raise ValueError(f"cannot read the key file ({exc.strerror})") from None
    except (ValueError, TypeError):
        raise ValueError("not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise ValueError("not an RSA private key of at least 2048 bits")
    return key


def load_public_key(path: str) -> rsa.RSAPublicKey:
    """The WeChat Pay platform public key (pub_key.pem); ValueError names what is wrong."""
    try:
        with open(path, "rb") as fh:
            key = serialization.load_pem_public_key(fh.read())
    except OSError as exc:
        raise ValueError(f"cannot read the key file ({exc.strerror})") from None
    except (ValueError, TypeError):
        raise ValueError("not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ValueError("not an RSA public key of at least 2048 bits")
    return key


@dataclass(frozen=True)
class _Keys:
    merchant_private: rsa.RSAPrivateKey
    platform_public: rsa.RSAPublicKey


def is_configured() -> bool:
    """Money donations can be taken: PAYMENTS_ENABLED and every merchant setting present."""
    config = settings()
    return bool(config.get("PAYMENTS_ENABLED", True)) and all(
        config.get(name) for name in MERCHANT_SETTINGS)


def why_not_configured() -> str:
    """For log lines: what keeps money donations off."""
    config = settings()
    if not config.get("PAYMENTS_ENABLED", True):
        return "PAYMENTS_ENABLED=false"
    return "missing " + ", ".join(n for n in MERCHANT_SETTINGS if not config.get(n))


def not_configured_error() -> DomainError:
    """503 without Retry-After: unlike an outage, waiting does not help; an operator must act."""
    return Unavailable("payments_not_configured",
                       "本平台暂未开通在线捐款（微信支付未配置）",
                       extra={"reason": "not_configured"})


def require_configured() -> None:
    """Raise 503 `payments_not_configured` unless money donations can be taken."""
    if not is_configured():
        raise not_configured_error()


def _keys() -> _Keys:
    """The keys, loaded once per app (and again only if their file settings change)."""
    if not is_configured():
        log.warning("wechatpay is not configured (%s)", why_not_configured())
        raise not_configured_error()
    app = environment()
    source = (app.config["WECHATPAY_MCH_PRIVATE_KEY_FILE"],
              app.config["WECHATPAY_PLATFORM_PUBLIC_KEY_FILE"])
    cached = app.extensions.get(_CACHE_KEY)
    if cached is not None and cached[0] == source:
        return cached[1]
    with _cache_lock:
        try:
            keys = _Keys(load_private_key(source[0]), load_public_key(source[1]))
        except ValueError as exc:
            log.error("wechatpay key file unusable: %s", exc)
            raise _unavailable("bad_key_file") from None
        app.extensions[_CACHE_KEY] = (source, keys)
    return keys


def _sign(key: rsa.RSAPrivateKey, message: str) -> str:
    signature = key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def _verify(key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def _nonce() -> str:
    return secrets.token_hex(16).upper()


# --- requests ------------------------------------------------------------------------------------

def _signed_headers(method: str, path: str, body: str, keys: _Keys) -> dict[str, str]:
    config = settings()
    timestamp = str(int(time.time()))
    nonce = _nonce()
    signature = _sign(keys.merchant_private, f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n")
    authorization = (
        f'{AUTH_SCHEMA} mchid="{config["WECHATPAY_MCH_ID"]}",nonce_str="{nonce}",'
        f'signature="{signature}",timestamp="{timestamp}",'
        f'serial_no="{config["WECHATPAY_MCH_CERT_SERIAL"]}"')
    # Wechatpay-Serial names the platform public key, as the official SDKs send it in public-key
    # mode: WeChat Pay signs its answer with the key named here. Without it, a merchant still
    # migrating from platform certificates gets answers signed by the certificate, which
    # _answer_signature must refuse (`unknown_serial`): an order placed but reported as failed.
    headers = {"Authorization": authorization, "Accept": "application/json",
               "User-Agent": USER_AGENT,
               "Wechatpay-Serial": config["WECHATPAY_PLATFORM_PUBLIC_KEY_ID"]}
    if body:
        headers["Content-Type"] = "application/json"
    return headers


def _answer_signature(response: requests.Response, keys: _Keys) -> bool:
    """True: signed by our platform key. False: no signature at all. Raises: signed badly."""
    headers = response.headers
    signature = headers.get("Wechatpay-Signature")
    timestamp = headers.get("Wechatpay-Timestamp")
    nonce = headers.get("Wechatpay-Nonce")
    serial = headers.get("Wechatpay-Serial")
    if not any((signature, timestamp, nonce, serial)):
        return False
    if not (signature and timestamp and nonce and serial):
        raise _unavailable("incomplete_signature")
    if serial != settings()["WECHATPAY_PLATFORM_PUBLIC_KEY_ID"]:
        log.warning("wechatpay answer signed with an unknown key %r", serial[:64])
        raise _unavailable("unknown_serial")
    try:
        skew = abs(time.time() - int(timestamp))
    except ValueError:
        raise _unavailable("bad_signature") from None
    if skew > MAX_CLOCK_SKEW_SECONDS:
        raise _unavailable("stale_signature")
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + response.content + b"\n"
    if not _verify(keys.platform_public, message, signature):
        log.warning("wechatpay answer with a bad signature (HTTP %s)", response.status_code)
        raise _unavailable("bad_signature")
    return True


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict
    signed: bool


def _call(method: str, path: str, payload: dict | None = None) -> _Answer:
    """Send a signed request; return a verified answer (2xx, or 4xx with its error body)."""
    keys = _keys()
    config = settings()
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) if payload else ""
    headers = _signed_headers(method, path, body, keys)
    url = config["WECHATPAY_API_BASE"].rstrip("/") + path
    try:
        response = requests.request(method, url, data=body.encode("utf-8") or None,
                                    headers=headers, timeout=config["WECHATPAY_TIMEOUT_SECONDS"],
                                    allow_redirects=False)
    except requests.RequestException as exc:
        log.warning("wechatpay %s %s failed: %s", method, _route(path), type(exc).__name__)
        raise _unavailable("network") from None
    status = response.status_code
    if status >= 500 or status == 429 or 300 <= status < 400 or status < 200:
        log.warning("wechatpay %s %s answered HTTP %s", method, _route(path), status)
        raise _unavailable("http_status")
    signed = _answer_signature(response, keys)
    if 200 <= status < 300 and not signed:
        log.warning("wechatpay %s %s answered %s without a signature", method, _route(path),
                    status)
        raise _unavailable("unsigned")
    if status == 204 or not response.content:
        return _Answer(status, {}, signed)
    try:
        data = json.loads(response.content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        log.warning("wechatpay %s %s answered a body that is not JSON", method, _route(path))
        raise _unavailable("bad_body") from None
    if not isinstance(data, dict):
        raise _unavailable("bad_body")
    return _Answer(status, data, signed)


def _route(path: str) -> str:
    """The path without order numbers or query, for log lines."""
    path = path.split("?", 1)[0]
    if path.startswith("/v3/pay/transactions/out-trade-no/"):
        return "/v3/pay/transactions/out-trade-no/{out_trade_no}"
    return path


def _rejected(answer: _Answer, what: str) -> DomainError:
    code = answer.body.get("code")
    code = code if isinstance(code, str) and code else f"HTTP_{answer.status}"
    log.warning("wechatpay refused %s: HTTP %s %s", what, answer.status, code[:64])
    return UpstreamRefused("wechatpay_rejected", f"微信支付拒绝了{what}请求（{code[:64]}）",
                           extra={"reason": "rejected", "wechatpay_code": code[:64]})


def rfc3339_china(moment: datetime) -> str:
    """`2026-01-02T15:04:05+08:00` (whole seconds, Beijing time), as WeChat Pay wants times."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(CHINA_TZ).replace(microsecond=0).isoformat()


def place_jsapi_order(*, out_trade_no: str, description: str, amount_fen: int,
                      payer_openid: str, expires_at: datetime) -> str:
    """Place a JSAPI order (POST /v3/pay/transactions/jsapi); return its prepay_id."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise ValueError("amount_fen must be a positive integer")
    if not (6 <= len(out_trade_no) <= 32):
        raise ValueError("out_trade_no must be 6 to 32 characters")
    config = settings()
    payload = {
        "appid": config["WECHATPAY_APP_ID"],
        "mchid": config["WECHATPAY_MCH_ID"],
        "description": description,
        "out_trade_no": out_trade_no,
        "time_expire": rfc3339_china(expires_at),
        "notify_url": config["WECHATPAY_NOTIFY_URL"],
        "amount": {"total": amount_fen, "currency": "CNY"},
        "payer": {"openid": payer_openid},
    }
    answer = _call("POST", "/v3/pay/transactions/jsapi", payload)
    if answer.status >= 400:
        raise _rejected(answer, "下单")
    prepay_id = answer.body.get("prepay_id")
    if not isinstance(prepay_id, str) or not prepay_id:
        log.warning("wechatpay jsapi answered without a prepay_id")
        raise _unavailable("bad_body")
    log.info("wechatpay order %s placed (%s fen)", out_trade_no, amount_fen)
    return prepay_id


def request_payment_params(prepay_id: str) -> dict:
    """What the mini-program passes to wx.requestPayment (paySign by the merchant key)."""
    keys = _keys()
    app_id = settings()["WECHATPAY_APP_ID"]
    timestamp = str(int(time.time()))
    nonce = _nonce()
    package = f"prepay_id={prepay_id}"
    return {
        "appId": app_id,
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": _sign(keys.merchant_private, f"{app_id}\n{timestamp}\n{nonce}\n{package}\n"),
    }


def query_order(out_trade_no: str) -> dict | None:
    """The transaction by our order number; None when WeChat Pay has no such order."""
    mchid = settings().get("WECHATPAY_MCH_ID") or ""
    path = (f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}"
            f"?mchid={quote(mchid, safe='')}")
    answer = _call("GET", path)
    if answer.status == 404 and answer.body.get("code") == "ORDER_NOT_EXIST":
        # "No payment happened" is acted on, so it must be WeChat Pay saying so.
        if not answer.signed:
            log.warning("wechatpay ORDER_NOT_EXIST answer without a signature")
            raise _unavailable("unsigned")
        return None
    if answer.status >= 400:
        raise _rejected(answer, "查询")
    body = answer.body
    if body.get("out_trade_no") != out_trade_no or not isinstance(body.get("trade_state"), str):
        log.warning("wechatpay query answered for another order or without a trade_state")
        raise _unavailable("bad_body")
    return body


# --- notifications -------------------------------------------------------------------------------

def parse_notification(headers: Mapping[str, str], body: bytes) -> dict:
    """Verify and decrypt a notification: {"event": <outer JSON>, "transaction": <resource>}."""
    keys = _keys()
    config = settings()
    lower = {str(k).lower(): v for k, v in headers.items()}
    timestamp = lower.get("wechatpay-timestamp") or ""
    nonce = lower.get("wechatpay-nonce") or ""
    signature = lower.get("wechatpay-signature") or ""
    serial = lower.get("wechatpay-serial") or ""
    if not (timestamp and nonce and signature and serial):
        raise _invalid("missing_headers")
    if serial != config["WECHATPAY_PLATFORM_PUBLIC_KEY_ID"]:
        raise _invalid("unknown_serial")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise _invalid("bad_timestamp")
    if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise _invalid("stale_timestamp")
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    if not _verify(keys.platform_public, message, signature):
        raise _invalid("bad_signature")

    try:
        event = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _malformed("not_json") from None
    if not isinstance(event, dict) or not isinstance(event.get("event_type"), str) \
            or not isinstance(event.get("id"), str):
        raise _malformed("bad_event")
    resource = event.get("resource")
    if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise _malformed("bad_resource")
    ciphertext, res_nonce = resource.get("ciphertext"), resource.get("nonce")
    associated = resource.get("associated_data") or ""
    if not isinstance(ciphertext, str) or not isinstance(res_nonce, str) or not res_nonce \
            or not isinstance(associated, str):
        raise _malformed("bad_resource")
    try:
        plaintext = AESGCM(config["WECHATPAY_API_V3_KEY"].encode()).decrypt(
            res_nonce.encode(), base64.b64decode(ciphertext, validate=True), associated.encode())
        transaction = json.loads(plaintext.decode("utf-8"))
    except (binascii.Error, InvalidTag, ValueError, UnicodeDecodeError):
        raise _malformed("undecryptable") from None
    if not isinstance(transaction, dict):
        raise _malformed("bad_transaction")
    if transaction.get("mchid", config["WECHATPAY_MCH_ID"]) != config["WECHATPAY_MCH_ID"]:
        raise _malformed("other_merchant")
    log.info("wechatpay notification %s (%s) for order %s", event["id"][:64],
             event["event_type"][:64], str(transaction.get("out_trade_no"))[:64])
    return {"event": event, "transaction": transaction}

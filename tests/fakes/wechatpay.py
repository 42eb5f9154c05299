"""A local fake of WeChat Pay API v3 (public-key mode), speaking its documented protocol.

It makes its own RSA-2048 merchant and platform key pairs and writes them as PEM files to a temp
folder; `app_settings()` is the WECHATPAY_* settings pointing an app at it.

- Every request must carry a valid `Authorization: WECHATPAY2-SHA256-RSA2048 ...` signature by the
  merchant key (right mchid and serial, timestamp within 5 minutes); otherwise 401 SIGN_ERROR,
  unsigned (as WeChat Pay does for requests it cannot authenticate).
- Every other answer is signed (Wechatpay-Timestamp/-Nonce/-Signature/-Serial over
  "timestamp\\nnonce\\nbody\\n") with the key the request's `Wechatpay-Serial` header names, as
  WeChat Pay picks it: the platform public key for its id (`PUB_KEY_ID_...`); without the header
  (or naming another key) with the merchant's old platform certificate (`platform_cert_serial`),
  as for a merchant migrating from certificates, which a public-key client must refuse. Unless
  `unsigned_responses` (no signature headers) or `bad_signatures` (signed by a key that is not the
  platform key).
- `POST /v3/pay/transactions/jsapi` keeps the order in `orders[out_trade_no]` (what it received plus
  `trade_state` NOTPAY and `prepay_id`); placing the same order again answers the same prepay_id,
  different fields for a used out_trade_no answer 400 INVALID_REQUEST, a paid one 403 ORDERPAID.
- `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=` answers the transaction, or 404
  ORDER_NOT_EXIST.
- `fail_next(status, code)` answers the next request with that error; `garbage_next()` with a
  signed 200 body that is not JSON; `slow` sleeps `slow_seconds` before every answer.
- `pay()` / `notification()` / `signed_headers()` build notifications as WeChat Pay sends them.
Every request is recorded in `requests`. `reset()` forgets everything between tests.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CHINA_TZ = timezone(timedelta(hours=8))
NOTIFY_URL = "http://localhost/api/v1/payments/wechatpay/notify"
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _rfc3339(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(timezone.utc)
    return moment.astimezone(CHINA_TZ).replace(microsecond=0).isoformat()


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), message, padding.PKCS1v15(),
                   hashes.SHA256())
    except (ValueError, InvalidSignature):
        return False
    return True


class FakeWechatPay:
    def __init__(self) -> None:
        self.mch_id = "1900009191"
        self.app_id = "wx-test-app"
        self.mch_cert_serial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
        self.platform_key_id = "PUB_KEY_ID_0114232134912410000000000000000"
        # The platform certificate of a merchant migrating to public-key mode: WeChat Pay signs
        # with it whenever a request does not name the public key in Wechatpay-Serial.
        self.platform_cert_serial = "3775B6A45ACD588826D15E583A95F5DD6F2E1E1A"
        self.platform_cert_key = new_rsa_key()
        self.api_v3_key = secrets.token_hex(16)  # 32 characters, as the merchant console sets
        self.merchant_key = new_rsa_key()
        self.platform_key = new_rsa_key()
        self.folder = tempfile.mkdtemp(prefix="fake-wechatpay-")
        self.merchant_key_file = os.path.join(self.folder, "apiclient_key.pem")
        self.platform_public_key_file = os.path.join(self.folder, "pub_key.pem")
        with open(self.merchant_key_file, "wb") as fh:
            fh.write(self.merchant_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        with open(self.platform_public_key_file, "wb") as fh:
            fh.write(self.platform_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self._forger = new_rsa_key()  # signs answers when `bad_signatures`
        self.slow_seconds = 3.0
        self.requests: list[dict] = []
        self.orders: dict[str, dict] = {}
        self._lock = threading.Lock()
        self.reset()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

            def send(self, status, body: bytes, headers: dict[str, str]):
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (a slow answer past its timeout)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- test controls ---------------------------------------------------------------------------

    def app_settings(self) -> dict:
        return {
            "WECHATPAY_API_BASE": self.base_url,
            "WECHATPAY_APP_ID": self.app_id,
            "WECHATPAY_MCH_ID": self.mch_id,
            "WECHATPAY_MCH_CERT_SERIAL": self.mch_cert_serial,
            "WECHATPAY_MCH_PRIVATE_KEY_FILE": self.merchant_key_file,
            "WECHATPAY_API_V3_KEY": self.api_v3_key,
            "WECHATPAY_PLATFORM_PUBLIC_KEY_ID": self.platform_key_id,
            "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": self.platform_public_key_file,
            "WECHATPAY_NOTIFY_URL": NOTIFY_URL,
            "WECHATPAY_TIMEOUT_SECONDS": 1.0,
        }

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.orders.clear()
            self._next: list[tuple[int, bytes]] = []
        self.slow = False
        self.unsigned_responses = False
        self.bad_signatures = False

    def fail_next(self, status: int, code: str | None = None) -> None:
        """The next request is answered `status` with {"code", "message"} (signed as usual)."""
        code = code or ("SYSTEM_ERROR" if status >= 500 else "PARAM_ERROR")
        body = json.dumps({"code": code, "message": "fake error"}).encode()
        with self._lock:
            self._next.append((status, body))

    def garbage_next(self) -> None:
        with self._lock:
            self._next.append((200, b"<html>not json</html>"))

    def mark(self, out_trade_no: str, trade_state: str, *, success_time: str | None = None) -> None:
        """Set an order's state without notifying (SUCCESS, CLOSED, PAYERROR, REFUND, ...)."""
        with self._lock:
            order = self.orders[out_trade_no]
            order["trade_state"] = trade_state
            if trade_state == "SUCCESS" and not order.get("transaction_id"):
                order["transaction_id"] = "42000" + "".join(
                    secrets.choice("0123456789") for _ in range(23))
                order["success_time"] = success_time or _rfc3339()
            elif success_time:
                order["success_time"] = success_time

    def transaction(self, out_trade_no: str) -> dict:
        """The transaction as the query (and a notification's resource) shows it."""
        order = self.orders[out_trade_no]
        total = order["amount"]["total"]
        paid = order["trade_state"] in ("SUCCESS", "REFUND")
        tx = {
            "appid": order["appid"],
            "mchid": order["mchid"],
            "out_trade_no": out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": order["trade_state"],
            "trade_state_desc": _STATE_DESC.get(order["trade_state"], order["trade_state"]),
            "payer": {"openid": order["payer"]["openid"]},
            "amount": {"total": total, "currency": "CNY"},
        }
        if paid:
            tx.update(transaction_id=order["transaction_id"], bank_type="OTHERS",
                      success_time=order["success_time"], attach="")
            tx["amount"].update(payer_total=total, payer_currency="CNY")
        return tx

    def pay(self, out_trade_no: str, *, amount_fen: int | None = None,
            success_time: str | None = None) -> tuple[dict, bytes]:
        """The payer pays: the order turns SUCCESS; return its TRANSACTION.SUCCESS notification."""
        self.mark(out_trade_no, "SUCCESS", success_time=success_time)
        tx = self.transaction(out_trade_no)
        if amount_fen is not None:  # a notification that disagrees with the order
            tx["amount"]["total"] = tx["amount"]["payer_total"] = amount_fen
        return self.notification(tx)

    def notification(self, transaction: dict, *, sign_with: rsa.RSAPrivateKey | None = None,
                     serial: str | None = None, timestamp: int | None = None,
                     encrypt_with: str | bytes | None = None,
                     event_type: str = "TRANSACTION.SUCCESS") -> tuple[dict, bytes]:
        """A notification carrying `transaction` as its encrypted resource, as WeChat Pay sends it.

        `sign_with` another private key forges the signature; `serial` names another key;
        `timestamp` (unix seconds) replays it from another time; `encrypt_with` another APIv3 key.
        """
        key = encrypt_with if encrypt_with is not None else self.api_v3_key
        key = key.encode() if isinstance(key, str) else key
        nonce = secrets.token_urlsafe(9)[:12]
        associated = "transaction"
        ciphertext = AESGCM(key).encrypt(
            nonce.encode(), json.dumps(transaction, ensure_ascii=False).encode(),
            associated.encode())
        event = {
            "id": str(uuid.uuid4()),
            "create_time": _rfc3339(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": associated,
                "nonce": nonce,
            },
        }
        body = json.dumps(event, ensure_ascii=False).encode()
        return self.signed_headers(body, sign_with=sign_with, serial=serial,
                                   timestamp=timestamp), body

    def signed_headers(self, body: bytes, *, sign_with: rsa.RSAPrivateKey | None = None,
                       serial: str | None = None, timestamp: int | None = None) -> dict:
        """Notification headers signing `body` (any bytes) with the platform key."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16)
        signature = rsa_sign(sign_with or self.platform_key,
                             ts.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n")
        return {
            "Content-Type": "application/json",
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": serial or self.platform_key_id,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }

    def calls(self, path_prefix: str) -> list[dict]:
        return [r for r in self.requests if r["path"].startswith(path_prefix)]

    def start(self) -> "FakeWechatPay":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the server ------------------------------------------------------------------------------

    def _handle(self, handler, method: str) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        url = urlparse(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            body = None
        auth_ok, auth_reason = self._check_auth(method, handler.path, raw,
                                                handler.headers.get("Authorization") or "")
        record = {"method": method, "path": url.path, "query": query, "body": body, "raw": raw,
                  "headers": dict(handler.headers.items()), "auth_ok": auth_ok}
        self.requests.append(record)
        if self.slow:
            time.sleep(self.slow_seconds)
        if not auth_ok:
            return self._answer(handler, 401, {"code": "SIGN_ERROR", "message": auth_reason},
                                sign=False)
        with self._lock:
            canned = self._next.pop(0) if self._next else None
        if canned:
            return self._answer_raw(handler, *canned)
        if method == "POST" and url.path == "/v3/pay/transactions/jsapi":
            return self._jsapi(handler, body)
        prefix = "/v3/pay/transactions/out-trade-no/"
        if method == "GET" and url.path.startswith(prefix) and "/" not in url.path[len(prefix):]:
            return self._query(handler, unquote(url.path[len(prefix):]), query)
        return self._answer(handler, 404, {"code": "NOT_FOUND", "message": "no such API"})

    def _check_auth(self, method: str, path: str, raw: bytes, header: str) -> tuple[bool, str]:
        schema, _, rest = header.partition(" ")
        if schema != "WECHATPAY2-SHA256-RSA2048":
            return False, "no or unknown Authorization schema"
        params = dict(_AUTH_PARAM.findall(rest))
        needed = {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}
        if not needed <= params.keys():
            return False, "Authorization is missing parameters"
        if params["mchid"] != self.mch_id or params["serial_no"] != self.mch_cert_serial:
            return False, "wrong mchid or certificate serial"
        if not params["timestamp"].isdigit() or abs(time.time() - int(params["timestamp"])) > 300:
            return False, "timestamp expired"
        message = (f"{method}\n{path}\n{params['timestamp']}\n{params['nonce_str']}\n".encode()
                   + raw + b"\n")
        if not rsa_verify(self.merchant_key.public_key(), message, params["signature"]):
            return False, "signature does not verify"
        return True, ""

    def _jsapi(self, handler, body) -> None:
        if not _valid_order(body) or body["mchid"] != self.mch_id:
            return self._answer(handler, 400, {"code": "PARAM_ERROR", "message": "invalid order"})
        out_trade_no = body["out_trade_no"]
        with self._lock:
            existing = self.orders.get(out_trade_no)
            if existing is not None:
                if existing["trade_state"] == "SUCCESS":
                    status, answer = 403, {"code": "ORDERPAID", "message": "该订单已支付"}
                elif existing["trade_state"] == "CLOSED":
                    status, answer = 400, {"code": "ORDER_CLOSED", "message": "订单已关闭"}
                elif existing["received"] != body:
                    status, answer = 400, {"code": "INVALID_REQUEST",
                                           "message": "201 商户订单号重复"}
                else:
                    status, answer = 200, {"prepay_id": existing["prepay_id"]}
            else:
                prepay_id = "wx" + time.strftime("%d%H%M%S") + secrets.token_hex(14)
                self.orders[out_trade_no] = {**body, "received": body, "trade_state": "NOTPAY",
                                             "prepay_id": prepay_id}
                status, answer = 200, {"prepay_id": prepay_id}
        return self._answer(handler, status, answer)

    def _query(self, handler, out_trade_no: str, query: dict) -> None:
        if query.get("mchid") != self.mch_id:
            return self._answer(handler, 400, {"code": "PARAM_ERROR", "message": "mchid"})
        if out_trade_no not in self.orders:
            return self._answer(handler, 404, {"code": "ORDER_NOT_EXIST",
                                               "message": "订单不存在"})
        return self._answer(handler, 200, self.transaction(out_trade_no))

    def _answer(self, handler, status: int, body: dict, *, sign: bool = True) -> None:
        self._answer_raw(handler, status, json.dumps(body, ensure_ascii=False).encode(), sign)

    def _answer_raw(self, handler, status: int, body: bytes, sign: bool = True) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Request-ID": str(uuid.uuid4())}
        if sign and not self.unsigned_responses:
            key, serial = self._answer_key(handler.headers.get("Wechatpay-Serial"))
            headers.update(self.signed_headers(
                body, sign_with=self._forger if self.bad_signatures else key, serial=serial))
            headers.pop("Content-Type")
            headers["Content-Type"] = "application/json; charset=utf-8"
        handler.send(status, body, headers)


    def _answer_key(self, requested: str | None) -> tuple[rsa.RSAPrivateKey, str]:
        """The key WeChat Pay signs an answer with, chosen by the request's Wechatpay-Serial."""
        if requested == self.platform_key_id:
            return self.platform_key, self.platform_key_id
        return self.platform_cert_key, self.platform_cert_serial


_STATE_DESC = {"SUCCESS": "支付成功", "NOTPAY": "订单未支付", "CLOSED": "订单已关闭",
               "PAYERROR": "支付失败", "REFUND": "转入退款", "USERPAYING": "用户支付中",
               "REVOKED": "已撤销"}


def _valid_order(body) -> bool:
    if not isinstance(body, dict):
        return False
    amount, payer = body.get("amount"), body.get("payer")
    return (all(isinstance(body.get(k), str) and body.get(k) for k in
                ("appid", "mchid", "description", "out_trade_no", "notify_url"))
            and 6 <= len(body["out_trade_no"]) <= 32
            and isinstance(amount, dict) and isinstance(amount.get("total"), int)
            and amount["total"] > 0 and amount.get("currency", "CNY") == "CNY"
            and isinstance(payer, dict) and isinstance(payer.get("openid"), str)
            and bool(payer["openid"]))

"""app/wechatpay.py against the local fake WeChat Pay server (which checks our request signatures).

Every test runs inside an app context of the shared test app, whose settings point at the fake.
"""
from __future__ import annotations

import base64
import json
import logging
import time
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from app import wechatpay
from app.errors import DomainError
from miniprogram_api.problems import status_of
from tests.fakes.wechatpay import new_rsa_key

OPENID = "o-donor-openid-Zx81kQ3mP0a"


@pytest.fixture
def pay(app, fake_wechatpay):
    with app.app_context():
        yield fake_wechatpay


def _order(out_trade_no="DON20260101abc", amount_fen=5000, **overrides):
    args = dict(out_trade_no=out_trade_no, description="505公益基金-捐款", amount_fen=amount_fen,
                payer_openid=OPENID,
                expires_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc))
    args.update(overrides)
    return wechatpay.place_jsapi_order(**args)


def _raises(code, status, call, *args, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call(*args, **kwargs)
    assert (caught.value.code, status_of(caught.value)) == (code, status)
    return caught.value


# --- placing an order ----------------------------------------------------------------------------

def test_order_is_placed_with_a_valid_merchant_signature_and_the_exact_body(pay):
    prepay_id = _order()

    (request,) = pay.calls("/v3/pay/transactions/jsapi")
    assert request["auth_ok"] is True  # the fake verified the signature with the merchant key
    assert request["headers"]["Authorization"].startswith(
        f'WECHATPAY2-SHA256-RSA2048 mchid="{pay.mch_id}",')
    assert f'serial_no="{pay.mch_cert_serial}"' in request["headers"]["Authorization"]
    assert request["headers"]["Accept"] == "application/json"
    assert request["headers"]["User-Agent"]
    assert request["body"] == {
        "appid": pay.app_id,
        "mchid": pay.mch_id,
        "description": "505公益基金-捐款",
        "out_trade_no": "DON20260101abc",
        "time_expire": "2026-01-02T11:04:05+08:00",
        "notify_url": "http://localhost/api/v1/payments/wechatpay/notify",
        "amount": {"total": 5000, "currency": "CNY"},
        "payer": {"openid": OPENID},
    }
    assert prepay_id == pay.orders["DON20260101abc"]["prepay_id"]
    assert pay.orders["DON20260101abc"]["trade_state"] == "NOTPAY"


def test_every_request_names_the_platform_public_key_in_wechatpay_serial(pay):
    """Public-key mode: like the official SDKs, every request carries the public key id, which
    WeChat Pay uses to choose the key that signs its answer (a certificate otherwise)."""
    _order()
    wechatpay.query_order("DON20260101abc")
    wechatpay.query_order("DON-never-placed")

    assert [r["path"].split("/")[-1] for r in pay.requests] == [
        "jsapi", "DON20260101abc", "DON-never-placed"]
    assert {r["headers"].get("Wechatpay-Serial") for r in pay.requests} == {pay.platform_key_id}


def test_an_answer_signed_with_the_old_platform_certificate_is_refused(pay, monkeypatch):
    """A merchant migrating from certificates: a request that does not name the public key is
    answered under the certificate, which this client does not trust."""
    monkeypatch.setattr(pay, "platform_key_id", "PUB_KEY_ID_not_the_configured_one")

    _raises("wechatpay_unavailable", 503, _order)


def test_a_request_signed_with_another_key_is_refused_by_the_fake(app, pay, tmp_path,
                                                                 monkeypatch):
    from cryptography.hazmat.primitives import serialization

    other = tmp_path / "other.pem"
    other.write_bytes(new_rsa_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    monkeypatch.setitem(app.config, "WECHATPAY_MCH_PRIVATE_KEY_FILE", str(other))

    error = _raises("wechatpay_rejected", 502, _order)

    assert error.extra["wechatpay_code"] == "SIGN_ERROR"
    assert pay.requests[-1]["auth_ok"] is False
    assert pay.orders == {}


def test_placing_the_same_order_again_answers_the_same_prepay_id(pay):
    assert _order() == _order()


def test_a_used_order_number_with_other_fields_is_rejected_with_the_wechat_code(pay):
    _order(amount_fen=5000)

    error = _raises("wechatpay_rejected", 502, _order, amount_fen=6000)

    assert error.extra["wechatpay_code"] == "INVALID_REQUEST"
    assert "INVALID_REQUEST" in error.detail


def test_an_order_already_paid_is_rejected_as_orderpaid(pay):
    _order()
    pay.mark("DON20260101abc", "SUCCESS")

    assert _raises("wechatpay_rejected", 502, _order).extra["wechatpay_code"] == "ORDERPAID"


def test_request_payment_params_carry_a_pay_sign_by_the_merchant_key(pay):
    prepay_id = _order()

    params = wechatpay.request_payment_params(prepay_id)

    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == pay.app_id
    assert params["package"] == f"prepay_id={prepay_id}"
    assert params["signType"] == "RSA"
    assert params["timeStamp"].isdigit() and abs(int(params["timeStamp"]) - time.time()) < 5
    message = (f'{params["appId"]}\n{params["timeStamp"]}\n{params["nonceStr"]}\n'
               f'{params["package"]}\n').encode()
    pay.merchant_key.public_key().verify(base64.b64decode(params["paySign"]), message,
                                         padding.PKCS1v15(), hashes.SHA256())  # raises if not


# --- querying ------------------------------------------------------------------------------------

def test_query_answers_notpay_then_success(pay):
    _order()

    assert wechatpay.query_order("DON20260101abc")["trade_state"] == "NOTPAY"
    pay.mark("DON20260101abc", "SUCCESS")
    tx = wechatpay.query_order("DON20260101abc")

    assert tx["trade_state"] == "SUCCESS"
    assert tx["out_trade_no"] == "DON20260101abc" and tx["mchid"] == pay.mch_id
    assert tx["amount"]["total"] == tx["amount"]["payer_total"] == 5000
    assert tx["transaction_id"] and tx["success_time"].endswith("+08:00")
    assert tx["payer"]["openid"] == OPENID
    (query,) = [r for r in pay.calls("/v3/pay/transactions/out-trade-no/")
                if r["method"] == "GET"][-1:]
    assert query["query"] == {"mchid": pay.mch_id} and query["auth_ok"] is True


def test_query_of_an_order_wechat_pay_does_not_know_is_none(pay):
    assert wechatpay.query_order("DON-never-placed") is None


def test_an_unsigned_order_not_exist_is_not_believed(pay):
    pay.unsigned_responses = True

    _raises("wechatpay_unavailable", 503, wechatpay.query_order, "DON-never-placed")


# --- WeChat Pay unavailable ----------------------------------------------------------------------

@pytest.mark.parametrize("break_it", [
    pytest.param(lambda fake: setattr(fake, "slow", True), id="timeout"),
    pytest.param(lambda fake: fake.fail_next(500), id="http-500"),
    pytest.param(lambda fake: fake.fail_next(503, "SYSTEM_ERROR"), id="http-503"),
    pytest.param(lambda fake: fake.fail_next(429, "FREQUENCY_LIMITED"), id="http-429"),
    pytest.param(lambda fake: fake.garbage_next(), id="garbage"),
    pytest.param(lambda fake: setattr(fake, "unsigned_responses", True), id="unsigned"),
    pytest.param(lambda fake: setattr(fake, "bad_signatures", True), id="badly-signed"),
])
def test_wechat_pay_unreachable_or_untrustworthy_is_503(pay, break_it):
    break_it(pay)

    error = _raises("wechatpay_unavailable", 503, _order)

    assert error.retry_after  # the edge sends it as Retry-After
    assert "微信支付" in error.detail


def test_a_badly_signed_query_answer_is_503_not_a_transaction(pay):
    _order()
    pay.mark("DON20260101abc", "SUCCESS")
    pay.bad_signatures = True

    _raises("wechatpay_unavailable", 503, wechatpay.query_order, "DON20260101abc")


def test_unreachable_server_is_503(app, pay, monkeypatch):
    monkeypatch.setitem(app.config, "WECHATPAY_API_BASE", "http://127.0.0.1:9")

    _raises("wechatpay_unavailable", 503, _order)


def test_without_merchant_settings_it_is_not_configured_and_refuses(app, pay, monkeypatch):
    assert wechatpay.is_configured() is True
    monkeypatch.setitem(app.config, "WECHATPAY_MCH_ID", None)

    assert wechatpay.is_configured() is False
    error = _raises("payments_not_configured", 503, _order)
    assert "Retry-After" not in error.headers  # waiting does not configure anything
    assert pay.requests == []


def test_with_payments_disabled_it_is_not_configured_though_every_setting_is_there(
        app, pay, monkeypatch):
    monkeypatch.setitem(app.config, "PAYMENTS_ENABLED", False)

    assert wechatpay.is_configured() is False
    _raises("payments_not_configured", 503, _order)
    assert pay.requests == []


# --- notifications -------------------------------------------------------------------------------

def test_a_payment_notification_is_verified_and_decrypted(pay):
    _order()
    headers, body = pay.pay("DON20260101abc", success_time="2026-01-01T12:00:00+08:00")

    parsed = wechatpay.parse_notification(headers, body)

    assert parsed["event"]["event_type"] == "TRANSACTION.SUCCESS"
    assert parsed["event"]["resource"]["algorithm"] == "AEAD_AES_256_GCM"
    tx = parsed["transaction"]
    assert tx["out_trade_no"] == "DON20260101abc" and tx["trade_state"] == "SUCCESS"
    assert tx["amount"]["total"] == 5000 and tx["success_time"] == "2026-01-01T12:00:00+08:00"
    assert tx == wechatpay.query_order("DON20260101abc")  # the query now agrees


def test_notification_headers_are_matched_whatever_their_case(pay):
    _order()
    headers, body = pay.pay("DON20260101abc")

    parsed = wechatpay.parse_notification({k.lower(): v for k, v in headers.items()}, body)

    assert parsed["transaction"]["trade_state"] == "SUCCESS"


def test_a_notification_can_disagree_with_the_order_on_amount(pay):
    """The amount check is the donations domain's job: the client hands the amount over as sent."""
    _order()
    headers, body = pay.pay("DON20260101abc", amount_fen=1)

    assert wechatpay.parse_notification(headers, body)["transaction"]["amount"]["total"] == 1


def _paid(pay):
    _order()
    pay.mark("DON20260101abc", "SUCCESS")
    return pay.transaction("DON20260101abc")


@pytest.mark.parametrize("forge, reason", [
    pytest.param(lambda fake, tx: fake.notification(tx, sign_with=new_rsa_key()),
                 "bad_signature", id="forged-signature"),
    pytest.param(lambda fake, tx: fake.notification(tx, serial="PUB_KEY_ID_0999999999"),
                 "unknown_serial", id="unknown-serial"),
    pytest.param(lambda fake, tx: fake.notification(tx, timestamp=int(time.time()) - 301),
                 "stale_timestamp", id="stale-timestamp"),
    pytest.param(lambda fake, tx: fake.notification(tx, timestamp=int(time.time()) + 301),
                 "stale_timestamp", id="future-timestamp"),
])
def test_a_notification_with_a_bad_signature_is_401(pay, forge, reason):
    headers, body = forge(pay, _paid(pay))

    error = _raises("payment_notification_invalid", 401, wechatpay.parse_notification,
                    headers, body)

    assert error.extra["reason"] == reason


@pytest.mark.parametrize("header", ["Wechatpay-Timestamp", "Wechatpay-Nonce",
                                    "Wechatpay-Signature", "Wechatpay-Serial"])
def test_a_notification_missing_a_signature_header_is_401(pay, header):
    headers, body = pay.notification(_paid(pay))
    del headers[header]

    _raises("payment_notification_invalid", 401, wechatpay.parse_notification, headers, body)


def test_wechat_pay_signature_probe_is_401(pay):
    headers, body = pay.notification(_paid(pay))
    headers["Wechatpay-Signature"] = "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]

    _raises("payment_notification_invalid", 401, wechatpay.parse_notification, headers, body)


def test_a_notification_edited_after_signing_is_401(pay):
    headers, body = pay.notification(_paid(pay))
    event = json.loads(body)
    event["summary"] = "支付成功!"

    _raises("payment_notification_invalid", 401, wechatpay.parse_notification, headers,
            json.dumps(event, ensure_ascii=False).encode())


def test_a_notification_with_its_nonce_changed_is_401(pay):
    headers, body = pay.notification(_paid(pay))
    headers["Wechatpay-Nonce"] = "x" + headers["Wechatpay-Nonce"]

    _raises("payment_notification_invalid", 401, wechatpay.parse_notification, headers, body)


def test_a_notification_encrypted_with_another_apiv3_key_is_400(pay):
    headers, body = pay.notification(_paid(pay), encrypt_with="0" * 32)

    error = _raises("payment_notification_malformed", 400, wechatpay.parse_notification,
                    headers, body)
    assert error.extra["reason"] == "undecryptable"


def test_a_tampered_ciphertext_signed_again_is_400(pay):
    """Only WeChat Pay can sign, but the resource is also authenticated by AES-GCM on its own."""
    _, body = pay.notification(_paid(pay))
    event = json.loads(body)
    raw = bytearray(base64.b64decode(event["resource"]["ciphertext"]))
    raw[0] ^= 0x01
    event["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    body = json.dumps(event).encode()

    _raises("payment_notification_malformed", 400, wechatpay.parse_notification,
            pay.signed_headers(body), body)


@pytest.mark.parametrize("body", [
    pytest.param(b"not json", id="not-json"),
    pytest.param(b"[]", id="not-an-object"),
    pytest.param(json.dumps({"id": "x", "event_type": "TRANSACTION.SUCCESS"}).encode(),
                 id="no-resource"),
    pytest.param(json.dumps({"id": "x", "event_type": "TRANSACTION.SUCCESS", "resource": {
        "algorithm": "AEAD_AES_128_CBC", "ciphertext": "", "nonce": "n", "associated_data": ""}}
    ).encode(), id="other-algorithm"),
])
def test_a_signed_notification_that_is_not_one_is_400(pay, body):
    _raises("payment_notification_malformed", 400, wechatpay.parse_notification,
            pay.signed_headers(body), body)


def test_a_notification_for_another_merchant_is_400(pay):
    tx = _paid(pay)
    tx["mchid"] = "1900000001"

    _raises("payment_notification_malformed", 400, wechatpay.parse_notification,
            *pay.notification(tx))


def test_no_secret_or_full_openid_is_logged(pay, caplog):
    caplog.set_level(logging.DEBUG)
    _order()
    headers, body = pay.pay("DON20260101abc")
    wechatpay.parse_notification(headers, body)
    forged = pay.notification(pay.transaction("DON20260101abc"), sign_with=new_rsa_key())
    with pytest.raises(DomainError):
        wechatpay.parse_notification(*forged)
    pay.fail_next(400, "PARAM_ERROR")
    with pytest.raises(DomainError):
        _order(out_trade_no="DON-other-order")

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "wechatpay" in logged
    assert OPENID not in logged
    assert pay.api_v3_key not in logged
    assert "PRIVATE KEY" not in logged

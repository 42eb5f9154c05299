"""Access tokens: every bad, forged, expired or revoked token is 401 `invalid_token`.

Forged tokens are built here with joserfc and cryptography directly (or by hand, for what no
library will sign), and sent to `GET /api/v1/me`, which needs any valid token.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from tests.factories import PASSWORD

ME = "/api/v1/me"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_segment(obj: dict) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def claims_of(token: str) -> dict:
    return json.loads(_unb64(token.split(".")[1]))


def _real_key(app) -> OctKey:
    """The server's own signing key, to forge tokens that differ from a real one in one claim."""
    from app.auth.tokens import _signing_key

    with app.app_context():
        return _signing_key()


def _sign(app, claims: dict, header: dict | None = None) -> str:
    return jwt.encode(header or {"alg": "HS256", "typ": "JWT"}, claims, _real_key(app))


def _get_me(client, token: str):
    return client.get(ME, headers={"Authorization": f"Bearer {token}"})


def _assert_invalid_token(res) -> None:
    assert res.status_code == 401, res.get_data(as_text=True)
    assert res.mimetype == "application/problem+json"
    assert res.get_json()["code"] == "invalid_token"
    assert res.headers["Cache-Control"] == "no-store"


@pytest.fixture
def donor(actors):
    return actors.donor("token-tester")


def test_real_token_is_accepted(client, donor):
    assert _get_me(client, donor.token).status_code == 200


def test_token_resigned_by_the_test_with_the_real_key_is_accepted(client, app, donor):
    """The control for the claim tests below: the forging helper itself makes good tokens."""
    token = _sign(app, claims_of(donor.token))

    assert _get_me(client, token).status_code == 200


def test_alg_none_is_refused(client, donor):
    header = _json_segment({"alg": "none", "typ": "JWT"})
    token = f"{header}.{donor.token.split('.')[1]}."

    _assert_invalid_token(_get_me(client, token))


def test_rs256_token_signed_with_some_rsa_key_is_refused(client, donor):
    rsa_key = RSAKey.generate_key(2048)
    token = jwt.encode({"alg": "RS256", "typ": "JWT"}, claims_of(donor.token), rsa_key)

    _assert_invalid_token(_get_me(client, token))


def test_hs256_signed_with_an_rsa_public_key_pem_is_refused(client, donor):
    """The classic HS/RS confusion: the public key used as an HMAC secret."""
    rsa_key = RSAKey.generate_key(2048)
    pem = rsa_key.public_key.public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = (_json_segment({"alg": "HS256", "typ": "JWT"}) + "."
                     + _json_segment(claims_of(donor.token)))
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()

    _assert_invalid_token(_get_me(client, f"{signing_input}.{_b64(signature)}"))


def test_token_signed_with_a_wrong_key_is_refused(client, donor):
    token = jwt.encode({"alg": "HS256"}, claims_of(donor.token), OctKey.generate_key(256))

    _assert_invalid_token(_get_me(client, token))


@pytest.mark.parametrize("change", [
    pytest.param({"aud": "someone-else"}, id="wrong-audience"),
    pytest.param({"iss": "evil-issuer"}, id="wrong-issuer"),
    pytest.param({"iat": int(time.time()) - 7200, "nbf": int(time.time()) - 7200,
                  "exp": int(time.time()) - 60}, id="expired"),
    pytest.param({"exp": None}, id="no-exp"),
    pytest.param({"jti": None}, id="no-jti"),
    pytest.param({"tv": None}, id="no-token-version"),
    pytest.param({"nbf": int(time.time()) + 3600}, id="not-yet-valid"),
])
def test_token_with_a_bad_claim_is_refused_though_signed_with_the_real_key(
        client, app, donor, change):
    claims = {**claims_of(donor.token), **change}
    claims = {k: v for k, v in claims.items() if v is not None}

    _assert_invalid_token(_get_me(client, _sign(app, claims)))


def test_edited_payload_with_the_old_signature_is_refused(client, donor):
    header, payload, signature = donor.token.split(".")
    claims = {**claims_of(donor.token), "role": "moderator"}
    forged = f"{header}.{_json_segment(claims)}.{signature}"

    _assert_invalid_token(_get_me(client, forged))


def test_role_claim_changed_and_resigned_with_the_real_key_is_still_refused(client, app, donor):
    """Even a correctly signed token must agree with the account's current role."""
    claims = {**claims_of(donor.token), "role": "moderator"}

    _assert_invalid_token(_get_me(client, _sign(app, claims)))


@pytest.mark.parametrize("header_value", [
    pytest.param("garbage", id="garbage-no-scheme"),
    pytest.param("Bearer garbage", id="garbage"),
    pytest.param("Bearer a.b.c", id="three-garbage-parts"),
    pytest.param("Bearer ", id="empty-bearer"),
    pytest.param("Basic dXNlcjpwYXNz", id="basic-auth"),
    pytest.param("Bearer " + "a" * 5000, id="oversized"),
])
def test_malformed_authorization_header_is_refused(client, header_value):
    _assert_invalid_token(client.get(ME, headers={"Authorization": header_value}))


def test_token_without_bearer_scheme_is_refused(client, donor):
    _assert_invalid_token(client.get(ME, headers={"Authorization": donor.token}))


def test_no_token_on_a_protected_route_is_401(client):
    res = client.get(ME)

    _assert_invalid_token(res)
    assert res.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_of_a_deleted_user_is_refused(client, app, donor):
    from app.auth.models import User
    from app.extensions import db

    with app.app_context():
        db.session.execute(sa.delete(User).where(User.id == donor.id))
        db.session.commit()

    _assert_invalid_token(_get_me(client, donor.token))


def test_disabled_account_token_stops_working_at_once(client, actors):
    admin, caseworker = actors.admin(), actors.caseworker()
    assert _get_me(client, caseworker.token).status_code == 200

    res = client.patch(f"/api/v1/staff/{caseworker.id}", json={"active": False},
                       headers=admin.headers)
    assert res.status_code == 200, res.get_json()

    _assert_invalid_token(_get_me(client, caseworker.token))
    _assert_invalid_token(client.get("/api/v1/staff/wishes", headers=caseworker.headers))


def test_token_issued_before_a_role_change_stops_working_at_once(client, actors):
    admin, caseworker = actors.admin(), actors.caseworker()

    res = client.patch(f"/api/v1/staff/{caseworker.id}", json={"role": "moderator"},
                       headers=admin.headers)
    assert res.status_code == 200 and res.get_json()["role"] == "moderator"

    _assert_invalid_token(_get_me(client, caseworker.token))
    # A fresh login carries the new role.
    login = client.post("/api/v1/auth/staff",
                        json={"username": caseworker.username, "password": PASSWORD}).get_json()
    assert login["user"]["role"] == "moderator"
    me = _get_me(client, login["access_token"])
    assert me.status_code == 200 and me.get_json()["role"] == "moderator"


def test_token_issued_before_a_region_change_stops_working(client, actors):
    admin, caseworker = actors.admin(), actors.caseworker()

    res = client.patch(f"/api/v1/staff/{caseworker.id}", json={"regions": ["350505105"]},
                       headers=admin.headers)
    assert res.status_code == 200, res.get_json()

    _assert_invalid_token(_get_me(client, caseworker.token))


def test_issued_token_carries_the_required_claims(app, donor):
    claims = claims_of(donor.token)
    header = json.loads(_unb64(donor.token.split(".")[0]))

    assert header["alg"] == "HS256"
    assert {"iss", "aud", "sub", "exp", "iat", "jti"} <= set(claims)
    assert claims["iss"] == app.config["JWT_ISSUER"]
    assert claims["aud"] == app.config["JWT_AUDIENCE"]
    assert claims["sub"] == donor.id
    assert claims["exp"] - claims["iat"] == app.config["ACCESS_TOKEN_TTL_SECONDS"]


def test_a_token_accepted_before_is_refused_once_it_has_expired(client, app, donor, monkeypatch):
    """A verified token is remembered per process (app/auth/tokens.py): the remembered one still
    expires, with the same 5 s leeway as a token verified anew."""
    from app.auth import tokens

    claims = {**claims_of(donor.token), "exp": int(time.time()) + 60}
    token = _sign(app, claims)
    assert _get_me(client, token).status_code == 200
    assert _get_me(client, token).status_code == 200  # the remembered verification

    class Later:
        @staticmethod
        def time() -> float:
            return claims["exp"] + 6

    monkeypatch.setattr(tokens, "time", Later)
    _assert_invalid_token(_get_me(client, token))

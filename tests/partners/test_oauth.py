"""Partner systems as OAuth 2.0 clients: `partner-client create`, POST /oauth/token
(client credentials, RFC 6749 §4.4) and what their tokens may and may not call."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.partners.helpers import basic, bearer, create_client_cli, get_token, partner_headers

TOKEN = "/api/v1/oauth/token"


def _client_row(app, client_id: str):
    from app.extensions import db
    from app.partners.models import PartnerClient

    with app.app_context():
        row = db.session.execute(select(PartnerClient).where(
            PartnerClient.client_id == client_id)).scalar_one()
        db.session.expunge(row)
        return row


def _assert_invalid_client(res) -> None:
    assert res.status_code == 401
    assert res.mimetype == "application/json"  # RFC 6749 §5.2, not problem+json
    body = res.get_json()
    assert body["error"] == "invalid_client" and "error_description" in body
    assert res.headers["WWW-Authenticate"].startswith("Basic")
    assert "access_token" not in body


def test_create_prints_the_id_and_secret_once_and_stores_only_a_hash(app):
    result = app.test_cli_runner().invoke(args=[
        "partner-client", "create", "泉港区残联", "--department", "disabled_federation",
        "--region", "350505"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("client_secret: ") == 1
    secret = result.stdout.split("client_secret: ")[1].split()[0]
    client_id = result.stdout.split("client_id: ")[1].split()[0]
    assert len(secret) >= 40

    row = _client_row(app, client_id)
    assert (row.name, row.department, row.region_code, row.active) == \
        ("泉港区残联", "disabled_federation", "350505", True)
    assert secret not in row.client_secret_hash
    assert row.client_secret_hash.startswith("$argon2id$")


def test_create_refuses_an_unknown_department_or_a_bad_region(app):
    runner = app.test_cli_runner()
    bad_department = runner.invoke(args=["partner-client", "create", "x", "--department", "bank"])
    bad_region = runner.invoke(args=["partner-client", "create", "x", "--department", "grid",
                                     "--region", "35050"])
    assert bad_department.exit_code != 0 and "medical_insurance" in bad_department.output
    assert bad_region.exit_code != 0 and "区划代码" in bad_region.output


def test_good_credentials_get_a_short_lived_bearer_token_for_signals(app, client):
    client_id, secret = create_client_cli(app)
    res = get_token(client, client_id, secret)

    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    assert body["token_type"] == "Bearer" and body["scope"] == "signals:write"
    assert body["expires_in"] == 15 * 60
    assert body["access_token"]
    assert res.headers["Cache-Control"] == "no-store"


def test_asking_for_the_signals_scope_by_name_is_granted_and_another_scope_is_not(app, client):
    client_id, secret = create_client_cli(app)
    assert get_token(client, client_id, secret, scope="signals:write").status_code == 200
    res = get_token(client, client_id, secret, scope="admin")
    assert res.status_code == 400 and res.get_json()["error"] == "invalid_scope"


def test_wrong_secret_is_invalid_client(app, client):
    client_id, secret = create_client_cli(app)
    _assert_invalid_client(get_token(client, client_id, secret[:-2] + "xx"))


def test_unknown_client_id_is_invalid_client(app, client):
    _, secret = create_client_cli(app)
    _assert_invalid_client(get_token(client, "pc_nosuchclientatallxyz", secret))
    _assert_invalid_client(get_token(client, "pc_\x00bad", secret))


def test_disabled_client_is_invalid_client(app, client):
    client_id, secret = create_client_cli(app)
    result = app.test_cli_runner().invoke(args=["partner-client", "disable", client_id])
    assert result.exit_code == 0, result.output
    _assert_invalid_client(get_token(client, client_id, secret))


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Basic !!!notbase64"}, {"Authorization": "Basic /w=="},
    {"Authorization": "Bearer abc"},
], ids=["none", "not-base64", "not-utf8", "bearer"])
def test_missing_or_unreadable_client_credentials_are_invalid_client(client, headers):
    res = client.post(TOKEN, headers=headers, data={"grant_type": "client_credentials"})
    _assert_invalid_client(res)


def test_an_unsupported_grant_type_is_400(app, client):
    client_id, secret = create_client_cli(app)
    res = client.post(TOKEN, headers=basic(client_id, secret),
                      data={"grant_type": "password", "username": "a", "password": "b"})
    assert res.status_code == 400
    assert res.get_json()["error"] == "unsupported_grant_type"


def test_a_disabled_clients_token_stops_working_at_once(app, client):
    client_id, secret = create_client_cli(app)
    token = get_token(client, client_id, secret).get_json()["access_token"]
    assert client.post("/api/v1/signals", headers=bearer(token), json={}).status_code == 422

    app.test_cli_runner().invoke(args=["partner-client", "disable", client_id])
    res = client.post("/api/v1/signals", headers=bearer(token), json={"items": []})
    assert res.status_code == 401 and res.get_json()["code"] == "invalid_token"


def test_an_expired_token_is_refused(app, client, monkeypatch):
    client_id, secret = create_client_cli(app)
    monkeypatch.setitem(app.config, "PARTNER_TOKEN_TTL_SECONDS", -60)
    token = get_token(client, client_id, secret).get_json()["access_token"]
    res = client.post("/api/v1/signals", headers=bearer(token), json={"items": []})
    assert res.status_code == 401 and res.get_json()["code"] == "invalid_token"


def test_a_tampered_token_is_refused(app, client):
    headers = partner_headers(app, client)
    token = headers["Authorization"].split()[1]
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    res = client.post("/api/v1/signals", headers=bearer(forged), json={"items": []})
    assert res.status_code == 401 and res.get_json()["code"] == "invalid_token"


def test_a_partner_token_is_forbidden_on_routes_for_people(app, client):
    headers = partner_headers(app, client)
    for method, path in [("GET", "/api/v1/me"), ("GET", "/api/v1/beneficiaries"),
                         ("GET", "/api/v1/staff")]:
        res = client.open(path, method=method, headers=headers)
        assert res.status_code == 403, (path, res.get_json())
        assert res.get_json()["code"] == "forbidden"


def test_a_users_token_is_forbidden_on_signals(app, client, actors):
    for actor in (actors.donor(), actors.caseworker(), actors.admin()):
        res = client.post("/api/v1/signals", headers=actor.headers, json={"items": []})
        assert res.status_code == 403 and res.get_json()["code"] == "forbidden"


def test_signals_without_a_token_is_401(client):
    res = client.post("/api/v1/signals", json={"items": []})
    assert res.status_code == 401 and res.get_json()["code"] == "invalid_token"


def test_more_than_1000_items_or_a_non_object_item_fails_the_envelope(app, client):
    headers = partner_headers(app, client)
    too_many = client.post("/api/v1/signals", headers=headers,
                           json={"items": [{"external_id": str(i)} for i in range(1001)]})
    assert too_many.status_code == 422 and too_many.get_json()["code"] == "validation_error"
    not_objects = client.post("/api/v1/signals", headers=headers, json={"items": ["a", 1]})
    assert not_objects.status_code == 422
    no_items = client.post("/api/v1/signals", headers=headers, json={})
    assert no_items.status_code == 422


def test_the_token_endpoint_is_rate_limited_per_address(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_OAUTH_TOKEN_ADDRESS", "2/minute")
    for _ in range(2):
        assert client.post(TOKEN, data={"grant_type": "client_credentials"}).status_code == 401
    res = client.post(TOKEN, data={"grant_type": "client_credentials"})
    assert res.status_code == 429 and res.headers["Retry-After"]


def test_the_document_describes_the_client_credentials_flow(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    scheme = doc["components"]["securitySchemes"]["partnerOAuth"]
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == "/api/v1/oauth/token"
    assert "signals:write" in scheme["flows"]["clientCredentials"]["scopes"]
    assert doc["paths"]["/api/v1/signals"]["post"]["security"] == [
        {"partnerOAuth": ["signals:write"]}]
    assert doc["paths"]["/api/v1/oauth/token"]["post"]["security"] == [{"partnerBasic": []}]

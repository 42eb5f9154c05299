"""Operating partner clients from the command line: `partner-client list` (never a secret),
`disable` and `rotate-secret` (the old secret, and every token got with it, stop at once)."""
from __future__ import annotations

import re

from tests.partners.helpers import bearer, create_client_cli, get_token


def _cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["partner-client", *args])


def _signals(client, token: str):
    return client.post("/api/v1/signals", headers=bearer(token), json={"items": []})


def _token(client, client_id: str, secret: str) -> str:
    res = get_token(client, client_id, secret)
    assert res.status_code == 200, res.get_json()
    return res.get_json()["access_token"]


def test_list_shows_every_client_and_no_secret(app):
    first_id, first_secret = create_client_cli(app, name="泉港区医保局")
    second_id, second_secret = create_client_cli(app, name="泉港区残联",
                                                 department="disabled_federation",
                                                 region="350505101")
    assert _cli(app, "disable", second_id).exit_code == 0

    result = _cli(app, "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(first_id) and "泉港区医保局" in lines[0]
    assert "medical_insurance" in lines[0] and "region all" in lines[0] and "active" in lines[0]
    assert lines[1].startswith(second_id) and "region 350505101" in lines[1]
    assert "disabled" in lines[1] and "secret v1" in lines[1]
    assert "2 partner client(s)" in result.stderr
    for secret in (first_secret, second_secret):
        assert secret not in result.output
    assert "argon2" not in result.output


def test_list_with_no_clients_says_so(app):
    result = _cli(app, "list")
    assert result.exit_code == 0 and result.stdout == ""
    assert "0 partner client(s)" in result.stderr


def test_rotate_secret_prints_a_new_secret_once_and_the_old_one_stops(app, client):
    client_id, old_secret = create_client_cli(app)
    old_token = _token(client, client_id, old_secret)
    assert _signals(client, old_token).status_code == 200

    result = _cli(app, "rotate-secret", client_id)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("client_secret: ") == 1
    new_secret = re.search(r"^client_secret: (\S+)$", result.stdout, re.M).group(1)
    assert new_secret != old_secret and len(new_secret) >= 40
    assert "shown only once" in result.stderr

    # The old secret gets no token, and the token it got stops at once.
    refused = get_token(client, client_id, old_secret)
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"
    res = _signals(client, old_token)
    assert res.status_code == 401 and res.get_json()["code"] == "invalid_token"
    # The new secret works, and its token too.
    assert _signals(client, _token(client, client_id, new_secret)).status_code == 200
    assert "secret v2" in _cli(app, "list").stdout


def test_rotating_again_ends_the_previous_rotations_tokens(app, client):
    client_id, secret = create_client_cli(app)
    second = re.search(r"client_secret: (\S+)", _cli(app, "rotate-secret", client_id).stdout)[1]
    token = _token(client, client_id, second)
    third = re.search(r"client_secret: (\S+)", _cli(app, "rotate-secret", client_id).stdout)[1]
    assert _signals(client, token).status_code == 401
    assert get_token(client, client_id, second).status_code == 401
    assert _signals(client, _token(client, client_id, third)).status_code == 200


def test_rotating_a_disabled_client_keeps_it_disabled(app, client):
    client_id, _ = create_client_cli(app)
    assert _cli(app, "disable", client_id).exit_code == 0
    result = _cli(app, "rotate-secret", client_id)
    assert result.exit_code == 0
    new_secret = re.search(r"client_secret: (\S+)", result.stdout)[1]
    assert get_token(client, client_id, new_secret).status_code == 401


def test_disable_ends_tokens_at_once_and_unknown_clients_are_an_error(app, client):
    client_id, secret = create_client_cli(app)
    token = _token(client, client_id, secret)
    assert _cli(app, "disable", client_id).exit_code == 0
    assert _signals(client, token).status_code == 401
    assert get_token(client, client_id, secret).status_code == 401

    for command in ("disable", "rotate-secret"):
        missing = _cli(app, command, "pc_nosuchclientatallxyz")
        assert missing.exit_code == 1 and "没有合作方客户端" in missing.output
        malformed = _cli(app, command, "not-a-client-id")
        assert malformed.exit_code == 1


def test_a_token_from_before_secret_versions_counts_as_the_first(app, client):
    """Tokens issued before migration 0012 carry no `sv` claim: they stay good for their 15
    minutes, until the secret is rotated."""
    from joserfc import jwt

    from app.partners import tokens

    client_id, _ = create_client_cli(app)
    with app.app_context():
        current, _ = tokens.issue_partner_token(client_id, "signals:write")
        claims = dict(jwt.decode(current, tokens._signing_key()).claims)
        assert claims.pop("sv") == 1
        legacy = jwt.encode({"alg": tokens.ALGORITHM, "typ": tokens.TOKEN_TYPE}, claims,
                            tokens._signing_key())
    assert _signals(client, legacy).status_code == 200
    assert _cli(app, "rotate-secret", client_id).exit_code == 0
    assert _signals(client, legacy).status_code == 401

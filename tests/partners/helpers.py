"""Partner clients made the way an operator makes them (the CLI), and their tokens."""
from __future__ import annotations

import base64
import re


def create_client_cli(app, name: str = "泉港区医保局", department: str = "medical_insurance",
                      region: str | None = None) -> tuple[str, str]:
    """(client_id, client_secret) as printed by `flask partner-client create`."""
    args = ["partner-client", "create", name, "--department", department]
    if region:
        args += ["--region", region]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output + result.stderr
    client_id = re.search(r"^client_id: (\S+)$", result.stdout, re.M).group(1)
    secret = re.search(r"^client_secret: (\S+)$", result.stdout, re.M).group(1)
    return client_id, secret


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def get_token(client, client_id: str, secret: str, **form) -> object:
    return client.post("/api/v1/oauth/token", headers=basic(client_id, secret),
                       data={"grant_type": "client_credentials", **form})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def partner_headers(app, client, **kwargs) -> dict[str, str]:
    client_id, secret = create_client_cli(app, **kwargs)
    res = get_token(client, client_id, secret)
    assert res.status_code == 200, res.get_json()
    return bearer(res.get_json()["access_token"])

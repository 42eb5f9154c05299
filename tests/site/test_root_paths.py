"""The root paths a probe expects, sent on to where the contract keeps them (under /api/v1)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("name", ["healthz", "readyz"])
def test_root_health_path_redirects_permanently_to_the_api(client, name):
    res = client.get(f"/{name}")
    assert res.status_code == 308  # permanent, and the method is kept
    assert res.headers["Location"] == f"/api/v1/{name}"
    assert "Set-Cookie" not in res.headers

    followed = client.get(f"/{name}", follow_redirects=True)
    assert followed.status_code == 200
    assert followed.request.path == f"/api/v1/{name}"
    assert followed.get_json()["status"] == "ok"

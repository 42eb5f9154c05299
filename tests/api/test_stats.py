"""`GET /stats` through the API: exact totals and breakdowns from real wishes and claims."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.factories import SECRET_ADDRESS, SECRET_ID_NUMBER, SECRET_NAME, SECRET_PHONE

ZERO = {"wishes_published": 0, "wishes_open": 0, "wishes_fulfilled": 0, "value_fulfilled_fen": 0}


@pytest.fixture(autouse=True)
def _no_cache(app, monkeypatch):
    monkeypatch.setitem(app.config, "STATS_CACHE_SECONDS", 0)


def _stats(client):
    res = client.get("/api/v1/stats")
    assert res.status_code == 200, res.get_json()
    return res


def test_empty_platform_reports_zeros_for_every_kind_and_level(client):
    body = _stats(client).get_json()
    assert body == {**ZERO, "claims_expired": 0, "donors": 0, "money_donated_fen": 0,
                    "money_disbursed_fen": 0,
                    "by_kind": {k: ZERO for k in ("goods", "service", "education")},
                    "by_level": {lv: ZERO for lv in ("red", "orange", "yellow", "blue")}}


def test_totals_and_breakdowns_count_exactly_what_happened(client, app, actors):
    from app.claims.service import sweep_due_claims

    cw, mod = actors.caseworker(), actors.moderator()
    donor_a, donor_b, idle_donor = actors.donor(), actors.donor(), actors.donor()
    blue = actors.beneficiary(cw, assessment={"categories": ["elderly"], "level": "blue"})
    stays_open = actors.open_wish(cw, mod, kind="goods", estimated_value_fen=10000)
    fulfilled = actors.open_wish(cw, mod, kind="service", estimated_value_fen=30000)
    fulfilled_2 = actors.open_wish(cw, mod, kind="goods", estimated_value_fen=5000,
                                   beneficiary_id=blue["id"])
    expires = actors.open_wish(cw, mod, kind="education", estimated_value_fen=70000,
                               beneficiary_id=blue["id"])
    actors.draft_wish(cw, kind="education")          # never published: not counted
    actors.submitted_wish(cw, kind="service")        # awaiting review: not counted
    actors.fulfil(donor_a, cw, fulfilled["id"])
    actors.fulfil(donor_a, cw, fulfilled_2["id"])
    actors.claim(donor_b, expires["id"])
    with app.app_context():
        assert sweep_due_claims(now=datetime.now(timezone.utc) + timedelta(days=30)) == 1
    assert idle_donor  # signed in but never claimed: not a donor in the totals

    body = _stats(client).get_json()
    assert stays_open and body["wishes_published"] == 4
    assert body["wishes_open"] == 2  # the expired claim's wish went back to open
    assert body["wishes_fulfilled"] == 2
    assert body["value_fulfilled_fen"] == 35000
    assert body["claims_expired"] == 1
    assert body["donors"] == 2
    assert body["money_donated_fen"] == body["money_disbursed_fen"] == 0
    assert body["by_kind"] == {
        "goods": {"wishes_published": 2, "wishes_open": 1, "wishes_fulfilled": 1,
                  "value_fulfilled_fen": 5000},
        "service": {"wishes_published": 1, "wishes_open": 0, "wishes_fulfilled": 1,
                    "value_fulfilled_fen": 30000},
        "education": {"wishes_published": 1, "wishes_open": 1, "wishes_fulfilled": 0,
                      "value_fulfilled_fen": 0},
    }
    assert body["by_level"] == {
        "red": {"wishes_published": 2, "wishes_open": 1, "wishes_fulfilled": 1,
                "value_fulfilled_fen": 30000},
        "orange": ZERO, "yellow": ZERO,
        "blue": {"wishes_published": 2, "wishes_open": 1, "wishes_fulfilled": 1,
                 "value_fulfilled_fen": 5000},
    }


def test_withdrawn_wish_still_counts_as_published(client, actors):
    cw, mod = actors.caseworker(), actors.moderator()
    wish = actors.open_wish(cw, mod)
    assert client.post(f"/api/v1/wishes/{wish['id']}/withdraw",
                       headers=mod.headers).status_code == 200
    body = _stats(client).get_json()
    assert body["wishes_published"] == 1 and body["wishes_open"] == 0


def test_response_holds_only_numbers_no_ids_or_personal_data(client, app, actors):
    cw, mod = actors.caseworker(), actors.moderator()
    donor = actors.donor()
    wish = actors.open_wish(cw, mod)
    actors.fulfil(donor, cw, wish["id"])
    res = _stats(client)
    text = res.get_data(as_text=True)
    for secret in (wish["id"], wish["title"], SECRET_NAME, SECRET_ID_NUMBER, SECRET_PHONE,
                   SECRET_ADDRESS, "林阿婆", donor.id):
        assert secret not in text

    def leaves(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from leaves(value)
        else:
            yield node

    assert all(type(v) is int for v in leaves(res.get_json()))


def test_answer_is_cached_briefly_for_everyone(client, app, actors, monkeypatch):
    from app import stats

    monkeypatch.setitem(app.config, "STATS_CACHE_SECONDS", 60)
    stats.clear_cache()
    assert _stats(client).get_json()["wishes_published"] == 0
    actors.open_wish(actors.caseworker(), actors.moderator())
    assert _stats(client).get_json()["wishes_published"] == 0  # served from the cache
    monkeypatch.setitem(app.config, "STATS_CACHE_SECONDS", 0)
    assert _stats(client).get_json()["wishes_published"] == 1

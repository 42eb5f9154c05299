"""The demo seed puts the 505 fund through its services: a paid donation and an approved payout."""
from __future__ import annotations


def test_demo_seed_has_a_paid_donation_and_an_approved_disbursement(app, client, monkeypatch):
    from app.fund import audit

    monkeypatch.setitem(app.config, "STATS_CACHE_SECONDS", 0)
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    assert "505 fund: 1 paid donation" in result.output

    stats = client.get("/api/v1/stats").get_json()
    assert (stats["money_donated_fen"], stats["money_disbursed_fen"]) == (50000, 26000)
    entries = client.get("/api/v1/ledger/entries?limit=100").get_json()["items"]
    kinds = [e["entry"]["kind"] for e in entries]
    assert kinds.count("money_donation") == 1 and kinds.count("disbursement") == 1
    donation = next(e["entry"] for e in entries if e["entry"]["kind"] == "money_donation")
    assert donation["donor"] == "郑*"
    with app.app_context():
        assert audit.problems() == []

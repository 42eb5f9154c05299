"""The public verifier (`python -m app.ledger.verify`) run as a real process against a live
gunicorn: it accepts the honest ledger, follows it as it grows, and catches a changed row, a wrong
key and a log that shrank."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests
import sqlalchemy as sa

from app.extensions import db
from app.ledger import keys
from tests.processes import ROOT


@pytest.fixture
def staff(actors):
    return actors.caseworker(), actors.moderator()


def _fulfil(actors, staff) -> None:
    """Claim an open wish, deliver it and confirm it: one ledger entry."""
    caseworker, moderator = staff
    actors.fulfil(actors.donor(), caseworker, actors.open_wish(caseworker, moderator)["id"])


def _verify(base: str, vkey: str, state, *extra: str) -> subprocess.CompletedProcess:
    # No DATABASE_URL: the verifier must work from HTTP alone.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run([sys.executable, "-m", "app.ledger.verify", base, "--vkey", vkey,
                           "--state", str(state), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def live(processes):
    """(base URL, the server's verifier key) — in real life the key comes out of band."""
    base = processes.server(workers=1, threads=4)
    return base, requests.get(f"{base}/api/v1/ledger/key", timeout=5).json()["vkey"]


def test_verifier_accepts_the_ledger_then_checks_consistency_as_it_grows(
        client, app, actors, staff, live, tmp_path):
    base, vkey = live
    state = tmp_path / "state.json"
    for _ in range(3):
        _fulfil(actors, staff)

    first = _verify(base, vkey, state)
    assert first.returncode == 0, first.stderr
    assert "账本验证通过 / verified: 3 entries" in first.stdout
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["size"] == 3 and saved["checkpoint"].startswith(saved["origin"] + "\n3\n")

    for _ in range(2):
        _fulfil(actors, staff)
    second = _verify(base, vkey, state, "--check-inclusion", "3")
    assert second.returncode == 0, second.stderr
    assert "verified: 5 entries" in second.stdout
    assert "consistent with the previous checkpoint of size 3" in second.stdout
    assert "inclusion proofs verified" in second.stdout
    assert json.loads(state.read_text(encoding="utf-8"))["size"] == 5


def test_verifier_rejects_a_checkpoint_under_the_wrong_key(
        client, app, actors, staff, live, tmp_path):
    base, vkey = live
    _fulfil(actors, staff)
    origin = vkey.split("+", 1)[0]
    _, other_vkey = keys.generate(origin)       # same name, another key: an impostor's log

    res = _verify(base, other_vkey, tmp_path / "state.json")
    assert res.returncode == 1
    assert "checkpoint signature check failed" in res.stderr
    assert not (tmp_path / "state.json").exists()


def test_verifier_refuses_a_log_smaller_than_the_one_seen_before(
        client, app, actors, staff, live, tmp_path):
    base, vkey = live
    _fulfil(actors, staff)
    state = tmp_path / "state.json"
    assert _verify(base, vkey, state).returncode == 0
    remembered = json.loads(state.read_text(encoding="utf-8"))
    state.write_text(json.dumps({**remembered, "size": 7}), encoding="utf-8")

    res = _verify(base, vkey, state)
    assert res.returncode == 1
    assert "consistency check failed" in res.stderr and "smaller than the size 7" in res.stderr


def test_verifier_catches_a_ledger_row_changed_in_the_database(
        needs_postgres, client, app, actors, staff, live, tmp_path):
    base, vkey = live
    state = tmp_path / "state.json"
    for _ in range(3):
        _fulfil(actors, staff)
    assert _verify(base, vkey, state).returncode == 0
    before = state.read_text(encoding="utf-8")

    # What a superuser attacker would do: switch the append-only trigger off, rewrite, switch on.
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE ledger_entries DISABLE TRIGGER ALL"))
        changed = conn.execute(sa.text(
            "UPDATE ledger_entries SET leaf = convert_to(replace(convert_from(leaf, 'UTF8'), "
            ":old, :new), 'UTF8') WHERE \"index\" = 1"),
            {"old": '"value_fen":80000', "new": '"value_fen":8'})
        conn.execute(sa.text("ALTER TABLE ledger_entries ENABLE TRIGGER ALL"))
    assert changed.rowcount == 1
    shown = requests.get(f"{base}/api/v1/ledger/entries/1", timeout=5).json()
    assert shown["entry"]["value_fen"] == 8            # the server now serves the forged row

    res = _verify(base, vkey, state)
    assert res.returncode == 1
    assert "root check failed" in res.stderr and "3 entries" in res.stderr
    assert state.read_text(encoding="utf-8") == before  # a failed run records nothing

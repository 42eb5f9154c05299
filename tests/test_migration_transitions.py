"""Migration 0009 moves the rows of the four old `*_transitions` tables into `transitions`, each
object's history in its order, and its downgrade moves them back."""
from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from tests.migrations import scratch_database

MIGRATION = Path(__file__).parent.parent / "migrations" / "versions" / "0009_transitions.py"
OLD = {"wish": ("wish_transitions", "wish_id"), "claim": ("claim_transitions", "claim_id"),
       "donation": ("donation_transitions", "donation_id"),
       "disbursement": ("disbursement_transitions", "disbursement_id")}
AT = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def _revisions() -> tuple[str, str]:
    spec = importlib.util.spec_from_file_location("migration_0009", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.revision, module.down_revision


def _rows(conn, sql: str) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sa.text(sql)).all()]


def test_the_transitions_migration_keeps_every_row_both_ways(app_config, needs_postgres):
    from flask_migrate import downgrade, upgrade

    from app.extensions import db

    revision, before = _revisions()
    with scratch_database(app_config):
        upgrade(revision=before)
        written = {}
        with db.engine.begin() as conn:
            for kind, (table, column) in OLD.items():
                written[kind] = [(f"{kind[:3]}_{n % 2}", None if n < 2 else "a", f"s{n}",
                                  f"act{n}", None, f"why {n}" if n else None, AT)
                                 for n in range(4)]
                for row in written[kind]:
                    conn.execute(sa.text(
                        f"INSERT INTO {table} ({column}, from_status, to_status, action,"
                        " actor_id, reason, at) VALUES (:e, :f, :t, :a, :u, :r, :at)"),
                        dict(zip(("e", "f", "t", "a", "u", "r", "at"), row)))

        upgrade(revision=revision)
        with db.engine.connect() as conn:
            for kind in OLD:
                assert _rows(conn, "SELECT entity_id, from_status, to_status, action, actor_id,"
                             " reason, at FROM transitions WHERE entity_type = "
                             f"'{kind}' ORDER BY id") == written[kind]
            tables = sa.inspect(conn).get_table_names()
            assert not {table for table, _ in OLD.values()} & set(tables)

        downgrade(revision=before)
        with db.engine.connect() as conn:
            for kind, (table, column) in OLD.items():
                assert _rows(conn, f"SELECT {column}, from_status, to_status, action, actor_id,"
                             f" reason, at FROM {table} ORDER BY id") == written[kind]
            assert "transitions" not in sa.inspect(conn).get_table_names()

"""Migration 0010 gives beneficiaries already recorded the keyed hash of their ID number, so the
first partner signal naming one of them finds them; its downgrade drops what it made."""
from __future__ import annotations


import sqlalchemy as sa

from tests.migrations import scratch_database

REVISION, BEFORE = "0010_cases", "0009_transitions"


def test_the_cases_migration_hashes_existing_beneficiaries_id_numbers(app_config, needs_postgres):
    from flask_migrate import downgrade, upgrade

    from app import pii
    from app.extensions import db
    from tests.factories import SECRET_ID_NUMBER

    with scratch_database(app_config):
        upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            for ben_id, number in (("ben_with", SECRET_ID_NUMBER), ("ben_without", None)):
                conn.execute(sa.text(
                    "INSERT INTO beneficiaries (id, region_code, alias, id_number_enc, "
                    "categories, level, created_by, created_at, updated_at, erased) VALUES "
                    "(:id, '350505101', '阿婆', :enc, '[]', 'red', 'usr_x', now(), now(), "
                    "false)"),
                    {"id": ben_id, "enc": pii.encrypt(
                        number, f"beneficiaries.id_number.{ben_id}")})

        upgrade(revision=REVISION)
        with db.engine.connect() as conn:
            hashes = dict(conn.execute(sa.text(
                "SELECT id, id_hash FROM beneficiaries")).all())
        assert hashes == {"ben_with": pii.id_number_hash(SECRET_ID_NUMBER),
                          "ben_without": None}
        assert SECRET_ID_NUMBER not in hashes["ben_with"]

        downgrade(revision=BEFORE)
        with db.engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            columns = {c["name"] for c in sa.inspect(conn).get_columns("beneficiaries")}
        assert not {"persons", "signals", "alerts", "tasks", "applications",
                    "alert_rule_versions"} & tables
        assert "id_hash" not in columns

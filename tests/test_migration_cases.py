"""Migration 0010 gives beneficiaries already recorded the keyed hash of their ID number, so the
first partner signal naming one of them finds them; its downgrade drops what it made."""
from __future__ import annotations

import secrets

import sqlalchemy as sa

REVISION, BEFORE = "0010_cases", "0009_transitions"


def test_the_cases_migration_hashes_existing_beneficiaries_id_numbers(app_config, needs_postgres):
    from flask_migrate import downgrade, upgrade

    from app import create_app, pii
    from app.extensions import db
    from tests.factories import SECRET_ID_NUMBER

    server = app_config["DATABASE_URL"].rsplit("/", 1)[0]
    name = f"wxy_mig_{secrets.token_hex(4)}"
    admin = sa.create_engine(f"{server}/postgres".replace("postgresql://", "postgresql+psycopg://",
                                                          1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        # Rows only: no foreign key checks (triggers, which the replica role skips).
        conn.execute(sa.text(f'ALTER DATABASE "{name}" SET session_replication_role = replica'))
    try:
        application = create_app({**app_config, "DATABASE_URL": f"{server}/{name}"})
        with application.app_context():
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
            db.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

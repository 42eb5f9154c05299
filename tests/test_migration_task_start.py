"""Migration 0012 gives tasks their start (who, when) and partner clients a secret version (1 for
the clients already made, so the tokens they hold keep working); its downgrade drops both."""
from __future__ import annotations


import sqlalchemy as sa

from tests.migrations import scratch_database

REVISION, BEFORE = "0012_task_start", "0011_partners"


def test_the_task_start_migration_up_and_down(app_config, needs_postgres):
    from flask_migrate import downgrade, upgrade

    from app.extensions import db

    with scratch_database(app_config):
        upgrade(revision=BEFORE)
        with db.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO partner_clients (id, client_id, client_secret_hash, name, "
                "department, active, created_at) VALUES ('ptn_old', 'pc_oldclient0000000000', "
                "'$argon2id$x', '泉港区医保局', 'medical_insurance', true, now())"))

        upgrade(revision=REVISION)
        with db.engine.connect() as conn:
            version = conn.execute(sa.text(
                "SELECT secret_version FROM partner_clients")).scalar_one()
            task_columns = {c["name"] for c in sa.inspect(conn).get_columns("tasks")}
            task_fks = {fk["name"] for fk in sa.inspect(conn).get_foreign_keys("tasks")}
        assert version == 1
        assert {"started_at", "started_by"} <= task_columns
        assert "fk_tasks_started_by_users" in task_fks

        downgrade(revision=BEFORE)
        with db.engine.connect() as conn:
            task_columns = {c["name"] for c in sa.inspect(conn).get_columns("tasks")}
            client_columns = {c["name"] for c in
                              sa.inspect(conn).get_columns("partner_clients")}
            kept = conn.execute(sa.text("SELECT count(*) FROM partner_clients")).scalar_one()
        assert not {"started_at", "started_by"} & task_columns
        assert "secret_version" not in client_columns and kept == 1

"""open ledger: append-only entries and Merkle nodes (refused UPDATE/DELETE by trigger), checkpoints

On SQLite (development and tests without PostgreSQL) a DELETE is refused too, unless a row sits in
`ledger_maintenance` — the test harness's table wipe, in its own transaction, and nothing else.
PostgreSQL needs no such door: the harness uses TRUNCATE, which row triggers do not see.

Revision ID: 0005_ledger
Revises: 0004_notifications
Create Date: 2026-11-25 04:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005_ledger'
down_revision = '0004_notifications'
branch_labels = None
depends_on = None

PROTECTED = ('ledger_entries', 'ledger_nodes')


def upgrade():
    op.create_table('ledger_entries',
    sa.Column('index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('leaf', sa.LargeBinary(), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('source_type', sa.String(length=24), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('index', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('source_type', 'source_id', name=op.f('uq_ledger_entries_source_type_source_id'))
    )
    op.create_table('ledger_nodes',
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'index', name=op.f('pk_ledger_nodes'))
    )
    op.create_table('ledger_checkpoints',
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('size', name=op.f('pk_ledger_checkpoints'))
    )
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        op.execute("""
            CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'ledger table % is append-only: % refused', TG_TABLE_NAME, TG_OP;
            END $$""")
        for table in PROTECTED:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()")
    elif dialect == 'sqlite':
        op.execute("CREATE TABLE ledger_maintenance (active INTEGER NOT NULL)")
        for table in PROTECTED:
            op.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} BEGIN "
                       f"SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused'); END")
            op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                       f"WHEN (SELECT count(*) FROM ledger_maintenance) = 0 BEGIN "
                       f"SELECT RAISE(ABORT, '{table} is append-only: DELETE refused'); END")


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        for table in PROTECTED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ledger_refuse_change()")
    elif dialect == 'sqlite':
        for table in PROTECTED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        op.execute("DROP TABLE IF EXISTS ledger_maintenance")
    op.drop_table('ledger_checkpoints')
    op.drop_table('ledger_nodes')
    op.drop_table('ledger_entries')

"""transitions: one audit table for every lifecycle (wishes, claims, donations, disbursements)

The four `*_transitions` tables had the same columns and a foreign key each to the object they
audited. Their rows move into `transitions`, named by (entity_type, entity_id), one table at a
time in their id order, so each object's history keeps its order; then the old tables are
dropped. The downgrade makes the four tables again and moves each lifecycle's rows back (rows of
any other entity type, written by a later lifecycle, have no old table to go to and are lost).

Revision ID: 0009_transitions
Revises: 0008_idempotency_lease
Create Date: 2026-12-07 19:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_transitions'
down_revision = '0008_idempotency_lease'
branch_labels = None
depends_on = None

# entity type -> (old table, its id column, the table that id refers to)
OLD_TABLES = (
    ('wish', 'wish_transitions', 'wish_id', 'wishes'),
    ('claim', 'claim_transitions', 'claim_id', 'claims'),
    ('donation', 'donation_transitions', 'donation_id', 'donations'),
    ('disbursement', 'disbursement_transitions', 'disbursement_id', 'disbursements'),
)
COLUMNS = 'from_status, to_status, action, actor_id, reason, at'


def upgrade():
    op.create_table('transitions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('entity_type', sa.String(length=24), nullable=False),
    sa.Column('entity_id', sa.String(length=40), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('actor_id', sa.String(length=40), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_transitions_actor_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transitions'))
    )
    with op.batch_alter_table('transitions', schema=None) as batch_op:
        batch_op.create_index('ix_transitions_entity', ['entity_type', 'entity_id', 'id'], unique=False)

    for entity_type, table, id_column, _ in OLD_TABLES:
        op.execute(
            f"INSERT INTO transitions (entity_type, entity_id, {COLUMNS}) "
            f"SELECT '{entity_type}', {id_column}, {COLUMNS} FROM {table} ORDER BY id")
    for _, table, id_column, _ in reversed(OLD_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(op.f(f'ix_{table}_{id_column}'))
        op.drop_table(table)


def downgrade():
    for entity_type, table, id_column, target in OLD_TABLES:
        op.create_table(table,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(id_column, sa.String(length=40), nullable=False),
        sa.Column('from_status', sa.String(length=16), nullable=True),
        sa.Column('to_status', sa.String(length=16), nullable=False),
        sa.Column('action', sa.String(length=24), nullable=False),
        sa.Column('actor_id', sa.String(length=40), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f(f'fk_{table}_actor_id_users')),
        sa.ForeignKeyConstraint([id_column], [f'{target}.id'], name=op.f(f'fk_{table}_{id_column}_{target}')),
        sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}'))
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(op.f(f'ix_{table}_{id_column}'), [id_column], unique=False)
        op.execute(
            f"INSERT INTO {table} ({id_column}, {COLUMNS}) "
            f"SELECT entity_id, {COLUMNS} FROM transitions "
            f"WHERE entity_type = '{entity_type}' ORDER BY id")

    with op.batch_alter_table('transitions', schema=None) as batch_op:
        batch_op.drop_index('ix_transitions_entity')
    op.drop_table('transitions')

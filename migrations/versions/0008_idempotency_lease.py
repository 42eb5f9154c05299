"""idempotency keys: the lease of the request that holds an in-flight record

An in-flight record is held by one request (`owner`) until `lease_until`, which that request
renews while it runs; only a record whose lease lapsed (its process died) or that was released
may be taken over. A record in flight at upgrade time keeps the old rule: held until two minutes
after it was made.

Revision ID: 0008_idempotency_lease
Revises: 0007_claim_named
Create Date: 2026-12-09 10:00:00

"""
from datetime import timedelta

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_idempotency_lease'
down_revision = '0007_claim_named'
branch_labels = None
depends_on = None

OLD_STALE_IN_FLIGHT = timedelta(seconds=120)


def upgrade():
    with op.batch_alter_table('idempotency_keys') as batch_op:
        batch_op.add_column(sa.Column('owner', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
    keys = sa.table('idempotency_keys', sa.column('id', sa.Integer),
                    sa.column('state', sa.String), sa.column('owner', sa.String),
                    sa.column('created_at', sa.DateTime(timezone=True)),
                    sa.column('lease_until', sa.DateTime(timezone=True)))
    conn = op.get_bind()
    rows = conn.execute(sa.select(keys.c.id, keys.c.created_at)
                        .where(keys.c.state == 'in_flight')).all()
    for record_id, created_at in rows:  # a handful at most: requests running right now
        conn.execute(keys.update().where(keys.c.id == record_id).values(
            owner='before-0008', lease_until=created_at + OLD_STALE_IN_FLIGHT))


def downgrade():
    with op.batch_alter_table('idempotency_keys') as batch_op:
        batch_op.drop_column('lease_until')
        batch_op.drop_column('owner')

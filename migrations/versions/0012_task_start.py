"""task start and partner secret version: tasks.started_at/started_by, partner_clients.secret_version

A caseworker who has a task in hand (POST /tasks/{id}/start) is recorded with the time; a partner
client's secret version is in every token it gets, so rotating the secret ends those tokens.

Revision ID: 0012_task_start
Revises: 0011_partners
Create Date: 2026-12-09 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_task_start'
down_revision = '0011_partners'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tasks') as batch:
        batch.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('started_by', sa.String(length=40), nullable=True))
        batch.create_foreign_key(op.f('fk_tasks_started_by_users'), 'users',
                                 ['started_by'], ['id'])
    with op.batch_alter_table('partner_clients') as batch:
        batch.add_column(sa.Column('secret_version', sa.Integer(), nullable=False,
                                   server_default='1'))


def downgrade():
    with op.batch_alter_table('partner_clients') as batch:
        batch.drop_column('secret_version')
    with op.batch_alter_table('tasks') as batch:
        batch.drop_constraint(op.f('fk_tasks_started_by_users'), type_='foreignkey')
        batch.drop_column('started_by')
        batch.drop_column('started_at')

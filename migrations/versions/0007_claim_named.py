"""claims: the donor's choice to be named (masked) in the open ledger

A claim made before this revision was never asked, so it stays anonymous (爱心人士).

Revision ID: 0007_claim_named
Revises: 0006_fund
Create Date: 2026-12-07 12:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_claim_named'
down_revision = '0006_fund'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('claims') as batch_op:
        batch_op.add_column(sa.Column('anonymous', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))


def downgrade():
    with op.batch_alter_table('claims') as batch_op:
        batch_op.drop_column('anonymous')

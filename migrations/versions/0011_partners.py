"""partner_clients: partner systems (医保, 残联, ...) as OAuth 2.0 clients

Revision ID: 0011_partners
Revises: 0010_cases
Create Date: 2026-12-07 20:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_partners'
down_revision = '0010_cases'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('partner_clients',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('client_secret_hash', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.Column('region_code', sa.String(length=12), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_clients')),
    sa.UniqueConstraint('client_id', name=op.f('uq_partner_clients_client_id'))
    )


def downgrade():
    op.drop_table('partner_clients')

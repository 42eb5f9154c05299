"""subscribe-message credits (one per consent, per donor and template)

Revision ID: 0004_notifications
Revises: 0003_proofs
Create Date: 2026-11-25 12:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_notifications'
down_revision = '0003_proofs'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('subscription_credits',
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('template_id', sa.String(length=128), nullable=False),
    sa.Column('credits', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('credits >= 0', name=op.f('ck_subscription_credits_credits_not_negative')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_subscription_credits_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'template_id', name=op.f('pk_subscription_credits'))
    )


def downgrade():
    op.drop_table('subscription_credits')

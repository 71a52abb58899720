"""account lifecycle and policy applies

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=10), nullable=False, server_default='active'))
    op.create_table('policy_applies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('accounts', sa.Integer(), nullable=False),
    sa.Column('liquidations', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['policy_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('policy_applies', schema=None) as batch_op:
        batch_op.create_index('ix_policy_applies_version_id', ['version_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('policy_applies', schema=None) as batch_op:
        batch_op.drop_index('ix_policy_applies_version_id')
    op.drop_table('policy_applies')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('status')

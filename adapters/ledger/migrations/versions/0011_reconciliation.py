"""reconciliation: operators' acceptances of breaks between the ledger and the broker

Revision ID: 0011
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

from adapters.ledger.types import Exact


revision = '0011'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reconciliation_accepts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('broker', sa.String(length=100), nullable=False),
    sa.Column('symbol', sa.String(length=20), nullable=False),
    sa.Column('difference', Exact(9), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('accepted_by', sa.String(length=100), nullable=False),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reconciliation_accepts', schema=None) as batch_op:
        batch_op.create_index('ix_reconciliation_accepts_broker', ['broker', 'symbol'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('reconciliation_accepts', schema=None) as batch_op:
        batch_op.drop_index('ix_reconciliation_accepts_broker')
    op.drop_table('reconciliation_accepts')

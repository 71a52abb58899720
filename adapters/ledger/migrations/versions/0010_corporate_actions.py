"""corporate actions applied, once each per broker account

One row per action a broker account's ledger applied (keyed by the source's id): what it
was, when it took effect, the window that applied it, and what it moved (a summary for the
report). Renames recorded here are the aliases a policy's old symbol keeps working
through; cash-merged and removed symbols recorded here are never bought again.

Revision ID: 0010
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('corporate_actions',
    sa.Column('broker', sa.String(length=100), nullable=False),
    sa.Column('action_id', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('symbol', sa.String(length=20), nullable=False),
    sa.Column('new_symbol', sa.String(length=20), nullable=True),
    sa.Column('effective', sa.Date(), nullable=False),
    sa.Column('old_rate', sa.String(length=50), nullable=False),
    sa.Column('new_rate', sa.String(length=50), nullable=False),
    sa.Column('cash_rate', sa.String(length=50), nullable=False),
    sa.Column('source_keeps', sa.Boolean(), nullable=False),
    sa.Column('window_id', sa.Integer(), nullable=True),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['window_id'], ['windows.id'], ),
    sa.PrimaryKeyConstraint('broker', 'action_id')
    )
    op.create_index('ix_corporate_actions_window', 'corporate_actions', ['window_id'])


def downgrade() -> None:
    op.drop_index('ix_corporate_actions_window', table_name='corporate_actions')
    op.drop_table('corporate_actions')

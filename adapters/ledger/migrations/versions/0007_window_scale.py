"""a window at scale: holdings by symbol, intents by window and symbol, events and
allocations by window and account, each account's end
of a window in its row, each event's cause beside its reason

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

from adapters.ledger.types import Money


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_holdings_symbol', 'holdings', ['symbol'])
    op.drop_index('ix_intents_window_id', 'intents')
    op.create_index('ix_intents_window_symbol', 'intents', ['window_id', 'symbol'])
    op.drop_index('ix_allocations_window_id', 'allocations')
    op.create_index('ix_allocations_window_account', 'allocations', ['window_id', 'account_id'])
    op.drop_index('ix_events_window_id', 'events')
    op.create_index('ix_events_window_account', 'events', ['window_id', 'account_id'])
    with op.batch_alter_table('window_accounts') as t:
        t.add_column(sa.Column('cash_after', Money, nullable=True))
        t.add_column(sa.Column('advance', Money, nullable=True))
    with op.batch_alter_table('events') as t:
        t.add_column(sa.Column('cause', sa.String(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('events') as t:
        t.drop_column('cause')
    with op.batch_alter_table('window_accounts') as t:
        t.drop_column('advance')
        t.drop_column('cash_after')
    op.drop_index('ix_events_window_account', 'events')
    op.create_index('ix_events_window_id', 'events', ['window_id'])
    op.drop_index('ix_allocations_window_account', 'allocations')
    op.create_index('ix_allocations_window_id', 'allocations', ['window_id'])
    op.drop_index('ix_intents_window_symbol', 'intents')
    op.create_index('ix_intents_window_id', 'intents', ['window_id'])
    op.drop_index('ix_holdings_symbol', 'holdings')

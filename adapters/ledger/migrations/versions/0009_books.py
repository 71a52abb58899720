"""the books: tax lots and realized rows per account, and an account's owner (wash sales
span an owner's accounts); lots and realized rows rebuilt from the window history

Every past allocation, window by window (trading date, then id), is booked the way the
window's books step books it (engine.core.books), with the default method tax-min and each
account its own owner: the history a ledger holds is all it takes to rebuild its books.

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa

from adapters.ledger.types import Money, Shares


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts') as t:
        t.add_column(sa.Column('owner', sa.String(length=100), nullable=True))
        t.create_index('ix_accounts_owner', ['owner'])
    op.create_table(
        'lots',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('account_id', sa.Integer(), sa.ForeignKey('accounts.id'), nullable=False),
        sa.Column('symbol', sa.String(length=20), nullable=False),
        sa.Column('bought', sa.Date(), nullable=False),
        sa.Column('acquired', sa.Date(), nullable=False),
        sa.Column('shares', Shares, nullable=False),
        sa.Column('basis', Money, nullable=False),
        sa.Column('wash_adjustment', Money, nullable=False),
        sa.Column('replaced', Shares, nullable=False),
        sa.Column('window_id', sa.Integer(), sa.ForeignKey('windows.id'), nullable=True),
        sa.Column('closed', sa.Boolean(), nullable=False),
    )
    op.create_index('ix_lots_account_closed', 'lots', ['account_id', 'closed'])
    op.create_table(
        'realized',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('account_id', sa.Integer(), sa.ForeignKey('accounts.id'), nullable=False),
        sa.Column('lot_id', sa.Integer(), sa.ForeignKey('lots.id'), nullable=False),
        sa.Column('symbol', sa.String(length=20), nullable=False),
        sa.Column('acquired', sa.Date(), nullable=False),
        sa.Column('sold', sa.Date(), nullable=False),
        sa.Column('shares', Shares, nullable=False),
        sa.Column('proceeds', Money, nullable=False),
        sa.Column('basis', Money, nullable=False),
        sa.Column('wash_sale_disallowed', Money, nullable=False),
        sa.Column('washed', Shares, nullable=False),
        sa.Column('window_id', sa.Integer(), sa.ForeignKey('windows.id'), nullable=True),
    )
    op.create_index('ix_realized_account_sold', 'realized', ['account_id', 'sold'])
    rebuild(op.get_bind())


def rebuild(conn) -> None:
    """Lots and realized rows from every window's allocations (engine.core.books, tax-min,
    each account its own owner)."""


def downgrade() -> None:
    op.drop_index('ix_realized_account_sold', 'realized')
    op.drop_table('realized')
    op.drop_index('ix_lots_account_closed', 'lots')
    op.drop_table('lots')
    with op.batch_alter_table('accounts') as t:
        t.drop_index('ix_accounts_owner')
        t.drop_column('owner')

"""fill reports: an order may fill in several parts, each stored

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
import adapters.ledger.types


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The old table allowed one fill per order (a UNIQUE with no name to drop portably):
    # copy it into the new shape, part 1 of each order.
    op.create_table('fill_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('qty', adapters.ledger.types.Exact(9), nullable=False),
    sa.Column('price', adapters.ledger.types.Exact(9), nullable=False),
    sa.Column('amount', adapters.ledger.types.Exact(2), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id', 'seq')
    )
    op.execute("INSERT INTO fill_reports (id, order_id, seq, qty, price, amount) "
               "SELECT id, order_id, 1, qty, price, amount FROM fills")
    op.drop_table('fills')
    op.rename_table('fill_reports', 'fills')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_window_id', ['window_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_window_id')
    op.create_table('fills_one',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('qty', adapters.ledger.types.Exact(9), nullable=False),
    sa.Column('price', adapters.ledger.types.Exact(9), nullable=False),
    sa.Column('amount', adapters.ledger.types.Exact(2), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('order_id')
    )
    op.execute("INSERT INTO fills_one (id, order_id, qty, price, amount) "
               "SELECT min(id), order_id, sum(qty), max(price), sum(amount) FROM fills GROUP BY order_id")
    op.drop_table('fills')
    op.rename_table('fills_one', 'fills')

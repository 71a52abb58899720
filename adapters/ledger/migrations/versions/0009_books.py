"""the books: tax lots and realized rows per account, and an account's owner (wash sales
span an owner's accounts); lots and realized rows rebuilt from the window history

Every past allocation, window by window (trading date, then id), is booked the way the
window's books step books it (engine.core.books), with the default method tax-min and each
account its own owner: the history a ledger holds is all it takes to rebuild its books.

Revision ID: 0009
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa

from adapters.ledger.types import Money, Shares


revision = '0009'
down_revision = '0011'
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


_windows = sa.table('windows', sa.column('id', sa.Integer), sa.column('trading_date', sa.Date))
_accounts = sa.table('accounts', sa.column('id', sa.Integer), sa.column('is_house', sa.Boolean))
_allocations = sa.table('allocations', sa.column('window_id', sa.Integer), sa.column('account_id', sa.Integer),
                        sa.column('symbol', sa.String), sa.column('shares', Shares), sa.column('amount', Money))
_lots = sa.table('lots', *(sa.column(c, t) for c, t in (
    ('id', sa.Integer), ('account_id', sa.Integer), ('symbol', sa.String), ('bought', sa.Date),
    ('acquired', sa.Date), ('shares', Shares), ('basis', Money), ('wash_adjustment', Money), ('replaced', Shares),
    ('window_id', sa.Integer), ('closed', sa.Boolean))))
_realized = sa.table('realized', *(sa.column(c, t) for c, t in (
    ('id', sa.Integer), ('account_id', sa.Integer), ('lot_id', sa.Integer), ('symbol', sa.String),
    ('acquired', sa.Date), ('sold', sa.Date), ('shares', Shares), ('proceeds', Money), ('basis', Money),
    ('wash_sale_disallowed', Money), ('washed', Shares), ('window_id', sa.Integer))))


def rebuild(conn) -> None:
    """Lots and realized rows from every window's allocations (engine.core.books, tax-min,
    each account its own owner), window by window in trading-date order, kept in memory
    and written at the end with ids in the order the window would have given them."""
    from dataclasses import replace
    from datetime import timedelta

    from engine.core.books import WASH_DAYS, book, net_trades
    from engine.core.money import cents, dollars

    house = {i for (i,) in conn.execute(sa.select(_accounts.c.id).where(_accounts.c.is_house == sa.true()))}
    lots: dict[int, dict[int, object]] = {}             # account -> lot id -> Lot
    realized: dict[int, list] = {}                       # account -> its rows
    rows_out: list = []                                  # (Realized, window)
    lot_window: dict[int, int] = {}
    next_lot = next_row = 1
    for wid, day in conn.execute(sa.select(_windows.c.id, _windows.c.trading_date)
                                 .order_by(_windows.c.trading_date, _windows.c.id)).all():
        moves = [(aid, sym, sh, cents(amount)) for aid, sym, sh, amount in conn.execute(
            sa.select(_allocations.c.account_id, _allocations.c.symbol, _allocations.c.shares, _allocations.c.amount)
            .where(_allocations.c.window_id == wid)) if aid not in house]
        trades = net_trades(moves)
        if not trades:
            continue
        accounts = sorted({t.account_id for t in trades})
        since = day - timedelta(days=WASH_DAYS)
        b = book(day, trades, [x for a in accounts for x in lots.get(a, {}).values() if x.shares > 0],
                 [r for a in accounts for r in realized.get(a, ()) if r.sold >= since], {}, {})
        for x in b.changed_lots:
            lots[x.account_id][x.id] = x
        for x in b.new_lots:
            lots.setdefault(x.account_id, {})[next_lot] = replace(x, id=next_lot)
            lot_window[next_lot] = wid
            next_lot += 1
        changed = {r.id: r for r in b.changed_realized}
        for a in {r.account_id for r in b.changed_realized}:
            realized[a] = [changed.get(r.id, r) for r in realized[a]]
        for r in b.new_realized:
            r = replace(r, id=next_row)
            realized.setdefault(r.account_id, []).append(r)
            rows_out.append((r.id, wid))
            next_row += 1
    all_lots = sorted((x for by in lots.values() for x in by.values()), key=lambda x: x.id)
    if all_lots:
        conn.execute(_lots.insert(), [
            {"id": x.id, "account_id": x.account_id, "symbol": x.symbol, "bought": x.bought, "acquired": x.acquired,
             "shares": x.shares, "basis": dollars(x.basis), "wash_adjustment": dollars(x.wash_adjustment),
             "replaced": x.replaced, "window_id": lot_window[x.id], "closed": x.shares == 0} for x in all_lots])
    by_id = {r.id: r for rows in realized.values() for r in rows}
    if rows_out:
        conn.execute(_realized.insert(), [
            {"id": r.id, "account_id": r.account_id, "lot_id": r.lot_id, "symbol": r.symbol, "acquired": r.acquired,
             "sold": r.sold, "shares": r.shares, "proceeds": dollars(r.proceeds), "basis": dollars(r.basis),
             "wash_sale_disallowed": dollars(r.wash_sale_disallowed), "washed": r.washed, "window_id": wid}
            for r, wid in ((by_id[i], wid) for i, wid in rows_out)])
    if conn.dialect.name == "postgresql":       # ids were given: the sequences go on after them
        for table in ("lots", "realized"):
            conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"))


def downgrade() -> None:
    op.drop_index('ix_realized_account_sold', 'realized')
    op.drop_table('realized')
    op.drop_index('ix_lots_account_closed', 'lots')
    op.drop_table('lots')
    op.drop_index('ix_accounts_owner', 'accounts')
    # Not a batch (which rebuilds the table on SQLite, refused while lots of rows point at
    # accounts with foreign keys on): both databases drop a column in place.
    op.execute("ALTER TABLE accounts DROP COLUMN owner")

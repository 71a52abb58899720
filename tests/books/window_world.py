"""A small world of accounts that trade through real windows (simulated broker, the
ledger on SQLite or PostgreSQL), one day after another, with prices moving both ways;
and the books' checks that hold after every window."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from adapters.ledger.schema import Account, Allocation, Holding, LotRow, RealizedRow, Window
from adapters.ledger.store import Ledger
from config.settings import load
from engine.core.lots import is_long_term
from engine.shell import policies
from engine.shell.window import WindowOptions, WindowRunner
from engine.shell.wiring import ensure_house, open_broker

POLICY = 'pie "Growth" { VTI 40% VXUS 20% pie "Bonds" 40% { BND 70% TIP 30% } }\npie "Tech" equal { AAPL MSFT NVDA VTI }\n'
LESS = 'pie "Growth" { VTI 60% pie "Bonds" 40% { BND 70% TIP 30% } }\npie "Tech" equal { AAPL MSFT VTI }\n'
PRICES = {"VTI": "250.00", "VXUS": "60.25", "BND": "72.50", "TIP": "110.10", "AAPL": "172.78", "MSFT": "415.00",
          "NVDA": "131.31"}


class World:
    def __init__(self, root: Path, db_url: str, accounts: int = 6):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.policy = root / "policy.pie"
        self.policy.write_text(POLICY)
        self.prices = {s: Decimal(p) for s, p in PRICES.items()}
        self._write_prices()
        (root / "settings.toml").write_text(
            f'[broker.simulated]\nprices_file = "{root / "prices.csv"}"\nstarting_cash = "5000000.00"\n'
            f'[policies]\nfiles = ["{self.policy}"]\n')
        self.env = {"PIES_CONFIG": str(root / "settings.toml"), "PIES_DATABASE_URL": db_url,
                    "PIES_DATA_DIR": str(root / "data")}
        self.url = db_url
        self.led = Ledger(db_url)
        ensure_house(self.led, self.broker(), "main")
        self.names = [f"a{i}" for i in range(accounts)]
        for i, name in enumerate(self.names):
            policies.add_account(self.led, name, "Growth" if i % 2 else "Tech", self.policy)
        self.day = date(2025, 1, 6)
        self.n = 0

    def _write_prices(self) -> None:
        (self.root / "prices.csv").write_text("".join(f"{s},{p}\n" for s, p in sorted(self.prices.items())))

    def broker(self):
        return open_broker(load(env=self.env))

    def move_prices(self, moves: dict[str, int]) -> None:
        """Each symbol's price moved by a percentage (either way)."""
        for s, pct in moves.items():
            self.prices[s] = max(Decimal("1.00"), (self.prices[s] * (100 + pct) / 100).quantize(Decimal("0.01")))
        self._write_prices()

    def key(self) -> str:
        self.n += 1
        return f"k{self.n}"

    def deposit(self, name: str, amount: str) -> None:
        self.led.deposit(name, amount, key=self.key())

    def withdraw(self, name: str, amount: str) -> None:
        try:
            self.led.withdraw(name, amount, self.prices, key=self.key())
        except Exception:       # more than the account has: refused, nothing recorded
            pass

    def rebalance(self, name: str) -> None:
        self.led.rebalance(name, "", key=self.key())

    def change_policy(self, text: str) -> None:
        self.policy.write_text(text)
        policies.apply(self.led, self.policy, text)

    def window(self, gap: int = 1) -> dict:
        self.day += timedelta(days=gap)
        while self.day.weekday() >= 5:
            self.day += timedelta(days=1)
        return WindowRunner(self.led, self.broker(), "main", WindowOptions(settle_timeout=1)).run(self.day)

    def close(self) -> None:
        self.led.dispose()


def book_problems(led: Ledger, bought: dict | None = None) -> list[str]:
    """What the books' invariants find wrong, house aside: per account and symbol the open
    lots' shares equal the holdings; basis of open lots + basis consumed = basis of buys +
    wash adjustments (the buys: every window's net buy per account and symbol); every
    realized row's gain and term; and every reference the books' tables make, which no
    foreign key checks (migration 0013): a lot's account and window, a realized row's
    account, window and lot (of the same account and symbol)."""
    out: list[str] = []
    with led.read() as s:
        house = set(s.scalars(select(Account.id).where(Account.is_house.is_(True))))
        held: dict = {}
        for h in s.scalars(select(Holding)):
            if h.account_id not in house:
                held[(h.account_id, h.symbol)] = held.get((h.account_id, h.symbol), 0) + h.shares
        lots = list(s.scalars(select(LotRow)))
        open_: dict = {}
        for x in lots:
            if not x.closed:
                open_[(x.account_id, x.symbol)] = open_.get((x.account_id, x.symbol), 0) + x.shares
        out += [f"{k}: lots {open_.get(k, 0)} holdings {held.get(k, 0)}" for k in sorted(set(held) | set(open_))
                if open_.get(k, 0) != held.get(k, 0)]
        net: dict = {}
        for aid, wid, sym, sh, amount in s.execute(select(Allocation.account_id, Allocation.window_id,
                                                          Allocation.symbol, Allocation.shares, Allocation.amount)):
            if aid not in house:
                sh0, c0 = net.get((aid, wid, sym), (0, 0))
                net[(aid, wid, sym)] = (sh0 + sh, c0 + amount)
        buys = sum((max(c, 0) for sh, c in net.values() if sh > 0), Decimal(0))
        rows = list(s.scalars(select(RealizedRow)))
        left = sum((x.basis for x in lots if not x.closed), Decimal(0)) + sum((r.basis for r in rows), Decimal(0))
        right = buys + sum((r.wash_sale_disallowed for r in rows), Decimal(0))
        if left != right:
            out.append(f"basis: open + consumed {left} != buys + wash adjustments {right}")
        accounts = set(s.scalars(select(Account.id)))
        windows = set(s.scalars(select(Window.id)))
        by_id = {x.id: x for x in lots}
        out += [f"lot {x.id}: no account {x.account_id}" for x in lots if x.account_id not in accounts]
        out += [f"lot {x.id}: no window {x.window_id}" for x in lots
                if x.window_id is not None and x.window_id not in windows]
        out += [f"realized {r.id}: no lot {r.lot_id} of account {r.account_id} in {r.symbol}" for r in rows
                if r.lot_id not in by_id or (by_id[r.lot_id].account_id, by_id[r.lot_id].symbol) != (r.account_id, r.symbol)]
        out += [f"realized {r.id}: no window {r.window_id}" for r in rows
                if r.window_id is not None and r.window_id not in windows]
        closed_with_shares = [x.id for x in lots if x.closed and x.shares]
        if closed_with_shares:
            out.append(f"closed lots with shares: {closed_with_shares}")
        for r in rows:
            term = "long" if is_long_term(r.acquired, r.sold) else "short"
            if not (0 <= r.wash_sale_disallowed <= max(Decimal(0), r.basis - r.proceeds)):
                out.append(f"realized {r.id}: disallowed {r.wash_sale_disallowed} outside 0..loss")
            if r.acquired > r.sold:
                out.append(f"realized {r.id}: acquired after sold ({term})")
    return out

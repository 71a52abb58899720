"""Builds the outside world from settings: the ledger and the broker adapter."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from typing import TYPE_CHECKING

from adapters.ledger.store import Ledger
from config.settings import Settings
from engine.shell import clock

if TYPE_CHECKING:                      # an annotation only: a command that opens no broker never imports it
    from adapters.broker.port import Broker


def open_ledger(settings: Settings, *, upgrade: bool = True, create: bool = True) -> Ledger:
    return Ledger(settings.database_url, upgrade=upgrade, create=create)


def upgrade_ledger(settings: Settings) -> tuple[str | None, str]:
    """Bring the ledger's schema to the newest version: (before, after)."""
    from adapters.ledger import migrate
    led = open_ledger(settings, upgrade=False)
    try:
        return migrate.upgrade(led.engine)
    finally:
        led.dispose()


def open_broker(settings: Settings, name: str | None = None) -> Broker:
    """The adapter of a broker account (the first in the settings unless named). Each
    adapter is imported only here, when used: alpaca-py costs a second to import."""
    b = settings.broker_named(name) if name else settings.broker
    if b.kind == "alpaca":
        from adapters.broker.alpaca import AlpacaBroker, AlpacaConfig
        from engine.shell import logs
        logs.ensure_configured()               # the adapter logs; never to stdout, where --json goes
        a = b.alpaca
        return AlpacaBroker(AlpacaConfig(key_env=a["key_env"], secret_env=a["secret_env"], paper=bool(a["paper"]),
                                         allow_live=bool(a["allow_live"]), feed=a["feed"],
                                         timeout=float(a["timeout"]), url_override=a["trading_url"] or None,
                                         data_url_override=a["data_url"] or None,
                                         requests_per_minute=int(a["requests_per_minute"]),
                                         applies_corporate_actions=b.applies_corporate_actions))
    from adapters.broker.simulated import SimulatedBroker, SimulatedConfig
    sim = b.simulated
    default_state = "simulated-broker.json" if b is settings.brokers[0] else f"simulated-broker-{b.name}.json"
    state = Path(sim.get("state_file") or settings.data_dir / default_state).expanduser()
    prices = sim.get("prices_file")
    return SimulatedBroker(SimulatedConfig(
        state_file=state,
        prices_file=Path(prices).expanduser() if prices else None,
        seed=int(sim.get("seed", 1)),
        starting_cash=Decimal(str(sim.get("starting_cash", "100000.00"))),
        slippage_bp=int(sim.get("slippage_bp", 0)),
        holidays=frozenset(sim.get("holidays", ())),
        calendar=str(sim.get("calendar", "XNYS")),
        dividends={s: Decimal(str(v)) for s, v in dict(sim.get("dividends", {})).items()},
        fill_delay=float(sim.get("fill_delay", 0.0)),
        journal_file=Path(sim["journal_file"]).expanduser() if sim.get("journal_file") else None,
        corporate_actions_file=Path(sim["corporate_actions_file"]).expanduser()
        if sim.get("corporate_actions_file") else None,
        applies_corporate_actions=b.applies_corporate_actions,
    ), now=broker_clock())


def broker_clock():
    """The simulated broker's clock: PIES_NOW when it is pinned, running on from there (an
    order's fill delay still passes), so that a rehearsal of March applies March's
    corporate actions and prices on their days; the real clock otherwise."""
    import os
    import time
    if not os.environ.get("PIES_NOW"):
        return None
    start, t0 = clock.now(), time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - t0)


def ensure_house(ledger: Ledger, broker: Broker, name: str) -> None:
    """The first time a broker account is used, its house account takes everything the
    broker holds: cash and positions no account owns yet."""
    if ledger.house(name) is None:
        bal = broker.balance()
        ledger.ensure_house(name, bal.cash, {s: p.qty for s, p in broker.positions().items()})


def window_options(settings: Settings, broker: str | None = None, **overrides):
    """The window runner's options for a broker account (the first unless named)."""
    from engine.core.reconcile import Tolerance
    from engine.shell.window import Recurring, WindowOptions
    b = settings.broker_named(broker) if broker else settings.broker
    return WindowOptions(**{"min_order_cents": b.min_order_cents, "poll_interval": b.poll_seconds,
                            "recurring": tuple(Recurring(**r) for r in settings.recurring),
                            "workers": settings.workers, "shard_size": settings.shard_size,
                            "cluster": settings.cluster,
                            "tolerance": Tolerance(settings.reconcile_shares, settings.reconcile_cents), **overrides})

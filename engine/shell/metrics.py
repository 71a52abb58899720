"""/metrics in the Prometheus text format, read from the ledger at each scrape: the last
window's duration per step, orders and problems per broker account, the time of the last
window that closed without problems, and the pending events."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from adapters.ledger import window_reports
from adapters.ledger.store import Ledger


def render(ledger: Ledger) -> str:
    reg = CollectorRegistry()
    step = Gauge("pies_window_step_seconds", "Seconds each step of the broker account's last window took",
                 ["broker", "step"], registry=reg)
    orders = Gauge("pies_window_orders", "Orders of the broker account's last closed window", ["broker"],
                   registry=reg)
    problems = Gauge("pies_window_problems", "Problems the broker account's last closed window reported",
                     ["broker"], registry=reg)
    good = Gauge("pies_last_successful_window_timestamp_seconds",
                 "When the broker account's last window without problems closed (Unix time)", ["broker"],
                 registry=reg)
    pending = Gauge("pies_pending_events", "Events waiting for the next window", registry=reg)
    seen: set[str] = set()
    for w in window_reports.windows(ledger, 1000):
        b = w["broker"]
        if w["step"] != "closed":
            continue
        if b not in seen:
            seen.add(b)
            orders.labels(b).set(w["orders"])
            problems.labels(b).set(w["problems"])
            for name, seconds in window_reports.step_timings(ledger, w["id"]).items():
                step.labels(b, name).set(seconds)
    for b, closed_at in window_reports.last_good_windows(ledger).items():
        good.labels(b).set(closed_at.timestamp())
    pending.set(sum(ledger.pending_counts().values()))
    return generate_latest(reg).decode()

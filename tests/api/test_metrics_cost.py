"""/metrics at a million accounts costs what it costs at one."""

from __future__ import annotations

from api_helpers import auth


def test_metrics_never_read_accounts_lines(world, monkeypatch):
    """/metrics costs the same at any number of accounts: it reads each window's stored
    summary and step timings, never the per-account report lines."""
    from adapters.ledger import window_reports

    def refuse(*args, **kwargs):
        raise AssertionError("/metrics read every account's report line")
    monkeypatch.setattr(window_reports, "report_accounts", refuse)
    text = world["client"].get("/metrics", headers=auth(world["tokens"]["viewer"])).text
    assert 'pies_window_step_seconds{broker="main",step="planned"}' in text
    assert 'pies_window_orders{broker="main"} 3.0' in text

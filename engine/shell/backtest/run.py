"""The backtest's shell: the CSV files (or the sample history a package ships) read into
the core's frozen types, one backtest per (file, pie, rules) of a grid, here or in a process
pool, and each one's report (the JSON contract), a table side by side and a chart (value
and drawdown, matplotlib: the `backtest` extra). Every user mistake is one line naming the
file, line and value at fault (docs/backtest.md)."""

from __future__ import annotations

import csv
import gzip
import io
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import rules
from engine.core import metrics as mx
from engine.core.backtest import (PERIODS, BacktestError, CorporateAction, PriceDay, Recurring, Result, Spec,
                                  pie_symbols, run)
from engine.core.money import MoneyError, fmt, parse_dollars

from .sample import SAMPLE

MAX_FILE_BYTES = 64 * 1024 * 1024      # a price file past this is not a daily history
MAX_COLUMNS = 2_000
MAX_RUNS = 10_000
# The sample's splits, read off its own unadjusted closes (the close halves while the
# source's adjusted close does not). The sample records no dividends.
SAMPLE_ACTIONS = ("date,symbol,kind,value\n"
                  "2000-06-21,AAPL,split,2\n"
                  "2003-02-18,MSFT,split,2\n"
                  "2005-02-28,AAPL,split,2\n")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class InputError(ValueError):
    """A backtest input at fault: the message is the one line the user sees."""


# --- inputs -----------------------------------------------------------------------------------

def _read_text(path: str, what: str) -> str:
    try:
        p = Path(path)
        if p.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: the {what} file is {p.stat().st_size:,} bytes; the limit is {MAX_FILE_BYTES:,}")
        return p.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"{path}: cannot read the {what} file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: the {what} file is not UTF-8 text") from None


def _date(text: str, where: str) -> date:
    t = text.strip()
    if not _DATE.fullmatch(t):
        raise InputError(f"{where}: date {text!r} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(t)
    except ValueError:
        raise InputError(f"{where}: date {text!r} is not a real day") from None


def _number(text: str, where: str, what: str) -> Decimal:
    t = text.strip()
    if not _NUMBER.fullmatch(t):
        raise InputError(f"{where}: {what} {text!r} is not a number")
    d = Decimal(t)
    if d < 0:
        raise InputError(f"{where}: {what} {text!r} is negative")
    if d == 0:
        raise InputError(f"{where}: {what} {text!r} is zero")
    return d


def parse_prices(text: str, name: str) -> tuple[list[PriceDay], list[str]]:
    """A `date` column and one column per symbol of raw closes; an empty cell is no close."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header:
        raise InputError(f"{name}:1: the prices file is empty (want a header: date,SYMBOL,...)")
    cols = [h.strip() for h in header]
    if "date" not in cols:
        raise InputError(f"{name}:1: no 'date' column in the header {','.join(cols)!r}")
    if len(cols) > MAX_COLUMNS:
        raise InputError(f"{name}:1: {len(cols)} columns; the limit is {MAX_COLUMNS}")
    for c in cols:
        if not c or cols.count(c) > 1:
            raise InputError(f"{name}:1: column {c!r} is {'empty' if not c else 'there twice'}")
    di = cols.index("date")
    symbols = [c for c in cols if c != "date"]
    days: list[PriceDay] = []
    prev: date | None = None
    for n, row in enumerate(rows, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{name}:{n}"
        if len(row) != len(cols):
            raise InputError(f"{where}: {len(row)} cells, the header has {len(cols)}")
        d = _date(row[di], where)
        if prev is not None and d <= prev:
            raise InputError(f"{where}: date {d} is out of order (after {prev}); rows must be in increasing date order")
        prev = d
        closes = {}
        for c, cell in zip(cols, row):
            if c != "date" and cell.strip():
                closes[c] = _number(cell, where, f"{c} price")
        days.append(PriceDay(d, closes))
    return days, symbols


def parse_actions(text: str, name: str) -> list[CorporateAction]:
    """date,symbol,kind,value: a dividend (cash per share) or a split (new shares per old)."""
    rows = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in (next(rows, None) or [])]
    if header != ["date", "symbol", "kind", "value"]:
        raise InputError(f"{name}:1: the header must be date,symbol,kind,value, not {','.join(header)!r}")
    out: list[CorporateAction] = []
    for n, row in enumerate(rows, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{name}:{n}"
        if len(row) != 4:
            raise InputError(f"{where}: {len(row)} cells, want date,symbol,kind,value")
        d = _date(row[0], where)
        symbol, kind = row[1].strip(), row[2].strip().lower()
        if not symbol:
            raise InputError(f"{where}: no symbol")
        if kind not in ("dividend", "split"):
            raise InputError(f"{where}: unknown action kind {row[2].strip()!r} (use dividend or split)")
        out.append(CorporateAction(d, symbol, kind, _number(row[3], where, kind)))
    return out


def sample_prices() -> tuple[list[PriceDay], list[str]]:
    """Daily unadjusted closes of AAPL, FB, GOOG, IBM and MSFT, 2000-03-01 to 2013-03-01:
    the Quandl WIKI extract shipped by the bokeh_sampledata package (public domain)."""
    try:
        from bokeh_sampledata import package_path
    except ImportError:
        raise InputError(f"--prices {SAMPLE} needs the bokeh_sampledata package: pip install 'pies[backtest]'") from None
    by_day: dict[date, dict[str, Decimal]] = {}
    with gzip.open(package_path("stocks.csv.gz"), "rt", encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        ti, di, ci = header.index("Ticker"), header.index("Date"), header.index("Close")
        for row in rows:
            by_day.setdefault(date.fromisoformat(row[di]), {})[row[ti]] = Decimal(row[ci])
    symbols = sorted({s for closes in by_day.values() for s in closes})
    return [PriceDay(d, by_day[d]) for d in sorted(by_day)], symbols


def load_prices(source: str) -> tuple[list[PriceDay], list[str]]:
    return sample_prices() if source == SAMPLE else parse_prices(_read_text(source, "prices"), source)


def load_actions(source: str | None) -> list[CorporateAction]:
    if not source:
        return []
    if source == SAMPLE:
        return parse_actions(SAMPLE_ACTIONS, SAMPLE)
    return parse_actions(_read_text(source, "actions"), source)


def parse_flow(text: str | None, option: str) -> Recurring | None:
    """PERIOD:AMOUNT, e.g. monthly:500."""
    if text is None:
        return None
    period, sep, amount = text.partition(":")
    if not sep or period.strip().lower() not in PERIODS:
        raise InputError(f"{option} {text!r}: write PERIOD:AMOUNT with PERIOD one of {', '.join(PERIODS)}")
    try:
        return Recurring(period.strip().lower(), parse_dollars(amount.strip(), what=option))
    except MoneyError as e:
        raise InputError(str(e)) from None


def parse_span(start: str, end: str) -> tuple[date, date]:
    d0, d1 = parse_day(start, "--from"), parse_day(end, "--to")
    if d0 > d1:
        raise InputError(f"--from {start} is after --to {end}")
    return d0, d1


def parse_day(text: str, option: str) -> date:
    if not _DATE.fullmatch(text.strip()):
        raise InputError(f"{option} {text!r} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{option} {text!r} is not a real day") from None


# --- one backtest --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    """One backtest of the grid: a compiled policy's pie and rule set over shared prices."""

    label: str
    file: str
    pie: str
    rules: str
    start: date
    end: date
    start_cents: int
    deposit: Recurring | None
    withdraw: Recurring | None
    min_order: int


def check_columns(policy: rules.Policy, pie: str, symbols: Sequence[str], prices_name: str) -> None:
    missing = [s for s in pie_symbols(policy.pies[pie]) if s not in symbols]
    if missing:
        raise InputError(f"{prices_name}:1: no price column for {', '.join(missing)}, "
                         f"{'a symbol' if len(missing) == 1 else 'symbols'} of pie {pie!r} in {policy.file}")


def run_job(job: Job, policy: rules.Policy, days: Sequence[PriceDay], actions: Sequence[CorporateAction],
            on_day: Callable[[Any], None] | None = None) -> dict:
    ruleset = rules.find_rules(job.rules, policy)
    spec = Spec(policy.pies[job.pie], ruleset, job.start, job.end, job.start_cents, job.deposit, job.withdraw,
                job.min_order)
    try:
        result = run(spec, days, actions, on_day)
    except BacktestError as e:
        raise InputError(f"{job.label}: {e}") from None
    return report(job, result)


def report(job: Job, r: Result) -> dict:
    """The JSON contract of one backtest (money as strings, ratios as numbers)."""
    c = r.curve
    m = mx.compute(r.spec.start_cents, [p.day for p in c], [p.value for p in c], [p.flow for p in c],
                   [p.cash for p in c], r.bought, r.sold)
    return {
        "pie": job.pie, "rules": job.rules, "from": c[0].day.isoformat(), "to": c[-1].day.isoformat(),
        "start": fmt(r.spec.start_cents), "final_value": fmt(r.final_value), "deposits": fmt(r.deposits),
        "withdrawals": fmt(r.withdrawals), "dividends": fmt(r.dividends),
        "metrics": {**m.as_dict(), "orders": r.orders, "skipped_orders": r.skipped_orders},
        "curve": [{"date": p.day.isoformat(), "value": fmt(p.value), "cash": fmt(p.cash), "flow": fmt(p.flow)}
                  for p in c],
    }


# Worker processes load the prices and policies once and keep them for every job they run.
_WORKER: dict[str, Any] = {}


def _init_worker(prices: str, actions: str | None) -> None:
    _WORKER["days"], _ = load_prices(prices)
    _WORKER["actions"] = load_actions(actions)
    _WORKER["policies"] = {}


def _policy(file: str) -> rules.Policy:
    cache = _WORKER.setdefault("policies", {})
    if file not in cache:
        cache[file] = rules.compile_file(file)
    return cache[file]


def _run_in_worker(job: Job) -> dict:
    return run_job(job, _policy(job.file), _WORKER["days"], _WORKER["actions"])


def run_grid(jobs: Sequence[Job], policies: Mapping[str, rules.Policy], days: Sequence[PriceDay],
             actions: Sequence[CorporateAction], prices: str, actions_source: str | None, workers: int,
             done: Callable[[int], None] = lambda n: None) -> list[dict]:
    """Every job's report, in the jobs' order: here (`done` told of each day), or over
    `workers` processes (`done` told of each job's days when it ends)."""
    if workers <= 1 or len(jobs) <= 1:
        return [run_job(j, policies[j.file], days, actions, lambda d: done(1)) for j in jobs]
    import multiprocessing
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(prices, actions_source)) as pool:
        futures = [pool.submit(_run_in_worker, j) for j in jobs]
        outs = []
        for f in futures:
            outs.append(f.result())
            done(len(outs[-1]["curve"]))
        return outs


# --- output ------------------------------------------------------------------------------------------

_ROWS = (("final value", lambda d: d["final_value"]), ("deposits", lambda d: d["deposits"]),
         ("withdrawals", lambda d: d["withdrawals"]), ("dividends", lambda d: d["dividends"]))
_PCT = ("twr", "cagr", "mwr", "volatility", "max_drawdown", "turnover", "cash_drag")


def _metric(name: str, v: Any) -> str:
    if v is None:
        return "-"
    if name in _PCT:
        return f"{v * 100:.2f}%"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


_METRICS = ("twr", "cagr", "mwr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "turnover", "cash_drag",
            "orders", "skipped_orders")


def rows(reports: Sequence[dict]) -> list[tuple[str, list[str]]]:
    """The table's rows, one value per backtest: money, then the metrics."""
    out = [(name, [get(r) for r in reports]) for name, get in _ROWS]
    out += [(name.replace("_", " "), [_metric(name, r["metrics"][name]) for r in reports]) for name in _METRICS]
    return out


def table(reports: Sequence[dict], labels: Sequence[str]):
    from rich.markup import escape
    from rich.table import Table
    first = reports[0]
    t = Table(title=f"backtest {first['from']} .. {first['to']}, start ${first['start']}", title_justify="left")
    t.add_column("")
    for label in labels:
        t.add_column(escape(label), justify="right")
    for name, values in rows(reports):
        t.add_row(name, *values)
    return t


def chart_bytes(reports: Sequence[dict], labels: Sequence[str], fmt_: str = "svg") -> bytes:
    """Value over time, drawdown under it; one line per backtest. Drawn on a Figure of its
    own (not pyplot's global state), so the console's threads may draw side by side."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("the chart needs matplotlib: pip install 'pies[backtest]'") from None
    fig = Figure(figsize=(10, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    for r, label in zip(reports, labels):
        days = [date.fromisoformat(p["date"]) for p in r["curve"]]
        values = [int(Decimal(p["value"]) * 100) for p in r["curve"]]
        flows = [int(Decimal(p["flow"]) * 100) for p in r["curve"]]
        rs = mx.daily_returns(int(Decimal(r["start"]) * 100), values, flows)
        top.plot(days, [v / 100 for v in values], label=label, linewidth=1)
        bottom.plot(days, [d * 100 for d in mx.drawdowns(rs)], label=label, linewidth=1)
    top.set_ylabel("value ($)")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown (%)")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt_)
    return buf.getvalue()


def chart(reports: Sequence[dict], labels: Sequence[str], path: str) -> None:
    kind = Path(path).suffix.lstrip(".").lower()
    if kind not in ("svg", "png", "pdf"):
        raise InputError(f"{path}: a chart is written as .svg, .png or .pdf")
    data = chart_bytes(reports, labels, kind)
    try:
        Path(path).write_bytes(data)
    except OSError as e:
        raise InputError(f"{path}: cannot write the chart: {e.strerror or e}") from None


def labels_for(jobs: Sequence[Job]) -> list[str]:
    files = {j.file for j in jobs}
    rule_sets = {j.rules for j in jobs}
    return [j.pie + (f" [{j.rules}]" if len(rule_sets) > 1 else "") + (f" ({Path(j.file).name})" if len(files) > 1 else "")
            for j in jobs]


def prepare(policies: Mapping[str, rules.Policy], pies: Sequence[str], rule_names: Sequence[str],
            prices_name: str, symbols: Sequence[str], start: str, end: str, start_cash: str,
            deposit: str | None, withdraw: str | None, min_order: str, max_runs: int = MAX_RUNS) -> list[Job]:
    """Check everything before anything runs: one job per (policy, pie, rule set)."""
    d0, d1 = parse_span(start, end)
    try:
        cents = parse_dollars(start_cash, what="--start")
        minimum = parse_dollars(min_order, what="--min-order")
    except MoneyError as e:
        raise InputError(str(e)) from None
    dep, wd = parse_flow(deposit, "--deposit"), parse_flow(withdraw, "--withdraw")
    jobs: list[Job] = []
    for f, policy in policies.items():
        for pie in pies:
            if pie not in policy.pies:
                known = ", ".join(f'"{n}"' for n in policy.pies) or "none"
                raise InputError(f'{f} has no top-level pie named "{pie}" (it has: {known})')
            check_columns(policy, pie, symbols, prices_name)
            for rn in rule_names:
                if rules.find_rules(rn, policy) is None:
                    raise InputError(f"no rule set named {rn!r} (known: {', '.join(rules.rule_names(policy))})")
                jobs.append(Job("", f, pie, rn, d0, d1, cents, dep, wd, minimum))
    if len(jobs) > max_runs:
        raise InputError(f"{len(jobs)} backtests; the limit is {max_runs}")
    return [replace(j, label=label) for j, label in zip(jobs, labels_for(jobs))]

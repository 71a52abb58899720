"""`pies backtest`: what a policy would have done over a price history, traded by the
live window's engine (engine/core/backtest.py), with its metrics (engine/core/metrics.py).

The command is here; what it runs is in `run` (inputs, the grid, reports, table, chart),
loaded when the command runs so that other commands do not pay for the planner's imports;
the HTTP route's part is in `api`."""

from __future__ import annotations

import json
import sys

import click

from engine.shell.console import UserError, err, out

from .sample import SAMPLE


@click.command("backtest")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--pie", "pies", multiple=True, required=True, help="A top-level pie (repeat to compare).")
@click.option("--rules", "rule_names", multiple=True, help="A rule set (repeat for a grid); default m1.")
@click.option("--prices", required=True, help=f"CSV: date,SYMBOL,... of raw closes, or {SAMPLE}.")
@click.option("--actions", help=f"CSV: date,symbol,kind,value (dividend | split), or {SAMPLE}.")
@click.option("--from", "start", required=True, metavar="YYYY-MM-DD")
@click.option("--to", "end", required=True, metavar="YYYY-MM-DD")
@click.option("--start", "start_cash", default="10,000", show_default=True, help="The start cash.")
@click.option("--deposit", metavar="PERIOD:AMOUNT", help="weekly|monthly|quarterly|yearly:AMOUNT")
@click.option("--withdraw", metavar="PERIOD:AMOUNT", help="weekly|monthly|quarterly|yearly:AMOUNT")
@click.option("--min-order", default="1.00", show_default=True, help="The smallest order sent, in dollars.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--chart", "chart_path", type=click.Path(dir_okay=False), help="Draw value and drawdown to FILE.svg.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Processes that run the backtests of a grid.")
def backtest(files: tuple[str, ...], pies: tuple[str, ...], rule_names: tuple[str, ...], prices: str,
             actions: str | None, start: str, end: str, start_cash: str, deposit: str | None, withdraw: str | None,
             min_order: str, as_json: bool, chart_path: str | None, jobs: int) -> None:
    """What a policy would have done over a price history, traded by the live window's engine."""
    import rules
    from .run import InputError, chart, load_actions, load_prices, parse_span, prepare, run_grid, table
    try:
        try:
            parse_span(start, end)
            policies = {f: rules.compile_file(f) for f in dict.fromkeys(files)}
            days, symbols = load_prices(prices)
            acts = load_actions(actions)
            grid = prepare(policies, pies, rule_names or (rules.DEFAULT_RULES,), prices, symbols, start, end,
                           start_cash, deposit, withdraw, min_order)
        except rules.PolicyError as e:
            from engine.shell.console import print_policy_error
            print_policy_error(e)
            raise SystemExit(1) from None
        from rich.progress import Progress
        with Progress(console=err, transient=True, disable=as_json or not err.is_terminal) as bar:
            span = sum(1 for d in days if grid[0].start <= d.day <= grid[0].end)
            task = bar.add_task(f"{len(grid)} backtest{'s' if len(grid) > 1 else ''}", total=span * len(grid))
            reports = run_grid(grid, policies, days, acts, prices, actions, jobs, lambda n: bar.advance(task, n))
        labels = [j.label for j in grid]
        if chart_path:
            chart(reports, labels, chart_path)
    except InputError as e:
        raise UserError(str(e)) from None
    if as_json:
        doc = reports[0] if len(reports) == 1 else {"backtests": reports}
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return
    out.print(table(reports, labels))
    if chart_path:
        out.print(f"chart: {chart_path}")

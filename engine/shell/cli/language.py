"""The policy language at the command line: `pies check`, `fmt`, `show` and `preview`.

Exit 1 for a policy that does not compile (`check`), exit 2 for bad input.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import click

import rules
from rules.model import FULL, Pie, Security

from engine.shell.cli.shared import policy_warnings, print_json
from engine.shell.console import UserError, err, out
from engine.shell.console import print_policy_error as _print_policy_error


def _load_policy(path: str) -> rules.Policy:
    try:
        return rules.compile_file(path)
    except rules.PolicyError as e:
        _print_policy_error(e)
        raise SystemExit(1) from None


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the diagnostics as JSON.")
@click.pass_context
def check(ctx: click.Context, files: tuple[str, ...], as_json: bool) -> None:
    """Compile policy files; exit 1 listing every error if any does not compile. Warns
    about symbols a corporate action renamed or removed (when the ledger exists)."""
    problems: list[rules.Diagnostic] = []
    warnings: list[str] = []
    for f in files:
        try:
            text = rules.read_policy_text(f)
            policy = rules.compile_text(text, f)
        except rules.PolicyError as e:
            problems.extend(e.diagnostics)
            continue
        warnings.extend(rules.warnings(text, f))
        warnings.extend(policy_warnings(ctx, f, text))
        if not as_json:
            out.print(f"[green]ok[/green]  {f}: {len(policy.pies)} pies, {len(policy.rules)} rule sets")
    if as_json:
        doc: dict = {"errors": [d.as_dict() for d in problems]}
        if warnings:
            doc["warnings"] = warnings
        print_json(doc)
    else:
        for w in warnings:
            err.print(w, style="yellow", markup=False, soft_wrap=True)
        if problems:
            _print_policy_error(rules.PolicyError(problems))
    if problems:
        raise SystemExit(1)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--write", is_flag=True, help="Rewrite the file in place.")
def fmt(file: str, write: bool) -> None:
    """Print the canonical form of a policy file."""
    try:
        text = rules.format_file(file)
    except rules.PolicyError as e:
        _print_policy_error(e)
        raise SystemExit(1) from None
    if write:
        Path(file).write_text(text, encoding="utf-8")
        err.print(f"formatted {file}")
    else:
        sys.stdout.write(text)
    try:                       # formatted all the same: say what still keeps it from compiling
        rules.compile_file(file)
    except rules.PolicyError as e:
        err.print(f"note: {file} is formatted, but it does not compile yet "
                  f"({len(e.diagnostics)} problem{'s' if len(e.diagnostics) > 1 else ''}):",
                  style="yellow", markup=False, soft_wrap=True)
        _print_policy_error(e)
    for w in rules.warnings(text, file):
        err.print(w, style="yellow", markup=False, soft_wrap=True)


def _pie_or_fail(policy: rules.Policy, name: str) -> Pie:
    pie = policy.pies.get(name)
    if pie is None:
        known = ", ".join(f'"{n}"' for n in policy.pies) or "none"
        raise UserError(f'{policy.file} has no top-level pie named "{name}" (it has: {known})')
    return pie


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--pie", "pie_name", required=True, help="The top-level pie to show.")
def show(file: str, pie_name: str) -> None:
    """Show a pie as a tree with each slice's share of the whole portfolio."""
    policy = _load_policy(file)
    pie = _pie_or_fail(policy, pie_name)

    from rich.tree import Tree

    def add(node: Tree, p: Pie, share: Decimal) -> None:
        for s in p.slices:
            eff = share * s.target_bp / FULL      # exact: dividing by 10000 is exact in Decimal
            line = f"target {s.target}%   of portfolio {eff.normalize():f}%"
            if isinstance(s, Security):
                node.add(f"[bold]{s.symbol}[/bold]  {line}")
            else:
                used = f' (use "{s.uses}")' if s.uses else ""
                add(node.add(f"[bold cyan]{s.name}[/bold cyan]{used}  {line}"), s, eff)

    root = Tree(f"[bold cyan]{pie.name}[/bold cyan]  100%")
    add(root, pie, Decimal(100))
    out.print(root)


@click.command()
@click.argument("policy_file", metavar="POLICY", type=click.Path(dir_okay=False))
@click.option("--pie", "pie_name", required=True, help="The top-level pie the account follows.")
@click.option("--holdings", "holdings_file", required=True, type=click.Path(dir_okay=False),
              help='JSON: slice path -> dollar value, e.g. {"A": "15000", "Pie 1/E": "7500.50"}.')
@click.option("--event", "event_texts", multiple=True, metavar="E",
              help="deposit:AMOUNT, withdraw:AMOUNT, dividend:AMOUNT, rebalance or rebalance:PIE/PATH (repeatable).")
@click.option("--rules", "rules_name", default=rules.DEFAULT_RULES, show_default=True,
              help="The rule set: the policy file's own or the standard library's.")
@click.option("--cash", default="0", show_default=True, help="Uninvested cash the account holds.")
@click.option("--min-order", default="1.00", show_default=True, help="The broker's minimum order in dollars.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def preview(policy_file: str, pie_name: str, holdings_file: str, event_texts: tuple[str, ...],
            rules_name: str, cash: str, min_order: str, as_json: bool) -> None:
    """Show what one account would trade for the given holdings and events."""
    from engine.core.money import MoneyError, parse_dollars
    from engine.core.planner import PlanError, plan
    from engine.shell.preview import InputError, parse_event, plan_json, plan_table, read_holdings

    policy = _load_policy(policy_file)
    pie = _pie_or_fail(policy, pie_name)
    ruleset = rules.find_rules(rules_name, policy)
    if ruleset is None:
        raise UserError(f"no rule set named {rules_name!r} (known: {', '.join(rules.rule_names(policy))})")
    try:
        holdings = read_holdings(holdings_file)
        events = [parse_event(t) for t in event_texts]
        result = plan(pie, holdings, events, ruleset, cash=parse_dollars(cash, what="--cash", zero=True),
                      min_order=parse_dollars(min_order, what="--min-order", zero=True))
    except (InputError, PlanError, MoneyError) as e:
        raise UserError(str(e)) from None
    if as_json:
        print_json(plan_json(result))
        return
    out.print(plan_table(pie, holdings, result))
    from engine.core.money import fmt as money
    for o in result.orders:
        out.print(f"  {o.side:<4} {o.symbol:<8} ${money(o.cents)}")
    for d in result.deferred:
        out.print(f"  [yellow]deferred[/yellow] {d.side} {d.symbol} ${money(d.cents)}: {d.reason}")
    out.print(f"  cash ${money(result.cash_before)} -> ${money(result.cash_after)}"
              + (f"  [red]withdrawal short by ${money(result.shortfall)}[/red]" if result.shortfall else ""))

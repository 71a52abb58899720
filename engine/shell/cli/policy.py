"""`pies policy ...`: a policy change is planned before it trades (plan, apply), and its
versions can be listed, shown and compared. See docs/policy-changes.md.

Exit codes of `policy plan`: 0 nothing would trade, 1 the change would trade (so an
analysts' CI can require a review), 2 errors (a policy that does not compile included).
`policy apply` (and its old name `load`), like `account add`: 0 applied or nothing to
apply, 2 the policy does not compile, refused, or a mistake.
"""

from __future__ import annotations

import sys

import click

import rules
from engine.core.money import fmt
from engine.core.policy_change import ChangePlan
from engine.shell import policies
from engine.shell.cli.shared import ledger_of, prices_of, print_json, service_of
from engine.shell.console import UserError, err, out, print_policy_error


def _read(files: tuple[str, ...], code: int) -> list[tuple[str, str]]:
    """(path, text) of each file, or the compile errors of all of them and exit `code`."""
    texts, problems = [], []
    for f in files:
        path = policies.resolve(f)          # one file, one policy, from any directory
        try:
            text = rules.read_policy_text(path)
            policies.COMPILER.policy(text, path)
        except rules.PolicyError as e:
            problems.extend(e.diagnostics)
            continue
        for w in rules.warnings(text, path):
            err.print(w, style="yellow", markup=False, soft_wrap=True)
        texts.append((path, text))
    if problems:
        print_policy_error(rules.PolicyError(problems))
        raise SystemExit(code)
    return texts


def _interactive() -> bool:
    """A person at a terminal can be asked."""
    return sys.stdin.isatty()


def print_plan(p: ChangePlan, tax: dict | None = None) -> None:
    if not p.changed:
        out.print(f"{p.file}: the accounts follow this text already (sha {p.sha256[:12]}); nothing to apply")
        return
    out.print(f"[bold]{p.file}[/bold] (sha {p.sha256[:12]})")
    for pc in p.pies:
        since = f"version {pc.from_version}" if pc.from_version else "new pie"
        out.print(f'  pie "{pc.pie}" ({since})')
        for c in pc.changes:
            name = c.path + ("/" if c.is_pie else "")
            if c.change == "added":
                out.print(f"    [green]+ {name:<28}[/green] {fmt(c.new_bp)}%")
            elif c.change == "removed":
                out.print(f"    [red]- {name:<28}[/red] {fmt(c.old_bp)}% -> removed")
            else:
                out.print(f"    [yellow]~ {name:<28}[/yellow] {fmt(c.old_bp)}% -> {fmt(c.new_bp)}%")
    if p.accounts:
        out.print("  liquidations at the next window, at current prices:")
        for a in p.accounts:
            for x in a.liquidations:
                amount = "no price" if x.cents is None else f"${fmt(x.cents)}"
                out.print(f"    {a.account:<16} {x.path:<24} {x.shares:>16} sh  {amount:>14}   rules {a.rules}")
        out.print("  totals:")
        for symbol, shares, cents in p.totals:
            out.print(f"    {symbol:<16} {shares:>16} sh  ${fmt(cents):>13}")
        out.print(f"    all: ${fmt(p.cents)} in {len(p.accounts)} account(s)")
        if tax is not None:
            out.print("  estimated realized gain of these sells (by each account's lot method):")
            for a in tax["accounts"]:
                out.print(f"    {a['account']:<16} short-term ${a['short']:>12}  long-term ${a['long']:>12}")
            out.print(f"    all: short-term ${tax['short']}, long-term ${tax['long']}")
    if p.quiet_accounts:
        out.print(f"  {p.quiet_accounts} account(s) change targets without trading (until their next cash event "
                  f"or rebalance)")
    if p.unpriced:
        out.print(f"  [yellow]no price for {', '.join(p.unpriced)}: those amounts are unknown[/yellow]")
    out.print("  [bold red]this change would trade[/bold red]" if p.trades else "  nothing would trade")


@click.group()
def policy() -> None:
    """Policy changes: plan, apply, and the versions in the ledger."""


def plans(ctx: click.Context, texts: list[tuple[str, str]], warnings: list[str] | None = None) -> list[ChangePlan]:
    """The plans of the texts; `warnings` gets the slices that name a symbol a corporate
    action renamed or removed."""
    with ledger_of(ctx) as led:
        out = [policies.plan(led, path, text, lambda symbols: prices_of(ctx, symbols)) for path, text in texts]
        service = service_of(ctx, led)
        found = [w for path, text in texts for w in service.policy_warnings(path, text)]
    if warnings is not None:
        warnings.extend(found)
    return out


def taxes(ctx: click.Context, result: list[ChangePlan]) -> list[dict]:
    """Each plan's tax preview (the service's: what the API and console show too)."""
    with ledger_of(ctx) as led:
        svc = service_of(ctx, led)
        return [svc.policy_tax(p) for p in result]


@policy.command("plan")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_context
def policy_plan(ctx: click.Context, files: tuple[str, ...], as_json: bool) -> None:
    """What applying FILES would do, writing nothing: target diffs, liquidations with
    amounts at current prices, totals. Exit 0: nothing would trade; 1: it would; 2: errors."""
    warnings: list[str] = []
    result = plans(ctx, _read(files, 2), warnings)
    tax = taxes(ctx, result)
    if as_json:
        doc = {"plans": [{**p.to_json(), "tax": t} for p, t in zip(result, tax)],
               "trades": any(p.trades for p in result)}
        print_json({**doc, "warnings": warnings} if warnings else doc)
    else:
        for p, t in zip(result, tax):
            print_plan(p, t)
        for w in warnings:
            err.print(w, style="yellow", markup=False, soft_wrap=True)
    if any(p.trades for p in result):
        raise SystemExit(1)


def apply(ctx: click.Context, files: tuple[str, ...], yes: bool) -> None:
    texts = _read(files, 2)
    result = plans(ctx, texts)
    for p in result:
        print_plan(p)
    todo = [(pt, p) for pt, p in zip(texts, result) if p.changed]
    if not todo:
        return
    trades = [p for _, p in todo if p.trades]
    if not yes:
        if _interactive():
            what = f"liquidates ${fmt(sum(p.cents for p in trades))}" if trades else "trades nothing"
            if not click.confirm(f"apply? ({what})", default=False):
                raise UserError("not applied")
        elif trades:
            raise UserError(f"this change liquidates ${fmt(sum(p.cents for p in trades))} in "
                            f"{sum(len(p.accounts) for p in trades)} account(s): confirm on a terminal or "
                            f"pass --yes")
    with ledger_of(ctx) as led:
        for (path, text), _ in todo:
            version, queued = policies.apply(led, path, text)
            out.print(f"{path}: version {version.id} ({version.sha256[:12]}) applied")
            for q in queued:
                out.print(f"  queued {q}")


for name, helptext in (("apply", "Show the plan of FILES, ask, then apply: accounts following each file move "
                                 "to its text (a new version only when the text differs)."),
                       ("load", "The old name of `policy apply`.")):
    @policy.command(name, help=helptext)
    @click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
    @click.option("--yes", is_flag=True, help="Apply without asking (for scripts).")
    @click.pass_context
    def _apply(ctx: click.Context, files: tuple[str, ...], yes: bool) -> None:
        apply(ctx, files, yes)


@policy.command("history")
@click.argument("pie", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def policy_history(ctx: click.Context, pie: str | None, as_json: bool) -> None:
    """Policy versions, oldest first, with when each was applied and who follows it
    (with PIE: only versions that have it, marking those where it changed)."""
    with ledger_of(ctx) as led:
        rows = service_of(ctx, led).policy_history(pie)["versions"]
    if as_json:
        print_json({"versions": rows})
        return
    if not rows:
        err.print("no policy versions" + (f" with pie {pie!r}" if pie else ""))
        return
    for r in rows:
        mark = "" if not pie else ("  [yellow]pie changed[/yellow]" if r["pie_changed"] else "  same pie")
        applied = ", ".join(f"{a['at'][:16]} ({a['source']}, {a['accounts']} acct, {a['liquidations']} liq)"
                            for a in r["applied"]) or "never applied"
        out.print(f"v{r['version']:<4} {r['file']}  {r['sha256'][:12]}  followers {r['followers']}  "
                  f"applied: {applied}{mark}")


@policy.command("show")
@click.argument("version", type=int)
@click.pass_context
def policy_show(ctx: click.Context, version: int) -> None:
    """Print a version's text exactly as it was applied."""
    with ledger_of(ctx) as led:
        v = service_of(ctx, led).policy_version(version)
    err.print(f"# version {v['version']} of {v['file']}, sha {v['sha256'][:12]}, loaded "
              f"{v['loaded_at'][:16].replace('T', ' ')}")
    sys.stdout.write(v["text"] if v["text"].endswith("\n") else v["text"] + "\n")


@policy.command("diff")
@click.argument("v1", type=int)
@click.argument("v2", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def policy_diff(ctx: click.Context, v1: int, v2: int, as_json: bool) -> None:
    """The target changes from version V1 to V2, pie by pie."""
    with ledger_of(ctx) as led:
        doc = service_of(ctx, led).policy_diff(v1, v2)
    if as_json:
        print_json(doc)
        return
    diffs = doc["pies"]
    if not diffs:
        out.print(f"versions {v1} and {v2} have the same targets")
    for p in diffs:
        out.print(f'pie "{p["pie"]}"')
        for c in p["changes"]:
            out.print(f"  {c['change']:<8} {c['slice'] + ('/' if c['pie'] else ''):<28} {c['old'] or '-':>8} -> "
                      f"{c['new'] or '-'}")

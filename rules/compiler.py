"""Syntax tree -> compiled `Policy`, checking everything an analyst can get wrong.

Every check reports through the collector and carries on, so one run lists all the
independent errors of a file. Nothing here raises for a user mistake except the final
`PolicyError` that carries them all.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from decimal import Decimal
from typing import Mapping

from engine.core.money import MoneyError, parse_dollars

from . import vocabulary as vocab
from .diagnostics import Collector, Source
from .model import FULL, Action, Pie, Policy, RuleSet, Security, Slice
from .syntax import PieDecl, RuleStmt, RulesDecl, SecurityDecl, SyntaxFile, UseDecl, Value


def equal_split(n: int) -> list[int]:
    """100% in basis points split n ways as evenly as possible, earlier slices taking the rest."""
    base, extra = divmod(FULL, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def parse_percent(value: Value, c: Collector) -> int | None:
    """'40%' -> 4000 basis points; None (with an error) when it is not a valid target."""
    text = value.text.rstrip("%")
    d = Decimal(text)
    if d.as_tuple().exponent < -2:  # type: ignore[operator]
        c.error(value.src, f"{value.text} has more than 2 decimals; targets are in hundredths of a percent")
        return None
    if d > 100:
        c.error(value.src, f"{value.text} is more than 100%")
        return None
    return int(d * 100)


def parse_money(value: Value, c: Collector, what: str = "amount") -> int | None:
    """'$1,000.50' -> 100050 cents, in the grammar of every amount (docs/money.md); $0 is allowed."""
    try:
        return parse_dollars(value.text, what=what, zero=True)
    except MoneyError as e:
        c.error(value.src, str(e))
        return None


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _fmt_bp(bp: int) -> str:
    d = Decimal(bp) / 100
    return f"{d.normalize():f}%"


# --- pies ----------------------------------------------------------------------------------

def _height(pie: Pie) -> int:
    """Levels of nested pies below this one."""
    return max((1 + _height(s) for s in pie.slices if isinstance(s, Pie)), default=0)


class _PieCompiler:
    """Compiles each pie declaration once; a `use` reuses the compiled top-level pie."""

    def __init__(self, c: Collector, decls: dict[str, PieDecl], broken: set[str]):
        self.c = c
        self.decls = decls
        self.broken = broken
        self.done: dict[str, Pie | None] = {}

    def top(self, name: str, stack: tuple[str, ...] = ()) -> Pie | None:
        if name not in self.done:
            decl = self.decls[name]
            if decl.percent is not None:
                self.c.error(decl.percent.src, f'a top-level pie takes no percentage: '
                                               f'remove {decl.percent.text} after "{name}"')
            self.done[name] = self._pie(decl, FULL, (*stack, name), depth=0)
        return self.done[name]

    def _pie(self, decl: PieDecl, target: int, stack: tuple[str, ...], depth: int) -> Pie | None:
        c = self.c
        if not _check_name(decl.name, c):
            return None
        if not decl.slices:
            c.error(decl.name.src, f'pie "{decl.name.text}" has no slices')
            return None
        ok = True
        if len(decl.slices) > vocab.MAX_SLICES_PER_PIE:
            c.error(decl.name.src, f'pie "{decl.name.text}" has {len(decl.slices)} slices; '
                                   f"the limit is {vocab.MAX_SLICES_PER_PIE} per pie")
            ok = False
        targets = self._targets(decl)
        seen: dict[str, Source] = {}
        slices: list[Slice] = []
        for i, s in enumerate(decl.slices):
            name, where = _slice_name(s)
            if name in seen:
                c.error(where, f'"{name}" appears twice in pie "{decl.name.text}" '
                               f"(first at line {seen[name].line}); a slice may appear once per pie")
                ok = False
                continue
            seen[name] = where
            child = self._slice(s, targets[i] if targets else 0, stack, depth)
            if child is None:
                ok = False
            else:
                slices.append(child)
        if not ok or targets is None:
            return None
        return Pie(decl.name.text, target, tuple(slices), source=decl.src)

    def _targets(self, decl: PieDecl) -> list[int] | None:
        c = self.c
        if decl.equal:
            given = [s.percent for s in decl.slices if s.percent is not None]
            for p in given:
                c.error(p.src, f'{p.text}: the slices of an equal pie take no percentage '
                               f'(remove it, or remove "equal" from pie "{decl.name.text}")')
            return None if given else equal_split(len(decl.slices))
        out: list[int] = []
        bad = False
        for s in decl.slices:
            if s.percent is None:
                name, where = _slice_name(s)
                c.error(where, f'"{name}" needs a target percentage, like {name} 25% '
                               f'(or write pie "{decl.name.text}" equal)')
                bad = True
                continue
            bp = parse_percent(s.percent, c)
            if bp is None:
                bad = True
            else:
                out.append(bp)
        if bad:
            return None
        total = sum(out)
        if total != FULL:
            diff = FULL - total
            how = f"{_fmt_bp(diff)} missing" if diff > 0 else f"{_fmt_bp(-diff)} too much"
            c.error(decl.name.src, f'the slices of pie "{decl.name.text}" add up to {_fmt_bp(total)}, '
                                   f"not 100% ({how})")
            return None
        return out

    def _slice(self, s: SecurityDecl | UseDecl | PieDecl, target: int, stack: tuple[str, ...],
               depth: int) -> Slice | None:
        c = self.c
        if isinstance(s, SecurityDecl):
            return Security(s.symbol, target, source=s.src)
        if isinstance(s, PieDecl):
            if depth + 1 > vocab.MAX_DEPTH:
                c.error(s.name.src, f'pie "{s.name.text}" is nested {depth + 1} levels deep; '
                                    f"the limit is {vocab.MAX_DEPTH}")
                return None
            return self._pie(s, target, stack, depth + 1)
        name = s.name.text   # use "Name"
        if name not in self.decls:
            if name not in self.broken:
                c.error(s.name.src, f'there is no top-level pie named "{name}" to use'
                                    f"{_suggest(name, list(self.decls))}")
            return None
        if name in stack:
            cycle = " -> ".join(f'"{n}"' for n in (*stack[stack.index(name):], name))
            c.error(s.name.src, f"a pie cannot contain itself: {cycle}")
            return None
        used = self.top(name, stack)
        if used is None:
            return None   # its own errors are reported where it is defined
        levels = depth + 1 + _height(used)
        if levels > vocab.MAX_DEPTH:
            c.error(s.name.src, f'using "{name}" here nests pies {levels} levels deep; '
                                f"the limit is {vocab.MAX_DEPTH}")
            return None
        return replace(used, target_bp=target, uses=name, source=s.src)


def _slice_name(s: SecurityDecl | UseDecl | PieDecl) -> tuple[str, Source]:
    if isinstance(s, SecurityDecl):
        return s.symbol, s.src
    return s.name.text, s.name.src


def _check_name(name: Value, c: Collector) -> bool:
    if not name.text.strip():
        c.error(name.src, "a pie needs a name")
        return False
    if "/" in name.text:
        c.error(name.src, f'"{name.text}": a pie name may not contain "/" (it separates slice paths)')
        return False
    return True


def _compile_pies(sf: SyntaxFile, c: Collector) -> dict[str, Pie]:
    decls: dict[str, PieDecl] = {}
    for b in sf.blocks:
        if not isinstance(b, PieDecl):
            continue
        if b.name.text in decls:
            first = decls[b.name.text].name.src
            c.error(b.name.src, f'a pie named "{b.name.text}" is already defined at line {first.line}')
            continue
        decls[b.name.text] = b
    pc = _PieCompiler(c, decls, sf.broken_names)
    out: dict[str, Pie] = {}
    for name in decls:
        pie = pc.top(name)
        if pie is not None:
            out[name] = pie
    return out


# --- rules ---------------------------------------------------------------------------------

_FIELDS = {e: e.replace("-", "_") for e in vocab.EVENTS}


def _parse_action(event: str, words: list[Value], c: Collector) -> Action | None:
    allowed = vocab.EVENT_ACTIONS[event]
    texts = [w.text for w in words]
    match = None
    for name in sorted(vocab.ACTION_PARAMS, key=lambda a: -len(a.split())):
        n = len(name.split())
        if texts[:n] == name.split():
            match = name
            break
    if match is None or match not in allowed:
        phrase = " ".join(texts)
        what = f"'{match}' is not an action for" if match else f"unknown action '{phrase}' for"
        c.error(words[0].src, f"{what} 'on {event}'; choose {vocab.one_of(list(allowed))}")
        return None
    rest = words[len(match.split()):]
    spec = {k: (vals, default) for k, vals, default in vocab.ACTION_PARAMS[match]}
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        key = rest[i]
        if key.text not in spec:
            if spec:
                c.error(key.src, f"'{match}' takes {vocab.one_of(list(spec))}, not '{key.text}'")
            else:
                c.error(key.src, f"'{match}' takes no further words; remove '{key.text}'")
            return None
        if i + 1 >= len(rest):
            c.error(key.src, f"'{key.text}' needs a value: {vocab.one_of(list(spec[key.text][0]))}")
            return None
        val = rest[i + 1]
        if val.text not in spec[key.text][0]:
            c.error(val.src, f"'{key.text} {val.text}': choose {vocab.one_of(list(spec[key.text][0]))}")
            return None
        params[key.text] = val.text
        i += 2
    full = tuple((k, params.get(k, default)) for k, (_, default) in spec.items())
    return Action(match, full)


def _expect_rebalance(words: list[Value], after: Source, c: Collector) -> bool:
    texts = [w.text for w in words]
    if texts != ["rebalance"]:
        where = words[0].src if words else after
        c.error(where, f"a trigger can only 'rebalance', not '{' '.join(texts)}'")
        return False
    return True


class _RulesResolver:
    """Resolves `extends` chains and fills events a block leaves out from its base."""

    def __init__(self, c: Collector, decls: dict[str, RulesDecl], external: Mapping[str, RuleSet],
                 default_base: str | None):
        self.c = c
        self.decls = decls
        self.external = external
        self.default_base = default_base
        self.done: dict[str, RuleSet | None] = {}

    def resolve(self, name: str, stack: tuple[str, ...] = ()) -> RuleSet | None:
        if name in self.done:
            return self.done[name]
        decl = self.decls[name]
        c = self.c
        base: RuleSet | None = None
        base_name = decl.extends.text if decl.extends else (self.default_base if name != self.default_base else None)
        ok = True
        if base_name is not None:
            if base_name in stack or base_name == name:
                c.error(decl.extends.src if decl.extends else decl.name.src,
                        f'rules "{name}" cannot extend itself (through {" -> ".join(stack + (name, base_name))})')
                ok = False
            elif base_name in self.decls:
                base = self.resolve(base_name, (*stack, name))
                ok = base is not None
            elif base_name in self.external:
                base = self.external[base_name]
            else:
                where = decl.extends.src if decl.extends else decl.name.src
                known = [*self.decls, *self.external]
                c.error(where, f'there are no rules named "{base_name}" to extend{_suggest(base_name, known)}')
                ok = False
        fields: dict[str, object] = {}
        seen: dict[str, Source] = {}
        for st in decl.statements:
            key = self._statement(st, fields)
            if key is None:
                ok = False
                continue
            if key in seen:
                c.error(st.src, f"this repeats line {seen[key].line} of rules \"{name}\"; say it once")
                ok = False
            seen[key] = st.src
        if not ok:
            self.done[name] = None
            return None
        if base is None:
            missing = [e for e in vocab.EVENTS if _FIELDS[e] not in fields]
            if missing:
                c.error(decl.name.src, f'rules "{name}" extend nothing, so they must say what to do '
                                       f"on {vocab.one_of(missing)}")
                self.done[name] = None
                return None
            rs = RuleSet(name=name, source=decl.src, **fields)  # type: ignore[arg-type]
        else:
            rs = replace(base, name=name, source=decl.src, **fields)  # type: ignore[arg-type]
        self.done[name] = rs
        return rs

    def _statement(self, st: RuleStmt, fields: dict[str, object]) -> str | None:
        c = self.c
        if st.kind == "on":
            event = st.words[0]
            if event.text not in vocab.EVENTS:
                c.error(event.src, f"unknown event '{event.text}'; events are {vocab.one_of(list(vocab.EVENTS))}"
                                   f"{_suggest(event.text, list(vocab.EVENTS)).replace(chr(34), chr(39))}")
                return None
            action = _parse_action(event.text, st.words[1:], c)
            if action is None:
                return None
            fields[_FIELDS[event.text]] = action
            return f"on {event.text}"
        if st.kind in ("cash_reserve", "invest_minimum"):
            assert st.value is not None
            cents = parse_money(st.value, c, st.kind.replace("_", " "))
            if cents is None:
                return None
            fields[f"{st.kind}_cents"] = cents
            return st.kind
        if st.kind == "when_drift":
            assert st.value is not None
            bp = parse_percent(st.value, c)
            if bp is None or not _expect_rebalance(st.words, st.value.src, c):
                return None
            if bp == 0:
                c.error(st.value.src, "a drift threshold must be more than 0%")
                return None
            fields["drift_threshold_bp"] = bp
            return "when drift"
        if st.kind == "every":
            period = st.words[0]
            if period.text not in vocab.PERIODS:
                c.error(period.src, f"'every {period.text}': choose {vocab.one_of(list(vocab.PERIODS))}")
                return None
            if not _expect_rebalance(st.words[1:], period.src, c):
                return None
            fields["every"] = period.text
            return "every"
        raise AssertionError(st.kind)


def _compile_rules(sf: SyntaxFile, c: Collector, external: Mapping[str, RuleSet],
                   default_base: str | None) -> dict[str, RuleSet]:
    decls: dict[str, RulesDecl] = {}
    for b in sf.blocks:
        if not isinstance(b, RulesDecl):
            continue
        if b.name.text in decls:
            c.error(b.name.src, f'rules named "{b.name.text}" are already defined at line '
                                f"{decls[b.name.text].name.src.line}")
            continue
        decls[b.name.text] = b
    r = _RulesResolver(c, decls, external, default_base)
    out: dict[str, RuleSet] = {}
    for name in decls:
        rs = r.resolve(name)
        if rs is not None:
            out[name] = rs
    return out


def compile_syntax(sf: SyntaxFile, c: Collector, external: Mapping[str, RuleSet],
                   default_base: str | None = "m1") -> Policy:
    pies = _compile_pies(sf, c)
    rules = _compile_rules(sf, c, external, default_base)
    return Policy(sf.path, pies, rules)

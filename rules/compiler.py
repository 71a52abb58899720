"""Syntax tree -> compiled `Policy`, checking everything an analyst can get wrong.

Every check reports through the collector and carries on, so one run lists all the
independent errors of a file. Nothing here raises for a user mistake except the final
`PolicyError` that carries them all.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from decimal import Decimal
from itertools import chain as chain_names, islice
from typing import Callable, Generator, Iterable, Mapping, NamedTuple

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
        return vocab.parse_amount(value.text, what=what, zero=True)
    except vocab.AmountError as e:
        c.error(value.src, str(e))
        return None


_SUGGESTIONS = 10          # errors of a file that look for a close name (difflib is slow on many)
_SUGGEST_AMONG = 1000      # names each looks among, the first found that could be close


def _suggest(name: str, known: Iterable[str], c: Collector) -> str:
    if c.count >= _SUGGESTIONS or len(name) > vocab.MAX_NAME_CHARS:
        return ""
    # A ratio of 0.5 needs the shorter name at least a third of the longer one.
    n = len(name)
    near = list(islice((k for k in known if n <= 3 * len(k) and len(k) <= 3 * n), _SUGGEST_AMONG))
    close = difflib.get_close_matches(name, near, n=1, cutoff=0.5)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _fmt_bp(bp: int) -> str:
    d = Decimal(bp) / 100
    return f"{d.normalize():f}%"


# --- pies ----------------------------------------------------------------------------------

class _Compiled(NamedTuple):
    """A compiled slice and the shape of what is below it, so that a `use` never walks it."""

    slice: Slice
    height: int         # levels of nested pies below it (-1 for a security)
    size: int           # slices below it, every `use` expanded


_SECURITY = -1


def _chain(n: int, name: Callable[[int], str], most: int = 6) -> str:
    """'A -> B -> A' for messages: name(0) ... name(n - 1), the middle of a long chain left out
    (a chain is as long as a file makes it)."""
    if n <= most:
        return " -> ".join(name(k) for k in range(n))
    half = most // 2
    return " -> ".join([*(name(k) for k in range(half)), f"... ({n - most} more)",
                        *(name(k) for k in range(n - half, n))])


class _PieCompiler:
    """Compiles each pie declaration once; a `use` reuses the compiled top-level pie.

    A chain of `use`s is as long as a file makes it, so it is not followed by recursion:
    compiling a pie is a generator that yields the name of a top-level pie it uses and is
    sent that pie compiled; `top` drives them with a stack of its own. Recursion is left
    for the pies nested in one declaration, at most MAX_DEPTH deep.
    """

    def __init__(self, c: Collector, decls: dict[str, PieDecl], broken: set[str]):
        self.c = c
        self.decls = decls
        self.broken = broken
        self.done: dict[str, _Compiled | None] = {}
        self.chain: list[str] = []          # the top-level pies being compiled, each using the next
        self.place: dict[str, int] = {}     # their places in the chain

    def top(self, name: str) -> _Compiled | None:
        if name not in self.done:
            runs: list[tuple[str, Generator[str, _Compiled | None, _Compiled | None]]] = []
            want: str | None = name
            value: _Compiled | None = None
            while True:
                if want is not None:
                    if want in self.done:
                        value = self.done[want]
                    else:
                        self.place[want] = len(self.chain)
                        self.chain.append(want)
                        runs.append((want, self._top(want)))
                        value = None
                if not runs:
                    break
                current, run = runs[-1]
                try:
                    want = run.send(value)
                except StopIteration as stop:
                    runs.pop()
                    self.chain.pop()
                    del self.place[current]
                    self.done[current] = value = stop.value
                    want = None
        return self.done[name]

    def _top(self, name: str) -> Generator[str, _Compiled | None, _Compiled | None]:
        decl = self.decls[name]
        if decl.percent is not None:
            self.c.error(decl.percent.src, f'a top-level pie takes no percentage: '
                                           f'remove {decl.percent.text} after "{name}"')
        got = yield from self._pie(decl, FULL, depth=0)
        if got is not None and got.size > vocab.MAX_PIE_SLICES:
            self.c.error(decl.name.src, f'pie "{name}" has {got.size:,} slices once every `use` is expanded; '
                                        f"the limit is {vocab.MAX_PIE_SLICES:,}")
            return None
        return got

    def _pie(self, decl: PieDecl, target: int, depth: int) -> Generator[str, _Compiled | None, _Compiled | None]:
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
        height, size = 0, 0
        for i, s in enumerate(decl.slices):
            name, where = _slice_name(s)
            if name in seen:
                c.error(where, f'"{name}" appears twice in pie "{decl.name.text}" '
                               f"(first at line {seen[name].line}); a slice may appear once per pie")
                ok = False
                continue
            seen[name] = where
            child = yield from self._slice(s, targets[i] if targets else 0, depth)
            if child is None:
                ok = False
            else:
                slices.append(child.slice)
                height, size = max(height, 1 + child.height), size + 1 + child.size
        if not ok or targets is None:
            return None
        return _Compiled(Pie(decl.name.text, target, tuple(slices), source=decl.src), height, size)

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

    def _slice(self, s: SecurityDecl | UseDecl | PieDecl, target: int,
               depth: int) -> Generator[str, _Compiled | None, _Compiled | None]:
        c = self.c
        if isinstance(s, SecurityDecl):
            return _Compiled(Security(s.symbol, target, source=s.src), _SECURITY, 0)
        if isinstance(s, PieDecl):
            if depth + 1 > vocab.MAX_DEPTH:
                c.error(s.name.src, f'pie "{s.name.text}" is nested {depth + 1} levels deep; '
                                    f"the limit is {vocab.MAX_DEPTH}")
                return None
            return (yield from self._pie(s, target, depth + 1))
        name = s.name.text   # use "Name"
        if name not in self.decls:
            if name not in self.broken:
                c.error(s.name.src, f'there is no top-level pie named "{name}" to use'
                                    f"{_suggest(name, self.decls, c)}")
            return None
        if name in self.place:
            i, chain = self.place[name], self.chain     # chain[i:], then back to chain[i]
            cycle = _chain(len(chain) - i + 1, lambda k: f'"{chain[i + k] if i + k < len(chain) else name}"')
            c.error(s.name.src, f"a pie cannot contain itself: {cycle}")
            return None
        used = yield name
        if used is None:
            return None   # its own errors are reported where it is defined
        levels = depth + 1 + used.height
        if levels > vocab.MAX_DEPTH:
            c.error(s.name.src, f'using "{name}" here nests pies {levels} levels deep; '
                                f"the limit is {vocab.MAX_DEPTH}")
            return None
        assert isinstance(used.slice, Pie)
        return used._replace(slice=replace(used.slice, target_bp=target, uses=name, source=s.src))


def _slice_name(s: SecurityDecl | UseDecl | PieDecl) -> tuple[str, Source]:
    if isinstance(s, SecurityDecl):
        return s.symbol, s.src
    return s.name.text, s.name.src


def _long_name(name: Value, c: Collector) -> bool:
    if len(name.text) <= vocab.MAX_NAME_CHARS:
        return False
    c.error(name.src, f"this name has {len(name.text):,} characters; the limit is {vocab.MAX_NAME_CHARS}")
    return True


def _check_name(name: Value, c: Collector) -> bool:
    from rules.names import problem             # the one rule for names (engine/core/names.py)
    if not name.text.strip():
        c.error(name.src, "a pie needs a name")
        return False
    if _long_name(name, c):
        return False
    if "/" in name.text:
        c.error(name.src, f'"{name.text}": a pie name may not contain "/" (it separates slice paths)')
        return False
    wrong = problem(name.text, "a pie name")
    if wrong:
        c.error(name.src, wrong)
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
    total = 0
    for name in decls:
        got = pc.top(name)
        if got is None:
            continue
        total += got.size
        if total > vocab.MAX_FILE_SLICES:
            c.error(decls[name].name.src, f'with pie "{name}" the pies of this file have {total:,} slices once '
                                          f"every `use` is expanded; the limit is {vocab.MAX_FILE_SLICES:,}")
            break
        assert isinstance(got.slice, Pie)
        out[name] = got.slice
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
        self.depth: dict[str, int] = {}         # rule sets of this file in the chain from each, itself included

    def resolve(self, name: str) -> RuleSet | None:
        # Down the chain of bases to one resolved, standard or unknown (or back into the
        # chain), then each resolved on its base, upwards: no recursion per `extends`.
        chain: list[str] = []
        place: dict[str, int] = {}
        at: str | None = name
        while at is not None and at not in self.done and at not in place:
            place[at] = len(chain)
            chain.append(at)
            base_name = self._base_name(at)
            at = base_name if base_name in self.decls else None
        for i in reversed(range(len(chain))):
            self.done[chain[i]] = self._resolve(chain, i, place)
        return self.done[name]

    def _base_name(self, name: str) -> str | None:
        decl = self.decls[name]
        return decl.extends.text if decl.extends else (self.default_base if name != self.default_base else None)

    def _resolve(self, chain: list[str], i: int, place: dict[str, int]) -> RuleSet | None:
        """chain[i], whose base is resolved unless it is chain[i] or above (a cycle)."""
        name = chain[i]
        decl = self.decls[name]
        c = self.c
        base: RuleSet | None = None
        base_name = self._base_name(name)
        ok = True
        self.depth[name] = 1
        if base_name is not None:
            if place.get(base_name, i + 1) <= i:
                through = _chain(i + 2, lambda k: chain[k] if k <= i else base_name)
                c.error(decl.extends.src if decl.extends else decl.name.src,
                        f'rules "{name}" cannot extend itself (through {through})')
                ok = False
            elif base_name in self.decls:
                base = self.done[base_name]
                self.depth[name] = self.depth[base_name] + 1
                ok = base is not None
                if ok and self.depth[name] > vocab.MAX_EXTENDS:
                    c.error(decl.extends.src if decl.extends else decl.name.src,
                            f'rules "{name}" begin a chain of {self.depth[name]} rule sets in this file, '
                            f"each extending the next; the limit is {vocab.MAX_EXTENDS}")
                    ok = False
            elif base_name in self.external:
                base = self.external[base_name]
            else:
                where = decl.extends.src if decl.extends else decl.name.src
                known = chain_names(self.decls, self.external)
                c.error(where, f'there are no rules named "{base_name}" to extend{_suggest(base_name, known, c)}')
                ok = False
        if _long_name(decl.name, c):
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
                                   f"{_suggest(event.text, vocab.EVENTS, c).replace(chr(34), chr(39))}")
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
        if st.kind in _ONE_WORD:
            return _one_word(st, fields, c)
        raise AssertionError(st.kind)


# Rules of one word after their keyword (`lots fifo`, `avoid wash-sales`): the words each
# takes, what a wrong word is told ("choose ..."), the RuleSet field the word sets (the
# word itself; True when there is only one word to say) and the statement's name.
_ONE_WORD: dict[str, tuple[tuple[str, ...], str, str, str]] = {
    "lots": (vocab.LOT_METHODS, "choose", "lot_method", "lots"),
    "avoid": (("wash-sales",), "the only thing to avoid is", "avoid_wash_sales", "avoid wash-sales"),
}


def _one_word(st: RuleStmt, fields: dict[str, object], c: Collector) -> str | None:
    words, told, field, said = _ONE_WORD[st.kind]
    word = st.words[0]
    if word.text not in words:
        c.error(word.src, f"'{st.kind} {word.text}': {told} {vocab.one_of(list(words))}")
        return None
    if len(st.words) > 1:
        c.error(st.words[1].src, f"'{st.kind} {word.text}' takes one word; '{st.words[1].text}' is one word too many")
        return None
    fields[field] = word.text if len(words) > 1 else True
    return said


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

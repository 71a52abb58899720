"""Policies in the service layer: the one door every front end (CLI, API, console, daemon)
goes through to plan or apply a policy file, open or move an account on it, and read the
policy an account follows.

- A policy file is identified by its resolved path (`resolve`: absolute, `..` and symlinks
  resolved), stored as such: `rules/examples/growth.pie` typed in the project and
  `../growth.pie` typed in `examples/` name one policy, from any working directory.
- Each version is compiled once per process (`COMPILER`, keyed by the text's hash and
  file) whoever asks: the window, the accounts list, a plan.
- The core (`engine.core.policy_change.plan_change`) is the only decision of what a change
  liquidates; `apply` writes exactly the plan it computes, in shards: each shard of
  followers is planned and written in one short transaction of a few bulk statements, so
  neither the window nor an operator's deposit waits for more than a moment, and an apply
  that stops half way is finished by running it again (the moved accounts are not
  followers of an older version any more; each shard is whole or absent).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import rules as policy_lang
from adapters.ledger import policy_repo as repo
from adapters.ledger.store import Ledger, LedgerError
from engine.core.action_policy import stale_names as stale_slices, symbol_changes
from engine.core.errors import Refused
from engine.core.policy_change import ChangePlan, Follower, plan_change, retargets
from rules.model import Pie, Policy, RuleSet, Security

if TYPE_CHECKING:
    from sqlalchemy.engine import Row as PolicyVersion      # a policy_versions row (adapters/ledger/tables.py)

SHARD = 500              # followers per apply transaction
YIELD = 0.1              # seconds between two shards on SQLite: its waiting writers poll up to every 100 ms
Prices = Callable[[list[str]], Mapping[str, Decimal]]


def resolve(path: str | os.PathLike) -> str:
    """The identity of a policy file: its absolute path with `~`, `..` and symlinks
    resolved (relative paths start at the working directory: resolve at the door)."""
    try:
        return os.path.realpath(os.path.expanduser(os.fspath(path)))
    except ValueError:                       # an embedded NUL: no file can have that name
        raise Refused(f"{str(path)[:100]!r} is not a file name") from None


def sha_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read(path: str | os.PathLike) -> tuple[str, str]:
    """(resolved path, text) of a policy file; a missing or unreadable file is a PolicyError."""
    file = resolve(path)
    return file, policy_lang.read_policy_text(file)


class Compiler:
    """Compiled policies, one per (text hash, file), the newest `size` kept. Thread-safe:
    the API serves requests on threads."""

    def __init__(self, size: int = 256):
        self.size = size
        self._policies: OrderedDict[tuple[str, str], Policy] = OrderedDict()
        self._rules: dict[tuple[str, str, str], RuleSet | None] = {}
        self._lock = threading.Lock()
        self.compiled = 0                 # how many times text was compiled (tests read it)

    def policy(self, text: str, file: str, sha: str | None = None) -> Policy:
        key = (sha or sha_of(text), file)
        with self._lock:
            found = self._policies.get(key)
            if found is not None:
                self._policies.move_to_end(key)
                return found
        policy = policy_lang.compile_text(text, file)        # PolicyError: nothing cached
        with self._lock:
            self.compiled += 1
            self._policies[key] = policy
            while len(self._policies) > self.size:
                old, _ = self._policies.popitem(last=False)
                for k in [k for k in self._rules if k[:2] == old]:
                    del self._rules[k]
        return policy

    def version(self, v: PolicyVersion) -> Policy:
        return self.policy(v.text, v.file, v.sha256)

    @staticmethod
    def symbols(pie: Pie) -> set[str]:
        """The securities a pie holds, at any depth."""
        return {sl.symbol for _, sl in pie.walk() if isinstance(sl, Security)}

    def ruleset(self, policy: Policy, name: str, sha: str | None = None) -> RuleSet | None:
        """The rule set `name` of a policy (its own or a standard one), or None."""
        if sha is None:
            return policy_lang.find_rules(name, policy)
        key = (sha, policy.file, name)
        with self._lock:
            if key in self._rules:
                return self._rules[key]
        found = policy_lang.find_rules(name, policy)
        with self._lock:
            self._rules[key] = found
        return found


COMPILER = Compiler()


# --- plan and apply ---------------------------------------------------------------------------

def _followers(s, path: str, rows: Sequence[repo.FollowerRow], compiler: Compiler, new: Policy,
               to_pie: str | None = None) -> tuple[dict[int, Policy], list[Follower]]:
    """The core's view of followers: the versions they follow (compiled) and, for those
    whose targets `new` changes (the others cannot liquidate), what they hold."""
    followed = {vid: compiler.version(v) for vid, v in repo.versions_by_id(s, {r.version_id for r in rows}).items()}
    changes = {(vid, pie): retargets(followed[vid], new, pie, to_pie)      # once per version and pie
               for vid, pie in {(r.version_id, r.pie) for r in rows}}
    ids = [r.id for r in rows if changes[(r.version_id, r.pie)]]
    held = repo.holdings(s, ids)
    queued = repo.queued_liquidations(s, ids)
    return followed, [Follower(r.name, r.pie, r.rules, r.version_id, tuple(held.get(r.id, ())),
                               frozenset(queued.get(r.id, ()))) for r in rows]


def plan(ledger: Ledger, path: str | os.PathLike, text: str, prices: Prices,
         compiler: Compiler = COMPILER) -> ChangePlan:
    """What applying `text` to the policy file `path` would do, writing nothing: the core's
    plan of it (compile errors raise PolicyError). `prices` is asked only for the symbols
    that would be sold, sorted."""
    path = resolve(path)
    policy = compiler.policy(text, path)
    sha = sha_of(text)
    with ledger.read() as s:
        followed, followers = _followers(s, path, repo.followers(s, path), compiler, policy)
        latest = repo.latest_version(s, path)
        baseline = (latest.id, compiler.version(latest)) if latest is not None and not followed else None
        versions = {vid: v.sha256 for vid, v in repo.versions_by_id(s, followed).items()}
    changed = any(v != sha for v in versions.values()) if versions else (latest is None or latest.sha256 != sha)
    draft = plan_change(path, sha, policy, followed, followers, {}, baseline=baseline, changed=changed)
    symbols = sorted({sym for sym, _, _ in draft.totals})          # price only what would be sold
    if not symbols:
        return draft
    return plan_change(path, sha, policy, followed, followers, prices(symbols), baseline=baseline, changed=changed)


@dataclass(frozen=True)
class Applied:
    version: PolicyVersion
    queued: list[str]               # "target_change NAME", "liquidation NAME PATH", by account id per shard
    accounts: int = 0               # accounts moved to the version
    liquidations: int = 0

    def __iter__(self):             # `version, queued = apply(...)`, as the ledger's old apply
        return iter((self.version, self.queued))

    def __getitem__(self, i: int):
        return (self.version, self.queued)[i]


def _unique(base: str, taken: set[str]) -> str:
    """`base`, or `base:2`, `base:3`... when a change back and forth used it already."""
    key, n = base, 2
    while key in taken:
        key, n = f"{base}:{n}", n + 1
    taken.add(key)
    return key


def apply(ledger: Ledger, path: str | os.PathLike, text: str, *, source: str = "cli",
          compiler: Compiler = COMPILER, shard: int = SHARD,
          on_shard: Callable[[int, float], None] | None = None) -> Applied:
    """Compile `text` (a compile error raises PolicyError and writes nothing) and move the
    accounts following the file `path` to it. A version is recorded once per distinct text;
    applying a text the accounts follow already changes nothing, and applying an older
    text again (a rollback) moves them back to that version. Each follower whose pie
    changes gets a target-change event and a liquidation for each slice the core's plan
    liquidates (`ChangePlan.liquidated`): what `plan` showed, exactly."""
    path = resolve(path)
    policy = compiler.policy(text, path)
    sha = sha_of(text)
    with ledger.read() as s:             # compiled before the ledger is held, not while
        for vid in sorted({vid for vid, _ in repo.follows(s, path)}):
            compiler.version(repo.version(s, vid))
    started = time.perf_counter()
    with ledger.tx() as s:
        gone = {pie: names for pie, names in repo.follower_pies(s, path).items() if pie not in policy.pies}
        if gone:
            pie = sorted(gone)[0]
            raise LedgerError(f"{path}: pie {pie!r} is gone but accounts follow it ({', '.join(gone[pie])}); "
                              f"move them first")
        latest = repo.latest_version(s, path)
        anyone = bool(repo.followers(s, path, limit=1))
        if not anyone and latest is not None and latest.sha256 == sha:
            return Applied(latest, [])
        version = repo.ensure_version(s, path, text, sha)
        if anyone and not repo.followers(s, path, not_on=version.id, limit=1):
            return Applied(version, [])
        apply_id = repo.start_apply(s, version.id, source)
        # Followers whose targets stay the same only change version: one statement per
        # version they are on, however many they are. The others go shard by shard.
        same: dict[int, list[str]] = {}
        for vid, pie in repo.follows(s, path):
            if vid != version.id and not retargets(compiler.version(repo.version(s, vid)), policy, pie):
                same.setdefault(vid, []).append(pie)
        unchanged = sum(repo.move_all(s, vid, pies, version.id) for vid, pies in sorted(same.items()))
        repo.count_apply(s, apply_id, unchanged, 0)
    if on_shard is not None:
        on_shard(unchanged, time.perf_counter() - started)
    queued: list[str] = []
    moved, liquidations = unchanged, 0
    while True:
        with ledger.tx() as s:
            rows = repo.followers(s, path, not_on=version.id, limit=shard, lock=True)
            started = time.perf_counter()   # the ledger is held from here (SQLite: from BEGIN)
            if not rows:
                break
            q, n = _apply_shard(s, path, sha, policy, version.id, rows, compiler)
            repo.count_apply(s, apply_id, len(rows), n)
        if on_shard is not None:
            on_shard(len(rows), time.perf_counter() - started)     # (accounts, seconds held)
        if ledger.engine.dialect.name == "sqlite":
            time.sleep(YIELD)               # let a deposit or the window's step in before the next shard
        queued += q
        moved += len(rows)
        liquidations += n
    return Applied(version, queued, moved, liquidations)


def _apply_shard(s, path: str, sha: str, policy: Policy, version_id: int, rows: Sequence[repo.FollowerRow],
                 compiler: Compiler) -> tuple[list[str], int]:
    """Plan one shard of followers with the core and write its decision: the accounts move
    to the version, and those whose pie changes get their events."""
    gone = sorted(r.name for r in rows if r.pie not in policy.pies)
    if gone:                      # moved to a dropped pie since the check: nothing of this shard
        raise LedgerError(f"{path}: accounts follow a pie this text drops ({', '.join(gone)}); move them first")
    followed, followers = _followers(s, path, rows, compiler, policy)
    decided = plan_change(path, sha, policy, followed, followers, {})
    taken = repo.taken_keys(s, [r.id for r in rows])
    events: list[tuple[int, str, str, str | None]] = []
    queued: list[str] = []
    liquidated = decided.liquidated()
    retargeted = set(decided.retargeted)
    for r in rows:                                      # by account id, as the accounts were read
        if r.name not in retargeted:
            continue
        aid, name = r.id, r.name
        events.append((aid, _unique(f"target-change:{aid}:{version_id}", taken), "target_change", None))
        queued.append(f"target_change {name}")
        for x in liquidated.get(name, ()):
            events.append((aid, _unique(f"liquidation:{aid}:{version_id}:{x.path}", taken), "liquidation", x.path))
            queued.append(f"liquidation {name} {x.path}")
    repo.move(s, [r.id for r in rows], version_id)
    repo.add_events(s, events)
    return queued, sum(len(v) for v in liquidated.values())


# --- what an account follows -------------------------------------------------------------------

def policy_of(ledger: Ledger, name: str, compiler: Compiler = COMPILER):
    """(account row, its pie, its policy) of an account by name."""
    with ledger.tx() as s:
        acct = ledger._account(s, name)
        v = repo.version(s, acct.policy_version_id)
    policy = compiler.version(v)
    return acct, policy.pies[acct.pie], policy


def _check_target(compiler: Compiler, policy: Policy, sha: str, pie: str, rules: str) -> None:
    if pie not in policy.pies:
        raise LedgerError(f"{policy.file}: no pie named {pie!r} (pies: {', '.join(sorted(policy.pies))})")
    if compiler.ruleset(policy, rules, sha) is None:
        raise LedgerError(f"no rule set named {rules!r} (known: {', '.join(policy_lang.rule_names(policy))})")


def add_account(ledger: Ledger, name: str, pie: str, policy_file: str | os.PathLike, *, rules: str = "m1",
                broker: str = "main", owner: str | None = None, compiler: Compiler = COMPILER):
    """Open an account on `pie` of the policy file's current text (its resolved path).
    Everything is checked before anything is written; other accounts following the file
    are not moved (that is `policy apply`'s to do, with its plan)."""
    file, text = read(policy_file)
    sha = sha_of(text)
    _check_target(compiler, compiler.policy(text, file, sha), sha, pie, rules)
    return ledger.add_account(name, pie, file, text, sha, rules=rules, broker=broker, owner=owner)


def add_accounts(ledger: Ledger, rows: Sequence[Mapping[str, str]], *, label: Callable[[int], str] = str,
                 broker: str = "main", policy_file: str | None = None,
                 compiler: Compiler = COMPILER) -> list[tuple[str, bool]]:
    """Open many accounts at once, all or none, every mistake listed by `label(row index)`:
    each row's name (the one rule for names), pie and rule set are checked against its
    policy file's current text (`policy`, default `policy_file`), each file read and
    compiled once; then the ledger checks the rows against the accounts it holds
    (Ledger.add_accounts: idempotent by name)."""
    from adapters.ledger.store import account_name
    errors: list[tuple[int, str]] = []
    wanted: list[tuple[int, str, str, str, str, str, str, str]] = []
    read_once: dict[str, tuple[str, str, str, Policy]] = {}
    seen: set[str] = set()
    for i, row in enumerate(rows):
        try:
            unknown = set(row) - {"name", "pie", "policy", "rules", "broker"}
            if unknown:
                raise LedgerError(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")
            name = account_name((row.get("name") or "").strip())
            if name in seen:
                raise LedgerError(f"account {name!r} appears twice")
            seen.add(name)
            pie = (row.get("pie") or "").strip()
            if not pie:
                raise LedgerError(f"account {name!r} needs a pie")
            asked = (row.get("policy") or "").strip() or policy_file
            if not asked:
                raise LedgerError(f"account {name!r} needs a policy file (none in the settings)")
            rules = (row.get("rules") or "").strip() or policy_lang.DEFAULT_RULES
            if asked not in read_once:
                file, text = read(asked)
                sha = sha_of(text)
                read_once[asked] = (file, text, sha, compiler.policy(text, file, sha))
            file, text, sha, policy = read_once[asked]
            _check_target(compiler, policy, sha, pie, rules)
            wanted.append((i, name, pie, file, text, sha, rules, (row.get("broker") or "").strip() or broker))
        except (LedgerError, policy_lang.PolicyError) as e:
            errors.append((i, f"{label(i)}: {str(e).splitlines()[0]}"))
    return ledger.add_accounts(wanted, errors, label=label)


def move_account(ledger: Ledger, name: str, pie: str, policy_file: str | os.PathLike | None = None,
                 rules: str | None = None, compiler: Compiler = COMPILER) -> list[str]:
    """A target change: the account follows `pie` (of `policy_file`, or of the version it
    follows now) with `rules` (or its own). The core's plan decides what it liquidates
    (held slices the new pie does not hold), as for a policy apply; everything else waits
    for the next cash event or rebalance. Returns what was queued."""
    new = read(policy_file) if policy_file is not None else None
    with ledger.tx() as s:
        acct = ledger._account(s, name, lock=True)
        ledger._check_open(acct)
        current = repo.version(s, acct.policy_version_id)
        file, text = new or (current.file, current.text)
        sha = sha_of(text)
        policy = compiler.policy(text, file, sha)
        rules = rules or acct.rules
        _check_target(compiler, policy, sha, pie, rules)
        version = repo.ensure_version(s, file, text, sha)
        if (acct.pie, acct.policy_version_id, acct.rules) == (pie, version.id, rules):
            return []
        row = repo.FollowerRow(acct.id, acct.name, acct.pie, acct.rules, acct.policy_version_id)
        followed, (follower,) = _followers(s, file, [row], compiler, policy, pie)
        decided = plan_change(file, sha, policy, followed, [replace(follower, to_pie=pie)], {})
        acct.pie, acct.policy_version_id, acct.rules = pie, version.id, rules
        if not decided.retargeted:
            return []
        taken = repo.taken_keys(s, [acct.id])
        events = [(acct.id, _unique(f"target-change:{acct.id}:{version.id}", taken), "target_change", None)]
        queued = [f"target_change {name}"]
        for x in decided.liquidated().get(name, ()):
            events.append((acct.id, _unique(f"liquidation:{acct.id}:{version.id}:{x.path}", taken),
                           "liquidation", x.path))
            queued.append(f"liquidation {name} {x.path}")
        s.flush()
        repo.add_events(s, events)
        return queued


def rebalance_check(compiler: Compiler = COMPILER) -> Callable:
    """The ledger's check of a rebalance's path (inside its transaction): a nested pie of
    the pie the account follows, or a one-line refusal."""
    def check(acct, version: PolicyVersion, path: str) -> None:
        found = compiler.version(version).pies[acct.pie].find(path)
        if not isinstance(found, Pie):
            what = "a security, not a pie" if found is not None else "not a pie of " + repr(acct.pie)
            raise LedgerError(f"cannot rebalance {path!r} of {acct.name!r}: it is {what}")
    return check


def rebalance(ledger: Ledger, name: str, path: str = "", key: str | None = None, compiler: Compiler = COMPILER):
    """Queue a rebalance of an account (or of its nested pie `path`)."""
    return ledger.rebalance(name, path, key, check=rebalance_check(compiler))


def apply_file(ledger: Ledger, path: str | os.PathLike, *, source: str = "cli",
               compiler: Compiler = COMPILER) -> Applied:
    """Apply a policy file's current text (see `apply`)."""
    file, text = read(path)
    return apply(ledger, file, text, source=source, compiler=compiler)


def stale_names(ledger: Ledger, path: str | os.PathLike, text: str | None = None,
                compiler: Compiler = COMPILER) -> list[str]:
    """Warnings for the slices of a policy file that name a symbol a corporate action
    renamed or removed (the ledger's record of applied actions, every broker account's):
    `growth.pie:7: SQ was renamed XYZ on 2026-03-05; the policy still says SQ`."""
    path = resolve(path)
    if text is None:
        _, text = read(path)
    policy = compiler.policy(text, path)
    from adapters.ledger.window_repo import applied_actions     # the window's SQL: only when a policy is checked
    with ledger.read() as s:
        actions = applied_actions(s, None)
    return stale_slices(policy.pies, symbol_changes(actions)) if actions else []

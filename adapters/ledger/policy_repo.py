"""Policy versions and the accounts that follow a policy file: rows in, rows out.

No policy is compiled here and nothing is decided: the service layer
(engine/shell/policies.py) compiles each version once, lets the core decide what a change
liquidates (engine.core.policy_change) and hands the decision back to be written. Every
function works inside the caller's transaction (`Ledger.tx()`), reads and writes in bulk
(one statement per kind of row, however many followers), and identifies a file by the
resolved path the service layer stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Sequence

from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Row

from . import bulk
from .tables import accounts as A, events as E, holdings as H, policy_applies as PA, policy_versions as PV, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

WAITING = ("pending", "planned")       # a liquidation in these states is not queued twice


@dataclass(frozen=True, slots=True)
class FollowerRow:
    id: int
    name: str
    pie: str
    rules: str
    version_id: int


def _following(path: str):
    return (select(A.c.id, A.c.name, A.c.pie, A.c.rules, A.c.policy_version_id)
            .join(PV, A.c.policy_version_id == PV.c.id)
            .where(PV.c.file == path, A.c.is_house.is_(False), A.c.status != "closed"))


def followers(s: Session, path: str, *, not_on: int | None = None, limit: int | None = None,
              lock: bool = False) -> list[FollowerRow]:
    """Open accounts following a version of the file `path`, by id: only those not on
    version `not_on` yet (what an apply still has to move), at most `limit` of them."""
    q = _following(path)
    if not_on is not None:
        q = q.where(A.c.policy_version_id != not_on)
    q = q.order_by(A.c.id)
    if limit is not None:
        q = q.limit(limit)
    if lock:
        q = q.with_for_update(of=A)
    return [FollowerRow(*r) for r in s.execute(q)]


def follower_pies(s: Session, path: str) -> dict[str, list[str]]:
    """pie -> names of the open accounts following the file with it (by name)."""
    out: dict[str, list[str]] = {}
    for _, name, pie, _, _ in s.execute(_following(path).order_by(A.c.name)):
        out.setdefault(pie, []).append(name)
    return out


def holdings(s: Session, ids: Sequence[int]) -> dict[int, list[tuple[str, str, Decimal]]]:
    """account id -> (path, symbol, shares) of what it holds (shares > 0), by path."""
    out: dict[int, list[tuple[str, str, Decimal]]] = {}
    if not ids:
        return out
    q = select(H.c.account_id, H.c.path, H.c.symbol, H.c.shares) \
        .where(bulk.id_in(s, H.c.account_id, ids)).order_by(H.c.account_id, H.c.path)
    for aid, path, symbol, shares in s.execute(q):
        if shares > 0:
            out.setdefault(aid, []).append((path, symbol, shares))
    return out


def queued_liquidations(s: Session, ids: Sequence[int]) -> dict[int, set[str]]:
    """account id -> the slice paths with a liquidation pending or planned already."""
    out: dict[int, set[str]] = {}
    if not ids:
        return out
    q = select(E.c.account_id, E.c.path).where(bulk.id_in(s, E.c.account_id, ids),
                                                   E.c.kind == "liquidation", E.c.status.in_(WAITING))
    for aid, path in s.execute(q):
        out.setdefault(aid, set()).add(path)
    return out


def taken_keys(s: Session, ids: Sequence[int]) -> set[str]:
    """Keys of the policy-change events (target changes, liquidations) of these accounts."""
    if not ids:
        return set()
    return set(s.scalars(select(E.c.key).where(bulk.id_in(s, E.c.account_id, ids),
                                                 E.c.kind.in_(("target_change", "liquidation")))))


def version(s: Session, version_id: int) -> Row | None:
    return s.execute(select(PV).where(PV.c.id == version_id)).first()


def versions_by_id(s: Session, ids: Iterable[int]) -> dict[int, Row]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    return {v.id: v for v in s.execute(select(PV).where(PV.c.id.in_(ids)))}


def latest_version(s: Session, path: str) -> Row | None:
    return s.execute(select(PV).where(PV.c.file == path)
                     .order_by(PV.c.id.desc()).limit(1)).first()


def find_version(s: Session, path: str, sha: str) -> Row | None:
    return s.execute(select(PV).where(PV.c.file == path, PV.c.sha256 == sha)).first()


def ensure_version(s: Session, path: str, text: str, sha: str) -> Row:
    """The version of this file with this text: found, or recorded now."""
    found = find_version(s, path, sha)
    if found is None:
        s.execute(insert(PV).values(file=path, sha256=sha, text=text))
        found = find_version(s, path, sha)
    return found


def move(s: Session, ids: Sequence[int], version_id: int) -> int:
    """Point the accounts `ids` at version `version_id`: one statement."""
    if not ids:
        return 0
    return s.execute(update(A).where(bulk.id_in(s, A.c.id, ids)).values(policy_version_id=version_id)
                     .execution_options(synchronize_session=False)).rowcount


def add_events(s: Session, rows: Iterable[tuple[int, str, str, str | None]]) -> int:
    """Pending events (account id, key, kind, path), written in bulk."""
    now = utcnow()
    return bulk.insert_rows(s, E, ("account_id", "key", "kind", "path", "status", "created_at"),
                            ((aid, key, kind, path, "pending", now) for aid, key, kind, path in rows))


def start_apply(s: Session, version_id: int, source: str) -> int:
    return s.execute(insert(PA).values(version_id=version_id, source=source, accounts=0, liquidations=0)
                     ).inserted_primary_key[0]


def count_apply(s: Session, apply_id: int, accounts: int, liquidations: int) -> None:
    """Add a shard's moved accounts and queued liquidations to its apply's row."""
    s.execute(update(PA).where(PA.c.id == apply_id)
              .values(accounts=PA.c.accounts + accounts, liquidations=PA.c.liquidations + liquidations)
              .execution_options(synchronize_session=False))


def follower_count(s: Session, version_id: int) -> int:
    return s.scalar(select(func.count()).select_from(A).where(A.c.policy_version_id == version_id,
                                                                    A.c.is_house.is_(False)))


def follows(s: Session, path: str) -> list[tuple[int, str]]:
    """The distinct (version, pie) pairs the open accounts following the file are on."""
    q = _following(path).with_only_columns(A.c.policy_version_id, A.c.pie).distinct()
    return sorted((v, p) for v, p in s.execute(q))


def move_all(s: Session, from_version: int, pies: Sequence[str], to_version: int) -> int:
    """Point every open account on `pies` of `from_version` at `to_version`: one statement."""
    if not pies:
        return 0
    return s.execute(update(A).where(A.c.policy_version_id == from_version, A.c.pie.in_(list(pies)),
                                           A.c.is_house.is_(False), A.c.status != "closed")
                     .values(policy_version_id=to_version).execution_options(synchronize_session=False)).rowcount

"""The ledger: accounts, policy versions, holdings and events in a real database.

Every public method is one transaction: it either commits all of its changes or none. A
user's mistake raises `LedgerError` with one line that names the account, value or file at
fault, before anything is written. Events carry an idempotency key; recording the same key
twice returns the first event (concurrent writers included: the key is UNIQUE).
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event, func, insert, select, true, update
from sqlalchemy import text as sql
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from engine.core.admission import AccountRoom, HouseCash, admit_deposit, admit_withdrawal
from engine.core.drift import MissingPrice, slice_values
from engine.core.errors import Conflict, NotFound, Refused, Unavailable
from engine.core.money import MAX_CENTS, MoneyError, cents, dollars, fmt, parse_dollars
from engine.core.names import InvalidName, check_name

from . import migrate, window_reports
from .tables import accounts as A, events as E, holdings as H, policy_applies, policy_versions as PV

if TYPE_CHECKING:               # the ORM is imported by the methods that load objects, not by every command
    from sqlalchemy.orm import Session

    from .schema import Account, Event, PolicyVersion

ZERO = Decimal("0")
EVENT_KINDS = ("deposit", "withdrawal", "dividend", "rebalance", "target_change", "liquidation", "close",
               "corporate_action")


LedgerError = Refused        # its old name: a user's mistake, one line, nothing written (engine/core/errors.py)


class LedgerConflict(Conflict):
    """Another process holds what this needs (a window running on the same broker account,
    a daemon on the same ledger): the message names the holder; nothing was written and
    the same command can be tried again once the holder is done (HTTP 409)."""


class LedgerUnavailable(Unavailable):
    """The ledger's database cannot be reached (a server outage): one line; nothing is
    lost and the command can be run again once it is back (CLI exit 75; HTTP 503)."""


def parse_amount(amount: str | Decimal, what: str = "amount") -> Decimal:
    """An event's amount as the ledger stores it. The front ends hand over a Decimal they
    parsed already; text (a CSV row, a script) goes through the one parser,
    engine.core.money.parse_dollars. Either way: positive whole cents, at most a billion."""
    try:
        if isinstance(amount, Decimal):
            if not (amount.is_finite() and 0 < amount <= dollars(MAX_CENTS)):
                raise MoneyError(f"{what} {amount} is not a positive amount up to ${fmt(MAX_CENTS, commas=True)}")
            try:
                return dollars(cents(amount))
            except ValueError:
                raise MoneyError(f"{what} {amount} has fractions of a cent") from None
        return dollars(parse_dollars(amount, what=what))
    except MoneyError as e:
        raise LedgerError(str(e)) from None


def engine_for(url: str) -> Engine:
    """An engine with the settings both databases need for concurrent writers."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"timeout": 30, "isolation_level": None})

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi, _record):  # noqa: ANN001
            cur = dbapi.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(eng, "begin")
        def _begin(conn):  # noqa: ANN001
            # Take the write lock up front: two writers never both read, then fail to upgrade.
            # A read-only transaction (Ledger.read) reads a snapshot and blocks no writer.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("pies_read_only") else "BEGIN IMMEDIATE")
        return eng
    return create_engine(url, pool_pre_ping=True)


def database_trouble(e: BaseException, url: str) -> Exception:
    """What a failure of the database means to the person who ran the command, in one
    line: a ledger that cannot be written (a read-only data directory or file: theirs to
    fix, LedgerError) or one that cannot be reached now (a server outage, a lock held too
    long: LedgerUnavailable, try again; nothing was written by the failed transaction)."""
    first = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0][:200]
    where = url.split("@")[-1].split("?")[0]        # never the credentials nor the options
    if url.startswith("sqlite") and any(w in first.lower() for w in ("readonly", "read-only", "unable to open",
                                                                     "disk i/o error", "permission")):
        return LedgerError(f"cannot write the ledger at {where}: {first} (is its directory read-only?)")
    return LedgerUnavailable(f"the ledger's database at {where} is unavailable: {first}; "
                             f"nothing was lost, run the command again once it is back")


@dataclass(frozen=True)
class AccountRows:
    """Accounts with what valuing them needs, read in one transaction."""
    total: int                                               # how many match (all pages)
    total_exact: bool                                        # False: `total` is an estimate (see count_accounts)
    accounts: list[Account]
    holdings: dict[int, dict[str, tuple[str, Decimal]]]      # account id -> path -> (symbol, shares)
    pending: dict[int, int]                                  # account id -> pending events
    policies: dict[int, tuple[str, str]]                     # version id -> (file, text)


@dataclass(frozen=True)
class Recorded:
    event_id: int
    created: bool            # False: the key was already recorded; this is the first event


def account_name(name: str) -> str:
    """A name a new account may have: the one rule for names, and not the house's prefix."""
    try:
        check_name(name, "account name")
    except InvalidName as e:
        raise LedgerError(str(e)) from None
    if name.startswith("house:"):
        raise LedgerError(f"account name {name!r} is not allowed ('house:...' is the broker's own)")
    return name


def owner_name(owner: str, account: str) -> str | None:
    """An owner id by the one rule for names; the account's own name is stored as None
    (an account owns itself unless told otherwise)."""
    try:
        owner = account_name(owner.strip())
    except LedgerError as e:
        raise LedgerError(str(e).replace("account name", "owner")) from None
    return None if owner == account else owner


class LedgerMissing(LedgerError):
    """A read on a ledger that does not exist: nothing was created."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite ledger (None in memory or for a server database)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1] if "///" in url else ""
    return Path(path.split("?", 1)[0]).expanduser() if path and path != ":memory:" else None


class Ledger:
    """`create=False` (read commands): a ledger that does not exist yet is LedgerMissing and
    nothing is created, not even its directory (a typo'd data directory is not a new, empty
    ledger). Otherwise a new ledger is created and migrated; `created` says so."""

    def __init__(self, url: str, *, upgrade: bool = True, create: bool = True):
        self.url = url
        self.created = False
        path = sqlite_path(url)
        if path is not None and not (path.exists() and path.stat().st_size > 0):
            if not create:
                raise LedgerMissing(f"no ledger at {path}: nothing was created (is PIES_DATA_DIR or the database "
                                    f"URL right?); `pies db init` creates one, as does the first command that "
                                    f"records something")
            self.created = upgrade
        self.engine = engine_for(url)
        try:
            if path is None and not create and migrate.current(self.engine) is None:
                raise LedgerMissing(f"no ledger in {url.split('@')[-1].split('?')[0]}: its schema is empty "
                                    f"(is the database URL right?); `pies db init` creates the tables")
            if upgrade and not migrate.up_to_date(self.engine):
                before, _ = migrate.upgrade(self.engine)
                self.created = before is None
        except (OperationalError, InterfaceError) as e:
            self.engine.dispose()
            raise database_trouble(e, url) from None
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = self._readers = None          # ORM sessions, made when first asked (tx, read)

    @contextmanager
    def tx(self, *, autoflush: bool = True) -> Iterator[Session]:
        """One transaction: commit on success, roll back everything on any error. A database
        that cannot be reached or written is one line (database_trouble), not a traceback.

        The window turns autoflush off: it reads and writes thousands of rows per step and
        flushes once at the end instead of before every query."""
        if self._sessions is None:
            self._make_sessions()
        try:
            with self._sessions(autoflush=autoflush) as s, s.begin():
                yield s
        except (OperationalError, InterfaceError) as e:
            raise database_trouble(e, self.url) from None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction that only reads: one consistent snapshot, and on SQLite without
        the write lock (writers go on meanwhile). Writing in it is a mistake."""
        if self._readers is None:
            self._make_sessions()
        with self._readers() as s, s.begin():
            yield s

    def _make_sessions(self) -> None:
        from sqlalchemy.orm import sessionmaker           # the ORM: only for the methods that load objects
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(self.engine.execution_options(pies_read_only=True), expire_on_commit=False)

    @contextmanager
    def conn(self, *, read_only: bool = False) -> Iterator[Connection]:
        """One transaction over SQLAlchemy Core (tables.py: rows as named tuples, no ORM):
        what a command that reads or writes a few rows uses. Commits on success, rolls back
        on any error; `read_only` as `read`; a database that cannot be reached is one line."""
        eng = self.engine.execution_options(pies_read_only=True) if read_only else self.engine
        try:
            with eng.begin() as c:
                yield c
        except (OperationalError, InterfaceError) as e:
            raise database_trouble(e, self.url) from None

    def dispose(self) -> None:
        self.engine.dispose()

    # --- policies (rows: engine/shell/policies.py compiles, plans and applies them) -------------

    def versions(self, path: str | None = None) -> list[tuple[Row, list[Row], int]]:
        """Policy versions (of one file, or all), oldest first, with their applies and how
        many accounts follow each now: three queries, whatever the number of versions."""
        with self.conn(read_only=True) as c:
            q = select(PV).order_by(PV.c.id)
            if path:
                q = q.where(PV.c.file == path)
            versions = list(c.execute(q))
            applies: dict[int, list[Row]] = {v.id: [] for v in versions}
            for a in c.execute(select(policy_applies).order_by(policy_applies.c.id)):
                if a.version_id in applies:
                    applies[a.version_id].append(a)
            followers = dict(c.execute(select(A.c.policy_version_id, func.count())
                                       .where(A.c.is_house.is_(False), A.c.policy_version_id.is_not(None))
                                       .group_by(A.c.policy_version_id)).all())
            return [(v, applies[v.id], followers.get(v.id, 0)) for v in versions]

    def version(self, version_id: int) -> Row:
        with self.conn(read_only=True) as c:
            v = c.execute(select(PV).where(PV.c.id == version_id)).first()
            if v is None:
                raise NotFound(f"no policy version {version_id}")
            return v

    # --- accounts -------------------------------------------------------------------------

    def ensure_house(self, broker: str, cash: Decimal, positions: Mapping[str, Decimal]) -> Account:
        """The house account of a broker account: created once, owning the broker's cash and
        positions that no account owns. Later calls change nothing."""
        from .schema import Account, Holding
        with self.tx() as s:
            house = self._house(s, broker)
            if house is None:
                house = Account(name=f"house:{broker}", broker=broker, cash=cash, is_house=True, rules="m1")
                s.add(house)
                s.flush()
                for sym, qty in sorted(positions.items()):
                    if qty:
                        s.add(Holding(account_id=house.id, path=sym, symbol=sym, shares=qty))
            return house

    @staticmethod
    def _house(c: Connection | Session, broker: str, lock: bool = False) -> Row | None:
        """The house account's row (in a Core or an ORM transaction alike)."""
        q = select(A).where(A.c.broker == broker, A.c.is_house.is_(True))
        return c.execute(q.with_for_update() if lock else q).first()

    def add_account(self, name: str, pie: str, file: str, text: str, sha: str, *, rules: str = "m1",
                    broker: str = "main", owner: str | None = None) -> Account:
        """Open an account on `pie` of the version (`file`, `text`, `sha`) of a policy file,
        recorded now if new. The service layer (engine/shell/policies.add_account) checks
        the pie and rule set first; other accounts following the file are not moved (that
        is `policy apply`'s to do, with its plan)."""
        from . import policy_repo
        from .schema import Account
        name = account_name(name.strip())
        owner = None if owner is None else owner_name(owner, name)
        with self.tx() as s:
            if s.scalars(select(Account).where(Account.name == name)).first():
                raise LedgerError(f"account {name!r} already exists")
            if self._house(s, broker) is None:
                raise LedgerError(f"broker account {broker!r} has no house account yet")
            version = policy_repo.ensure_version(s, file, text, sha)
            acct = Account(name=name, pie=pie, policy_version_id=version.id, rules=rules, broker=broker, cash=ZERO,
                           owner=owner)
            s.add(acct)
            try:
                s.flush()
            except IntegrityError:
                raise LedgerError(f"account {name!r} already exists") from None
            return acct

    def add_accounts(self, wanted: Sequence[tuple[int, str, str, str, str, str, str, str]],
                     errors: list[tuple[int, str]], *, label: Callable[[int], str] = str) -> list[tuple[str, bool]]:
        """Open many accounts in one transaction: all of them or none. `wanted` holds rows
        checked already (index, name, pie, file, text, sha, rules, broker: see
        engine/shell/policies.add_accounts), `errors` the mistakes found there; here each
        row is checked against the ledger too and every mistake is listed by `label(index)`.
        An account that exists with the same pie, policy file, rules and broker is left as
        it is (idempotent by name); one that exists otherwise is a mistake. Returns (name,
        created) per row."""
        from . import policy_repo
        from .schema import Account
        errors = list(errors)
        done: list[tuple[str, bool]] = []
        with self.tx() as s:
            names = [w[1] for w in wanted]
            existing = {a.name: a for a in s.scalars(select(Account).where(Account.name.in_(names)))} if names else {}
            for i, name, pie, file, text, sha, rules, brk in wanted:
                old = existing.get(name)
                if old is not None:
                    v = policy_repo.version(s, old.policy_version_id) if old.policy_version_id else None
                    if (old.pie, v.file if v else None, old.rules, old.broker) != (pie, file, rules, brk):
                        errors.append((i, f"{label(i)}: account {name!r} exists already, following "
                                          f"{old.pie!r} of {v.file if v else '-'} on {old.broker!r}"))
                    done.append((name, False))
                    continue
                if self._house(s, brk) is None:
                    errors.append((i, f"{label(i)}: broker account {brk!r} has no house account yet"))
                    continue
                version = policy_repo.ensure_version(s, file, text, sha)
                s.add(Account(name=name, pie=pie, policy_version_id=version.id, rules=rules, broker=brk, cash=ZERO))
                done.append((name, True))
            if errors:
                said = [m for _, m in sorted(errors)]
                raise LedgerError("; ".join(said[:20]) + (f"; and {len(said) - 20} more" if len(said) > 20 else ""))
            try:
                s.flush()
            except IntegrityError:
                raise LedgerError("another writer opened one of these accounts at the same time; try again") from None
        return done

    def close_account(self, name: str, key: str | None = None) -> Recorded:
        """Close an account: the next window sells everything and withdraws all its cash;
        then it is closed. From now on it refuses new events."""
        from .schema import Event
        with self.tx() as s:
            acct = self._account(s, name, lock=True)
            self._check_open(acct)
            acct.status = "closing"
            ev = Event(account_id=acct.id, key=key or f"close:{acct.id}", kind="close", status="pending")
            s.add(ev)
            s.flush()
            return Recorded(ev.id, True)

    @staticmethod
    def _check_open(acct: Account | Row) -> None:
        if acct.status != "active":
            raise LedgerError(f"account {acct.name!r} is {acct.status}; it takes no new events")

    def _account(self, s: Session, name: str, lock: bool = False) -> Account:
        """An account (not a house) as an ORM object, for a caller that changes it."""
        from .schema import Account
        q = select(Account).where(Account.name == name, Account.is_house.is_(False))
        acct = s.scalars(q.with_for_update() if lock else q).first()
        if acct is None:
            self._no_account(s, name)
        return acct

    def _account_row(self, c: Connection | Session, name: str, lock: bool = False) -> Row:
        """An account (not a house) as a row, to read."""
        q = select(A).where(A.c.name == name, A.c.is_house.is_(False))
        acct = c.execute(q.with_for_update() if lock else q).first()
        if acct is None:
            self._no_account(c, name)
        return acct

    @staticmethod
    def _no_account(c: Connection | Session, name: str):
        known = c.execute(select(A.c.name).where(A.c.is_house.is_(False)).order_by(A.c.name).limit(10)).scalars().all()
        hint = f" (accounts: {', '.join(known)})" if known else " (there are no accounts yet)"
        raise NotFound(f"no account named {name!r}{hint}")

    def accounts(self, broker: str | None = None) -> list[Account]:
        from .schema import Account
        with self.tx() as s:
            q = select(Account).where(Account.is_house.is_(False)).order_by(Account.name)
            if broker:
                q = q.where(Account.broker == broker)
            return list(s.scalars(q))

    def account_rows(self, *, name: str | None = None, search: str = "", offset: int = 0,
                     limit: int | None = None, after: str | None = None) -> AccountRows:
        """One account by `name`, or the accounts whose name contains `search` by name (those
        named after `after`, the cursor of the page before, or the page from `offset`;
        `limit` of them), with what valuing them needs: their holdings, pending event counts
        and policy versions' texts. One transaction, a few queries whatever the number of
        accounts: counted (count_accounts) and cut by the database. `after` costs the same at
        any depth; `offset` reads the names it skips."""
        from .schema import Account, Event, Holding, PolicyVersion
        with self.tx() as s:
            exact = True
            if name is not None:
                accts = [self._account(s, name)]
                total = 1
            else:
                # Cut on the name index alone (an index-only scan: no table rows read to
                # skip `offset` accounts): a house is named "house:<broker>" and no other
                # account may be (add_account refuses it).
                named = [Account.name.not_like("house:%")]
                if search:
                    named.append(Account.name.ilike(f"%{search.replace('%', '').replace('_', '')}%"))
                q = select(Account).where(Account.is_house.is_(False), *named).order_by(Account.name)
                if after is not None:
                    q = q.where(Account.name > after)
                elif offset:
                    q = q.where(Account.name >= select(Account.name).where(*named).order_by(Account.name)
                                .offset(offset).limit(1).scalar_subquery())
                accts = list(s.scalars(q.limit(limit) if limit else q))
                if limit is None and after is None and not offset:
                    total = len(accts)                      # all of them were read: counted already
                else:
                    total, exact = self._count_accounts(s, named, search=bool(search))
            ids = [a.id for a in accts]
            held: dict[int, dict[str, tuple[str, Decimal]]] = {i: {} for i in ids}
            pending: dict[int, int] = {}
            texts: dict[int, tuple[str, str]] = {}
            if ids:
                every = limit is None and name is None                   # no list of ids to send
                for aid, path, sym, shares in s.execute(select(Holding.account_id, Holding.path, Holding.symbol,
                                                               Holding.shares)
                                                        .where(true() if every else Holding.account_id.in_(ids))):
                    if aid in held:
                        held[aid][path] = (sym, shares)
                # A page's accounts are found by their own index (their events, counted if
                # pending), never through the status index: without statistics SQLite would
                # walk every pending event of the ledger for them.
                counted = select(Event.account_id, func.count().filter(Event.status == "pending")) \
                    if not every else select(Event.account_id, func.count()).where(Event.status == "pending")
                pending = {aid: n for aid, n in s.execute(
                    counted.where(true() if every else Event.account_id.in_(ids)).group_by(Event.account_id))
                    if aid in held and n}
                versions = sorted({a.policy_version_id for a in accts if a.policy_version_id is not None})
                texts = {vid: (f, t) for vid, f, t in s.execute(
                    select(PolicyVersion.id, PolicyVersion.file, PolicyVersion.text)
                    .where(PolicyVersion.id.in_(versions)))}
            return AccountRows(total, exact, accts, held, pending, texts)

    COUNTED_UP_TO = 1_000       # more matching accounts than this: an estimate, not a count

    @classmethod
    def _count_accounts(cls, s: Session, named: list, *, search: bool) -> tuple[int, bool]:
        """(how many accounts match, exact?). Up to COUNTED_UP_TO they are counted; past
        it counting would read every name at every page, so: without a search, the
        database's own estimate of the table's rows (PostgreSQL's planner statistics; on
        SQLite the highest account id, accounts being never deleted; the few houses
        included); with a search, COUNTED_UP_TO + 1, meaning "more than COUNTED_UP_TO"."""
        from .schema import Account
        seen = s.scalar(select(func.count()).select_from(
            select(Account.name).where(*named).limit(cls.COUNTED_UP_TO + 1).subquery()))
        if seen <= cls.COUNTED_UP_TO:
            return seen, True
        if search:
            return seen, False
        if s.get_bind().dialect.name == "postgresql":
            rows = s.scalar(sql("select reltuples::bigint from pg_class where oid = 'accounts'::regclass"))
        else:
            rows = s.scalar(select(func.max(Account.id)))
        return max(int(rows or 0), seen), False

    def set_owner(self, name: str, owner: str) -> str:
        """Who owns the account for wash sales from now on (docs/books.md); the owner as
        stored. Refused while a window of its broker account is open: a window books whole
        owners in a shard, so an owner must not change under it."""
        with self.tx() as s:
            acct = self._account(s, name, lock=True)
            open_ = window_reports.open_window(s, acct.broker)
            if open_ is not None:
                raise LedgerConflict(f"window {open_} of broker account {acct.broker!r} is open; "
                                     f"change the owner of {name!r} after it closes")
            acct.owner = owner_name(owner, acct.name)
            return acct.owner_id

    def account(self, name: str) -> Account:
        """One account by name (not a house), or LedgerError naming some that exist."""
        with self.tx() as s:
            return self._account(s, name)

    def pending_counts(self, names: Sequence[str] | None = None) -> dict[str, int]:
        with self.conn(read_only=True) as c:
            q = select(A.c.name, func.count()).join(E, E.c.account_id == A.c.id) \
                .where(E.c.status == "pending").group_by(A.c.name)
            if names is not None:
                q = q.where(A.c.name.in_(list(names)))
            return {n: k for n, k in c.execute(q)}

    def house(self, broker: str) -> Row | None:
        with self.conn(read_only=True) as c:
            return self._house(c, broker)

    def holdings(self, name: str) -> dict[str, tuple[str, Decimal]]:
        """path -> (symbol, shares) of an account (or a house, by its full name)."""
        with self.conn(read_only=True) as c:
            acct = c.execute(select(A.c.id).where(A.c.name == name)).first()
            if acct is None:
                raise NotFound(f"no account named {name!r}")
            return {p: (sym, q) for p, sym, q in c.execute(select(H.c.path, H.c.symbol, H.c.shares)
                                                           .where(H.c.account_id == acct.id))}

    # --- events ---------------------------------------------------------------------------

    def _record(self, name: str, kind: str, key: str | None, check, amount: Decimal | None = None,
                path: str | None = None) -> Recorded:
        if key is not None:
            try:
                check_name(key, "key", key=True)
            except InvalidName as e:
                raise LedgerError(str(e)) from None
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt   # only commands that record
        key = key or f"{kind}:{uuid.uuid4()}"
        # Another writer may record the same key between our look and our insert: the
        # second try finds its event.
        for attempt in Retrying(stop=stop_after_attempt(2), retry=retry_if_exception_type(IntegrityError),
                                reraise=True):
            with attempt:
                with self.conn() as c:
                    existing = c.execute(select(E).where(E.c.key == key)).first()
                    if existing is not None:
                        return self._same(c, existing, name, kind, amount, path)
                    acct = self._account_row(c, name, lock=True)
                    self._check_open(acct)
                    check(c, acct)
                    ev = c.execute(insert(E).values(account_id=acct.id, key=key, kind=kind, amount=amount, path=path,
                                                    status="pending")).inserted_primary_key[0]
                    return Recorded(ev, True)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _same(c: Connection | Session, ev: Event | Row, name: str, kind: str, amount, path) -> Recorded:
        owner = c.execute(select(A.c.name).where(A.c.id == ev.account_id)).scalar_one()
        if (owner, ev.kind, ev.amount, ev.path) != (name, kind, amount, path):
            raise LedgerError(f"key {ev.key!r} was already used for a different request "
                              f"(event {ev.id}: {ev.kind} {owner})")
        return Recorded(ev.id, False)

    @staticmethod
    def _pending(c: Connection | Session, kind: str, *, broker: str | None = None,
                 account_id: int | None = None) -> Decimal:
        """The sum of pending events' amounts (summed in Python: exact on SQLite's text too)."""
        q = select(E.c.amount).join(A, E.c.account_id == A.c.id).where(E.c.kind == kind, E.c.status == "pending")
        if broker:
            q = q.where(A.c.broker == broker)
        if account_id:
            q = q.where(E.c.account_id == account_id)
        return sum((a for a in c.execute(q).scalars() if a is not None), ZERO)

    def deposit(self, name: str, amount: str | Decimal, key: str | None = None) -> Recorded:
        """Queue a deposit. Paper accounts cannot receive money: it comes out of the house's
        cash (at the window), so it is refused when the house has too little."""
        amt = parse_amount(amount, "deposit")

        def check(c: Connection, acct: Row) -> None:
            verdict = admit_deposit(cents(amt), name, self._house_cash(c, acct.broker))
            if not verdict:
                raise LedgerError(verdict.reason)
        return self._record(name, "deposit", key, check, amount=amt)

    def withdraw(self, name: str, amount: str | Decimal, prices: Mapping[str, Decimal],
                 key: str | None = None) -> Recorded:
        amt = parse_amount(amount, "withdrawal")

        def check(c: Connection, acct: Row) -> None:
            verdict = admit_withdrawal(cents(amt), self._room(c, acct, prices))
            if not verdict:
                raise LedgerError(verdict.reason)
        return self._record(name, "withdrawal", key, check, amount=amt)

    def _house_cash(self, c: Connection | Session, broker: str) -> HouseCash:
        """The house's cash and the pending deposits promised out of it (the house row locked)."""
        house = self._house(c, broker, lock=True)
        return HouseCash(broker, cents(house.cash) if house else 0,
                         cents(self._pending(c, "deposit", broker=broker)))

    def _room(self, c: Connection | Session, acct: Account | Row, prices: Mapping[str, Decimal]) -> AccountRoom:
        """What the account holds at `prices`, and its pending deposits and withdrawals."""
        return AccountRoom(acct.name, self._value(c, acct, prices), cents(acct.cash),
                           cents(self._pending(c, "deposit", account_id=acct.id)),
                           cents(self._pending(c, "withdrawal", account_id=acct.id)))

    def import_events(self, rows: Sequence[Mapping[str, object]], prices: Mapping[str, Decimal], *,
                      check_rebalance: Callable[[Account, PolicyVersion, str], None],
                      broker_prices: Mapping[str, Mapping[str, Decimal]] | None = None,
                      where: str = "import", errors: Sequence[tuple[int, str]] = ()) -> tuple[int, int]:
        """Record many events in one transaction: all of them or none. Each row has
        account, kind (deposit, withdrawal, rebalance), amount (a Decimal the service
        parsed; none for a rebalance), and optionally key and path; row numbers count from
        1 for the first data row's line 2 (after the header); withdrawals are valued at
        `prices`, or at their broker account's in `broker_prices`. `errors` are the
        mistakes found before (line, message: an amount that does not parse); those rows
        are not looked at again. Every other row is checked, in order, against the ledger
        and the rows before it (house cash for deposits, what the account holds for
        withdrawals); all mistakes are reported together, by line. A key already recorded
        for the same request is skipped. `check_rebalance` refuses a rebalance path that is
        not a pie of the account (the service layer's: engine/shell/policies.rebalance_check).
        Returns (recorded, already recorded)."""
        from .schema import Event, PolicyVersion
        found_before = dict(errors)
        numbered: list[tuple[int, str]] = list(errors)
        created = existing = 0
        with self.tx() as s:
            accounts: dict[str, Account] = {}
            free: dict[str, HouseCash] = {}         # broker -> its house's cash and what deposits promised
            room: dict[int, AccountRoom] = {}       # account -> what withdrawals may still take
            seen: set[str] = set()
            for n, row in enumerate(rows, start=2):
                at = f"{where}:{n}"
                if n in found_before:
                    continue
                try:
                    if row.get(None):        # csv.DictReader puts fields beyond the header here
                        raise LedgerError("more fields than the header has (an amount with a comma must be "
                                          "quoted: \"1,000.00\")")
                    kind = (row.get("kind") or "").strip()
                    name = (row.get("account") or "").strip()
                    key = (row.get("key") or "").strip() or None
                    if key is not None:
                        check_name(key, "key", key=True)
                    path = (row.get("path") or "").strip().strip("/") or None
                    if kind not in ("deposit", "withdrawal", "rebalance"):
                        raise LedgerError(f"kind {kind!r} must be deposit, withdrawal or rebalance")
                    amount = row.get("amount")
                    if kind != "rebalance":
                        if not isinstance(amount, Decimal):          # text is parsed by the service, not here
                            raise TypeError(f"{at}: the amount must come parsed (a Decimal), not {amount!r}")
                        amount = parse_amount(amount, kind)            # positive whole cents, within bounds
                    else:
                        amount = None
                    if kind != "rebalance" and path:
                        raise LedgerError("a path belongs to a rebalance only")
                    if key is not None:
                        if key in seen:
                            raise LedgerError(f"key {key!r} appears twice in the file")
                        seen.add(key)
                        found = s.scalars(select(Event).where(Event.key == key)).first()
                        if found is not None:
                            self._same(s, found, name, kind, amount, path)
                            existing += 1
                            continue
                    if name not in accounts:
                        accounts[name] = self._account(s, name, lock=True)
                    acct = accounts[name]
                    self._check_open(acct)
                    if kind == "deposit":
                        if acct.broker not in free:
                            free[acct.broker] = self._house_cash(s, acct.broker)
                        verdict = admit_deposit(cents(amount), name, free[acct.broker], in_batch=True)
                        if not verdict:
                            raise LedgerError(verdict.reason)
                        free[acct.broker] = free[acct.broker].after(cents(amount))
                        if acct.id in room:           # else counted when room is first worked out
                            room[acct.id] = room[acct.id].after_deposit(cents(amount))
                    elif kind == "withdrawal":
                        if acct.id not in room:       # pending events include the rows above
                            s.flush()
                            room[acct.id] = self._room(s, acct, (broker_prices or {}).get(acct.broker, prices))
                        verdict = admit_withdrawal(cents(amount), room[acct.id], in_batch=True)
                        if not verdict:
                            raise LedgerError(verdict.reason)
                        room[acct.id] = room[acct.id].after_withdrawal(cents(amount))
                    elif path:
                        check_rebalance(acct, s.get(PolicyVersion, acct.policy_version_id), path)
                    s.add(Event(account_id=acct.id, key=key or f"{kind}:{uuid.uuid4()}", kind=kind, amount=amount,
                                path=path, status="pending"))
                    created += 1
                except (LedgerError, InvalidName) as e:
                    numbered.append((n, f"{at}: {e}"))
            if numbered:
                said = [m for _, m in sorted(numbered)]
                raise LedgerError("; ".join(said[:20]) + (f"; and {len(said) - 20} more" if len(said) > 20 else ""))
        return created, existing

    def rebalance(self, name: str, path: str = "", key: str | None = None, *,
                  check: Callable[[Account, PolicyVersion, str], None] | None = None) -> Recorded:
        """Queue a rebalance of the account (or of its nested pie `path`). `check(account,
        version, path)` is the service layer's (engine/shell/policies.rebalance_check): it
        refuses a path that is not a pie of the account's, inside this transaction."""
        path = path.strip().strip("/")

        def checked(c: Connection, acct: Row) -> None:
            if path and check is not None:
                check(acct, c.execute(select(PV).where(PV.c.id == acct.policy_version_id)).first(), path)
        return self._record(name, "rebalance", key, checked, path=path or None)

    def dividend(self, name: str, amount: str | Decimal, key: str | None = None, *,
                 most: Decimal | None = None) -> Recorded:
        """Queue a dividend recorded by hand (the broker's own are collected by the window).
        Without a key it is a new event every time; above `most` (the settings' sanity
        bound) it is refused."""
        amt = parse_amount(amount, "dividend")
        if most is not None and amt > most:
            raise LedgerError(f"dividend of ${amt} for {name!r} is more than ${most}, the most a dividend recorded "
                              f"by hand may be ([events] max_dividend); check the amount")
        return self._record(name, "dividend", key, lambda s, a: None, amount=amt)

    def cancel(self, event_id: int) -> Row:
        with self.conn() as c:
            ev = c.execute(select(E).where(E.c.id == event_id).with_for_update()).first()
            if ev is None:
                raise NotFound(f"no event {event_id}")
            if ev.status != "pending":
                raise LedgerError(f"event {event_id} is {ev.status}; only a pending event can be canceled")
            c.execute(update(E).where(E.c.id == event_id).values(status="canceled", reason="canceled by an operator"))
            return c.execute(select(E).where(E.c.id == event_id)).one()

    def events(self, name: str | None = None, status: str | None = None) -> list[tuple[Row, str]]:
        """(event, account name) in the order recorded."""
        with self.conn(read_only=True) as c:
            q = select(E, A.c.name.label("account_name")).join(A, E.c.account_id == A.c.id).order_by(E.c.id)
            if name:
                self._account_row(c, name)
                q = q.where(A.c.name == name)
            if status:
                q = q.where(E.c.status == status)
            return [(r, r.account_name) for r in c.execute(q)]

    def pending_page(self, offset: int, limit: int) -> tuple[int, list[tuple[Row, str]]]:
        """Pending events of every account, oldest first, a page at a time, and how many."""
        with self.conn(read_only=True) as c:
            total = c.execute(select(func.count()).select_from(E).where(E.c.status == "pending")).scalar() or 0
            q = select(E, A.c.name.label("account_name")).join(A, E.c.account_id == A.c.id) \
                .where(E.c.status == "pending").order_by(E.c.id).offset(offset).limit(limit)
            return total, [(r, r.account_name) for r in c.execute(q)]

    # --- values ---------------------------------------------------------------------------

    @staticmethod
    def _value(c: Connection | Session, acct: Account | Row, prices: Mapping[str, Decimal]) -> int:
        """Cents the account's holdings are worth at `prices`."""
        held = {p: (sym, q) for p, sym, q in c.execute(select(H.c.path, H.c.symbol, H.c.shares)
                                                       .where(H.c.account_id == acct.id))}
        try:
            return sum(slice_values(held, prices).values())
        except MissingPrice as e:
            raise LedgerError(f"no price for {e.symbol} (held by {acct.name!r})") from None

    def values(self, name: str, prices: Mapping[str, Decimal]) -> dict[str, int]:
        """Cents per slice path at `prices` (what the planner takes as holdings)."""
        try:
            return slice_values(self.holdings(name), prices)
        except MissingPrice as e:
            raise LedgerError(f"no price for {e.symbol} (held by {name!r})") from None

    def symbols(self, broker: str | None = None) -> list[str]:
        with self.conn(read_only=True) as c:
            q = select(H.c.symbol).join(A, H.c.account_id == A.c.id).distinct()
            if broker:
                q = q.where(A.c.broker == broker)
            return sorted(c.execute(q).scalars())


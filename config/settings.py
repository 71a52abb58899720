"""Settings: embedded defaults (defaults.toml), a user TOML file over them, then the
environment. A typed schema (pydantic, every section `extra="forbid"`) refuses unknown
keys with the file, the key and a suggestion; values are checked with one-line messages.
Secrets are never settings: only the names of the variables that hold them.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError, field_validator

from engine.core.errors import Refused
# The one grammar of amounts (docs/money.md).
from engine.core.money import MoneyError, cents, dollars, parse_dollars

DEFAULTS = Path(__file__).with_name("defaults.toml")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]     # relative paths in the defaults start here


class SettingsError(Refused):
    """A settings file or variable is wrong; the message names it."""


# --- the schema ---------------------------------------------------------------------------

def _money(value: Any, what: str = "amount", *, zero: bool = False) -> Decimal:
    """Dollars as a string or a whole number ("1.00", 5), in the grammar of every amount
    (engine.core.money.parse_dollars); floats are refused (inexact)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{what} {value!r} must be written as a string of dollars, like \"1.00\"")
    try:
        return dollars(parse_dollars(value if isinstance(value, str) else f"{value:d}", what=what, zero=zero))
    except MoneyError as e:
        raise ValueError(str(e).replace(" must be positive", " must be positive whole cents")
                         if "fractions of a cent" not in str(e) else
                         f"{what} {value!r} must be positive whole cents") from None


def _number(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} must be a number of zero or more")
    try:
        d = Decimal(str(value))
    except Exception:  # noqa: BLE001 - any unparsable text is the same mistake
        raise ValueError(f"{value!r} must be a number of zero or more") from None
    if not d.is_finite() or d < 0:
        raise ValueError(f"{value!r} must be a number of zero or more")
    return d


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LedgerSection(_Section):
    url: str = ""
    data_dir: str = "~/.local/share/pies"


class SimulatedSection(_Section):
    state_file: str = ""
    prices_file: str = ""
    seed: int = 1
    starting_cash: Decimal = Decimal("100000.00")
    slippage_bp: int = 0
    calendar: Literal["XNYS", "weekdays"] = "XNYS"
    holidays: tuple[date, ...] = ()
    dividends: dict[str, Decimal] = {}
    fill_delay: float = 0.0             # seconds before an order fills (a slow market, for drills)
    journal_file: str = ""              # a line per order placed (tests count submissions)
    corporate_actions_file: str = ""    # Alpaca's corporate-actions body; applied on their days

    @field_validator("starting_cash", mode="before")
    @classmethod
    def _cash(cls, v: Any) -> Decimal:
        return _money(v, "starting_cash")

    @field_validator("holidays", mode="before")
    @classmethod
    def _days(cls, v: Any) -> Any:
        out = []
        for d in v or ():
            try:
                out.append(d if isinstance(d, date) else date.fromisoformat(str(d)))
            except ValueError:
                raise ValueError(f"{d!r} is not a date like 2026-11-26") from None
        return tuple(out)


class AlpacaSection(_Section):
    key_env: str = "APCA_API_KEY_ID"
    secret_env: str = "APCA_API_SECRET_KEY"
    paper: StrictBool = True
    allow_live: StrictBool = False
    feed: str = "iex"
    timeout: float = 10.0
    trading_url: str = ""          # empty: Alpaca's paper (or live) trading API
    data_url: str = ""             # empty: Alpaca's market data API
    requests_per_minute: int = 190     # every request of the account; Alpaca allows 200

    @field_validator("requests_per_minute", mode="before")
    @classmethod
    def _rate(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 200:
            raise ValueError(f"must be a whole number from 1 to 200 (Alpaca's limit), not {v!r}")
        return v


class SettleSection(_Section):
    before_close_minutes: int = 15
    at_least_seconds: float = 60.0
    poll_seconds: float = 2.0

    @field_validator("before_close_minutes", "at_least_seconds", "poll_seconds", mode="before")
    @classmethod
    def _positive(cls, v: Any) -> Any:
        return _number(v)


class BrokerSection(_Section):
    name: str = "main"
    kind: str = "simulated"
    min_order: Decimal = Decimal("1.00")
    simulated: SimulatedSection = SimulatedSection()
    alpaca: AlpacaSection = AlpacaSection()
    settle: SettleSection | None = None        # per broker; the top-level [settle] otherwise
    # Does this broker apply corporate actions to its own positions? Unset: the simulated
    # broker and Alpaca live do, Alpaca paper does not (Alpaca-API #181).
    applies_corporate_actions: StrictBool | None = None

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, v: Any) -> str:
        if v not in ("simulated", "alpaca"):
            raise ValueError(f"must be simulated or alpaca, not {v!r}")
        return v

    @field_validator("min_order", mode="before")
    @classmethod
    def _min_order(cls, v: Any) -> Decimal:
        return _money(v, "min_order", zero=True)


class PoliciesSection(_Section):
    files: tuple[str, ...] = ()
    auto_apply: StrictBool = False
    auto_apply_max_dollars: Decimal | None = None
    auto_apply_max_accounts: int | None = None

    @field_validator("auto_apply_max_dollars", mode="before")
    @classmethod
    def _dollars(cls, v: Any) -> Any:
        return None if v in ("", None) else _money(v, "auto_apply_max_dollars")

    @field_validator("auto_apply_max_accounts", mode="before")
    @classmethod
    def _accounts(cls, v: Any) -> Any:
        return None if v in ("", None) else int(_number(v))


class WindowSection(_Section):
    name: str = "open"
    at: time
    timezone: str = "America/New_York"
    cutoff: time = time(15, 30)

    @field_validator("at", "cutoff", mode="before")
    @classmethod
    def _time(cls, v: Any) -> time:
        try:
            return v if isinstance(v, time) else time.fromisoformat(str(v))
        except ValueError:
            raise ValueError(f"{v!r} is not a time like 09:35") from None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a time zone like America/New_York") from None
        return v


class RecurringSection(_Section):
    account: str
    amount: Decimal
    every: Literal["day", "week", "month"] = "month"
    day: int = 1

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, v: Any) -> Decimal:
        return _money(v)


class ScaleSection(_Section):
    workers: int = 0                           # processes that plan a window's shards; 0: one per core
    shard_size: int = 5_000                    # accounts per shard
    cluster: str = ""                          # a Dask scheduler address (pip install pies[cluster])


class ApiSection(_Section):
    enabled: StrictBool = False                # the daemon serves the API and console too
    host: str = "127.0.0.1"
    port: int = 8080
    trusted_proxies: tuple[str, ...] = ()      # addresses whose X-Forwarded-For is believed
    session_idle_minutes: int = 30             # a console session ends after this long unused
    max_body_kib: int = 64                     # the largest request body, in KiB

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, v: Any) -> Any:
        import ipaddress
        out = []
        for a in v or ():
            try:
                out.append(str(ipaddress.ip_network(str(a), strict=False)))
            except ValueError:
                raise ValueError(f"{a!r} is not an IP address or network like 127.0.0.1 or 10.0.0.0/8") from None
        return tuple(out)

    @field_validator("session_idle_minutes", "max_body_kib", mode="before")
    @classmethod
    def _positive_int(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{v!r} must be a whole number of 1 or more")
        return v


class EventsSection(_Section):
    max_dividend: Decimal = Decimal("100000.00")   # a dividend recorded by hand above this is refused

    @field_validator("max_dividend", mode="before")
    @classmethod
    def _max(cls, v: Any) -> Decimal:
        return _money(v, "max_dividend")


class ReconcileSection(_Section):
    """How big a break between the ledger and the broker that nothing explains may be
    before trading waits for an operator (docs/reconciliation.md)."""

    shares: Decimal = Decimal("0.000001")      # per symbol
    cash: Decimal = Decimal("1.00")            # dollars

    @field_validator("shares", mode="before")
    @classmethod
    def _shares(cls, v: Any) -> Decimal:
        if isinstance(v, float):
            raise ValueError(f"{v!r} must be written as a string of shares, like \"0.000001\"")
        d = _number(v)
        if d != d.quantize(Decimal("0.000000001")):
            raise ValueError(f"{v!r} must have at most 9 decimal places")
        return d

    @field_validator("cash", mode="before")
    @classmethod
    def _cash(cls, v: Any) -> Decimal:
        return _money(v, "cash", zero=True)


class AlertsSection(_Section):
    webhooks: tuple[str, ...] = ()
    timeout: float = 5.0
    retries: int = 3


class Root(_Section):
    ledger: LedgerSection = LedgerSection()
    broker: BrokerSection = BrokerSection()
    brokers: tuple[BrokerSection, ...] = ()
    settle: SettleSection = SettleSection()
    policies: PoliciesSection = PoliciesSection()
    windows: tuple[WindowSection, ...] = ()
    recurring: tuple[RecurringSection, ...] = ()
    alerts: AlertsSection = AlertsSection()
    api: ApiSection = ApiSection()
    scale: ScaleSection = ScaleSection()
    events: EventsSection = EventsSection()
    reconcile: ReconcileSection = ReconcileSection()


# --- what the rest of pies sees ------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    name: str
    at: time
    timezone: str
    cutoff: time


@dataclass(frozen=True)
class Broker:
    """One broker account: its adapter, keys (by variable name), limits and settle bound."""

    name: str
    kind: str
    min_order_cents: int
    simulated: Mapping[str, Any]
    alpaca: Mapping[str, Any]
    settle_before_close_minutes: int = 15
    settle_at_least_seconds: float = 60.0
    poll_seconds: float = 2.0
    applies_corporate_actions: bool = True


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    brokers: tuple[Broker, ...]
    policy_files: tuple[str, ...]
    windows: tuple[Window, ...]
    recurring: tuple[dict, ...] = ()
    source: str = field(default="defaults")
    auto_apply: bool = False
    auto_apply_max_cents: int | None = None
    auto_apply_max_accounts: int | None = None
    webhooks: tuple[str, ...] = ()
    alert_timeout: float = 5.0
    alert_retries: int = 3
    api_enabled: bool = False
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    workers: int = 1
    shard_size: int = 5_000
    cluster: str | None = None
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)   # key -> where it was set
    max_dividend_cents: int = 10_000_000           # [events] max_dividend: a sanity bound for hand-recorded dividends

    # The first broker account: what single-broker code and settings files mean.
    @property
    def broker(self) -> Broker:
        return self.brokers[0]

    @property
    def broker_kind(self) -> str:
        return self.broker.kind

    @property
    def broker_name(self) -> str:
        return self.broker.name

    @property
    def min_order_cents(self) -> int:
        return self.broker.min_order_cents

    @property
    def simulated(self) -> Mapping[str, Any]:
        return self.broker.simulated

    @property
    def alpaca(self) -> Mapping[str, Any]:
        return self.broker.alpaca

    @property
    def settle_before_close_minutes(self) -> int:
        return self.broker.settle_before_close_minutes

    @property
    def settle_at_least_seconds(self) -> float:
        return self.broker.settle_at_least_seconds

    @property
    def poll_seconds(self) -> float:
        return self.broker.poll_seconds

    def broker_named(self, name: str) -> Broker:
        for b in self.brokers:
            if b.name == name:
                return b
        raise SettingsError(f"no broker account named {name!r} in the settings "
                            f"(known: {', '.join(b.name for b in self.brokers)})")

    def describe(self) -> dict[str, Any]:
        """What `pies status` prints: no secrets here by construction, URLs masked anyway."""
        return {"database_url": mask_url(self.database_url), "data_dir": str(self.data_dir),
                "broker": self.broker_kind, "broker_name": self.broker_name,
                "brokers": [f"{b.name} ({b.kind})" for b in self.brokers], "policies": list(self.policy_files),
                "windows": [f"{w.name} {w.at:%H:%M} {w.timezone} (cutoff {w.cutoff:%H:%M})" for w in self.windows],
                "source": self.source}

    def effective(self) -> list[tuple[str, str, str]]:
        """(key, value, where it was set) for `pies settings`, secrets masked."""
        out = []
        for key, value in sorted(_flatten(self._raw).items()):
            out.append((key, json_value(value), self.origins.get(key, "defaults")))
        return out

    _raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    api_trusted_proxies: tuple[str, ...] = ()     # networks whose X-Forwarded-For is believed
    api_session_idle_seconds: float = 30 * 60
    api_max_body_bytes: int = 64 * 1024
    reconcile_shares: Decimal = Decimal("0.000001")   # [reconcile] shares: tolerance per symbol
    reconcile_cents: int = 100                        # [reconcile] cash, in cents


def json_value(v: Any) -> str:
    """A setting as text, with passwords and tokens in URLs masked."""
    if isinstance(v, str):
        return mask_url(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(json_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def mask_url(url: str) -> str:
    """user:***@host for a password in a URL; a query string (tokens) hidden."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    if "@" in rest.split("/", 1)[0]:
        creds, host = rest.split("@", 1)
        rest = f"{creds.split(':')[0]}:***@{host}" if ":" in creds else rest
    if "?" in rest:
        rest = rest.split("?", 1)[0] + "?***"
    return f"{scheme}://{rest}"


# --- loading -------------------------------------------------------------------------------

def _merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SettingsError(f"{path}: cannot read settings: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path}: {e}") from None
    except ValueError as e:       # tomllib's int() of a number of more than 4,300 digits
        raise SettingsError(f"{path}: {str(e).split(':')[0]}") from None


def _flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(_flatten(v, key + "."))
        elif isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
            for i, x in enumerate(v):
                out.update(_flatten(x, f"{key}[{i}]."))
        else:
            out[key] = v
    return out


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _known(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed where `loc` points, for a suggestion."""
    m: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        f = getattr(m, "model_fields", {}).get(part)
        if f is None:
            return []
        ann = f.annotation
        for candidate in getattr(ann, "__args__", (ann,)):
            inner = getattr(candidate, "__args__", (candidate,))[0] if hasattr(candidate, "__args__") else candidate
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                m = inner
                break
    return list(getattr(m, "model_fields", {}))


def _message(e: ValidationError, user: Mapping | None, user_file: str | None) -> str:
    err = e.errors()[0]
    loc = tuple(err["loc"])
    where = user_file if user_file and _has(user, loc) else str(DEFAULTS)
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _known(Root, loc), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{where}: unknown key {_loc(loc)}{hint}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    path = _loc(loc)
    last = str(loc[-1]) if loc else ""
    if msg.startswith(last + " ") and len(loc) > 1:
        return f"{where}: {_loc(loc[:-1])}: {msg}"
    if msg.startswith("must "):
        return f"{where}: {path} {msg}"
    if err["type"] not in ("value_error",):
        msg = f"{msg}, not {err.get('input')!r}"
    return f"{where}: {path}: {msg}"


def _has(d: Mapping | None, loc: tuple) -> bool:
    cur: Any = d
    for part in loc:
        if isinstance(part, int):
            if not isinstance(cur, list) or part >= len(cur):
                return False
            cur = cur[part]
        else:
            if not isinstance(cur, Mapping) or part not in cur:
                return False
            cur = cur[part]
    return True


def _resolve(path: str, base: Path) -> str:
    """A relative path in a settings file means: relative to that file. Resolved (`..`
    and symlinks): a policy file is identified by its resolved path everywhere."""
    if not path:
        return path
    p = Path(path).expanduser()
    return os.path.realpath(p if p.is_absolute() else (base / p))


def load(path: str | Path | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    defaults = _read(DEFAULTS)
    user_file = str(path) if path else env.get("PIES_CONFIG") or None
    user = _read(Path(user_file)) if user_file else {}
    user_dir = Path(user_file).resolve().parent if user_file else PACKAGE_ROOT
    # Paths are relative to the file that names them.
    for section, keys in (("policies", ("files",)),):
        for k in keys:
            if k in defaults.get(section, {}):
                defaults[section][k] = [_resolve(f, PACKAGE_ROOT) for f in defaults[section][k]]
            if isinstance(user.get(section), dict) and isinstance(user[section].get(k), list):
                user[section][k] = [_resolve(str(f), user_dir) for f in user[section][k]]
    for b in ([user.get("broker")] if isinstance(user.get("broker"), dict) else []) + \
            [x for x in user.get("brokers", []) if isinstance(x, dict)]:
        sim = b.get("simulated")
        if isinstance(sim, dict):
            for k in ("state_file", "prices_file", "corporate_actions_file"):
                if isinstance(sim.get(k), str):
                    sim[k] = _resolve(sim[k], user_dir)
    raw = _merge(defaults, user)
    if "windows" in user:                 # a user's windows replace the defaults' list
        raw["windows"] = user["windows"]
    try:
        root = Root.model_validate(raw)
    except ValidationError as e:
        raise SettingsError(_message(e, user, user_file)) from None
    origins = {k: user_file for k in _flatten(user)} if user_file else {}
    data_dir = Path(env.get("PIES_DATA_DIR") or root.ledger.data_dir).expanduser()
    url = env.get("PIES_DATABASE_URL") or root.ledger.url or f"sqlite:///{data_dir / 'pies.db'}"
    for var, key in (("PIES_DATA_DIR", "ledger.data_dir"), ("PIES_DATABASE_URL", "ledger.url")):
        if env.get(var):
            origins[key] = f"environment {var}"
            raw = _merge(raw, {"ledger": {key.split(".")[1]: env[var]}})
    sections = root.brokers or (root.broker,)
    names = [b.name for b in sections]
    if len(set(names)) != len(names):
        raise SettingsError(f"{user_file or DEFAULTS}: two brokers are named {sorted(n for n in names if names.count(n) > 1)[0]!r}")
    brokers = tuple(_broker(b, root.settle) for b in sections)
    windows = tuple(Window(w.name, w.at, w.timezone, w.cutoff) for w in root.windows)
    if len({w.name for w in windows}) != len(windows):
        raise SettingsError(f"{user_file or DEFAULTS}: two windows have the same name")
    pol = root.policies
    return Settings(
        url, data_dir, brokers, pol.files, windows,
        tuple({"account": r.account, "amount": r.amount, "every": r.every, "day": r.day} for r in root.recurring),
        user_file or "defaults", pol.auto_apply,
        None if pol.auto_apply_max_dollars is None else cents(pol.auto_apply_max_dollars),
        pol.auto_apply_max_accounts, root.alerts.webhooks, root.alerts.timeout, root.alerts.retries,
        root.api.enabled, root.api.host, root.api.port, root.scale.workers or (os.cpu_count() or 1),
        max(1, root.scale.shard_size), root.scale.cluster or None, origins, int(root.events.max_dividend * 100), raw,
        api_trusted_proxies=root.api.trusted_proxies, api_session_idle_seconds=root.api.session_idle_minutes * 60.0,
        api_max_body_bytes=root.api.max_body_kib * 1024, reconcile_shares=root.reconcile.shares,
        reconcile_cents=cents(root.reconcile.cash))


def _broker(b: BrokerSection, settle: SettleSection) -> Broker:
    st = b.settle or settle
    applies = b.applies_corporate_actions
    if applies is None:
        applies = b.kind == "simulated" or not b.alpaca.paper
    return Broker(b.name, b.kind, cents(b.min_order), b.simulated.model_dump(), b.alpaca.model_dump(),
                  int(st.before_close_minutes), float(st.at_least_seconds), float(st.poll_seconds), applies)

"""Settings: embedded defaults (defaults.toml), a user TOML file over them, then the
environment. Secrets are never settings: only the names of the variables that hold them."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping

DEFAULTS = Path(__file__).with_name("defaults.toml")


class SettingsError(ValueError):
    """A settings file or variable is wrong; the message names it."""


@dataclass(frozen=True)
class Window:
    name: str
    at: time
    timezone: str
    cutoff: time


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    broker_kind: str
    broker_name: str
    min_order_cents: int
    simulated: Mapping[str, Any]
    alpaca: Mapping[str, Any]
    policy_files: tuple[str, ...]
    windows: tuple[Window, ...]
    recurring: tuple[dict, ...] = ()
    source: str = field(default="defaults")
    settle_before_close_minutes: int = 15
    settle_at_least_seconds: float = 60.0
    poll_seconds: float = 2.0
    auto_apply: bool = False
    auto_apply_max_cents: int | None = None
    auto_apply_max_accounts: int | None = None

    def describe(self) -> dict[str, Any]:
        """What `pies settings` prints: no secrets here by construction, URLs masked anyway."""
        url = self.database_url
        if "@" in url and "://" in url:
            scheme, rest = url.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            url = f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
        return {"database_url": url, "data_dir": str(self.data_dir), "broker": self.broker_kind,
                "broker_name": self.broker_name, "policies": list(self.policy_files),
                "windows": [f"{w.name} {w.at:%H:%M} {w.timezone} (cutoff {w.cutoff:%H:%M})" for w in self.windows],
                "source": self.source}


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


def _time(value: Any, where: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise SettingsError(f"{where}: {value!r} is not a time like 09:35") from None


def load(path: str | Path | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    raw = _read(DEFAULTS)
    source = "defaults"
    user = path or env.get("PIES_CONFIG")
    if user:
        raw = _merge(raw, _read(Path(user)))
        source = str(user)
    where = source
    data_dir = Path(env.get("PIES_DATA_DIR") or raw["ledger"]["data_dir"]).expanduser()
    url = env.get("PIES_DATABASE_URL") or raw["ledger"]["url"] or f"sqlite:///{data_dir / 'pies.db'}"
    broker = raw["broker"]
    kind = broker["kind"]
    if kind not in ("simulated", "alpaca"):
        raise SettingsError(f"{where}: broker.kind must be simulated or alpaca, not {kind!r}")
    try:
        min_order = Decimal(str(broker["min_order"]))
    except InvalidOperation:
        raise SettingsError(f"{where}: broker.min_order {broker['min_order']!r} is not an amount") from None
    sim = dict(broker.get("simulated", {}))
    try:
        sim["holidays"] = frozenset(date.fromisoformat(d) for d in sim.get("holidays", []))
    except ValueError as e:
        raise SettingsError(f"{where}: broker.simulated.holidays: {e}") from None
    windows = []
    for i, w in enumerate(raw.get("windows", [])):
        wh = f"{where}: windows[{i}]"
        windows.append(Window(str(w.get("name", f"w{i}")), _time(w.get("at"), f"{wh}.at"),
                              str(w.get("timezone", "America/New_York")), _time(w.get("cutoff", "15:30"),
                                                                                 f"{wh}.cutoff")))
    settle = raw.get("settle", {})
    before, at_least, poll = (_positive(settle.get(k), f"{where}: settle.{k}")
                              for k in ("before_close_minutes", "at_least_seconds", "poll_seconds"))
    pol = raw.get("policies", {})
    auto = pol.get("auto_apply", False)
    if not isinstance(auto, bool):
        raise SettingsError(f"{where}: policies.auto_apply must be true or false, not {auto!r}")
    max_dollars = pol.get("auto_apply_max_dollars", "")
    max_accounts = pol.get("auto_apply_max_accounts", "")
    max_cents = None if max_dollars in ("", None) else int(_positive(max_dollars, f"{where}: policies.auto_apply_max_dollars") * 100)
    max_accts = None if max_accounts in ("", None) else int(_positive(max_accounts, f"{where}: policies.auto_apply_max_accounts"))
    return Settings(url, data_dir, kind, str(broker["name"]), int(min_order * 100), sim,
                    dict(broker.get("alpaca", {})), tuple(pol.get("files", [])),
                    tuple(windows), tuple(_recurring(raw.get("recurring", []), where)), source,
                    int(before), float(at_least), float(poll), auto, max_cents, max_accts)


def _positive(value: Any, where: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        d = Decimal(-1)
    if not d.is_finite() or d < 0 or isinstance(value, bool):
        raise SettingsError(f"{where}: {value!r} must be a number of zero or more")
    return d


def _recurring(items: list, where: str) -> list[dict]:
    out = []
    for i, r in enumerate(items):
        wh = f"{where}: recurring[{i}]"
        try:
            amount = Decimal(str(r["amount"]))
        except (KeyError, InvalidOperation):
            raise SettingsError(f"{wh}: amount must be a dollar amount") from None
        if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
            raise SettingsError(f"{wh}: amount {r['amount']!r} must be positive whole cents")
        every = str(r.get("every", "month"))
        if every not in ("day", "week", "month") or "account" not in r:
            raise SettingsError(f"{wh}: needs account and every = day, week or month")
        out.append({"account": str(r["account"]), "amount": amount, "every": every, "day": int(r.get("day", 1))})
    return out

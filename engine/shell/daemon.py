"""The daemon: runs the configured trading windows every market day for every broker
account, watches policy files.

APScheduler 3 runs one cron job per window and broker account (weekdays, in the window's
time zone), with misfire grace until the window's cut-off and coalescing, its jobs in
memory (made from the settings at each start; a missed window is caught up); the broker accounts' windows run side by side, and one that fails
(bad keys, an outage) is reported and does not stop the others. A daemon that starts after
a window's time but before its cut-off runs the window at once. SIGTERM finishes the
current window step and exits; SIGHUP (or `pies reload`) reloads the policy files. At start
and in every heartbeat it says when each broker account's next window runs.
"""

from __future__ import annotations

import os
import signal
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from engine.shell import logs
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

import rules as policy_lang
from adapters.broker.port import BrokerError, StopTrading
from adapters.ledger import window_reports
from adapters.ledger.locks import DaemonLock
from adapters.ledger.store import Ledger, LedgerConflict, LedgerError
from config.settings import Settings, Window
from engine.core.money import fmt
from engine.shell import clock
from engine.shell import policies
from engine.shell.schedule import grace_seconds, upcoming_windows, window_due
from engine.shell.window import Interrupted, WindowHeld, WindowPaused, WindowRunner
from engine.shell.wiring import ensure_house, open_broker, open_ledger, window_options

log = logs.logger("pies.daemon")
_CURRENT: "Daemon | None" = None      # the running daemon, which the scheduler's jobs call


def run_window_job(name: str, broker: str | None = None) -> None:
    if _CURRENT is not None:
        _CURRENT.run_window(name, broker)


def heartbeat_job() -> None:
    if _CURRENT is not None:
        log.info("heartbeat", pid=os.getpid(), windows=[w.name for w in _CURRENT.settings.windows],
                 next=_CURRENT.upcoming())


def watch_job() -> None:
    if _CURRENT is not None:
        _CURRENT.reload_if_changed()


class Daemon:
    def __init__(self, settings: Settings, *, now: Callable[[], datetime] | None = None):
        self.settings = settings
        self.now = now or clock.now          # PIES_NOW pins it, as for every other command
        self.stop = threading.Event()
        self.ledger: Ledger | None = None
        self.lock: DaemonLock | None = None
        self.brokers: dict[str, object] = {}      # broker account name -> its adapter, once opened
        self.scheduler: BackgroundScheduler | None = None
        self._mtimes: dict[str, float] = {}
        self._staged: dict[str, str] = {}         # file -> sha of the change waiting for approval
        self._state = threading.Lock()            # guards the two below
        self._running: set[tuple[str, str]] = set()   # (window, broker account) windows under way
        self._reloading = False

    @property
    def broker(self):
        """The first broker account's adapter (plans of policy changes price with it)."""
        return self._broker(self.settings.broker_name)

    @broker.setter
    def broker(self, adapter) -> None:
        self.brokers[self.settings.broker_name] = adapter

    def _broker(self, name: str):
        """A broker account's adapter, opened on first use (and again after a failure)."""
        if name not in self.brokers:
            adapter = open_broker(self.settings, name)
            ensure_house(self.ledger, adapter, name)
            self.brokers[name] = adapter
        return self.brokers[name]

    def upcoming(self) -> list[dict]:
        """The next window of each broker account, for the start line and the heartbeat."""
        out = []
        for b in upcoming_windows(self.settings, self.now(), lambda name: self._broker(name).market_day,
                                  window_reports.windows(self.ledger, 200)):
            if b["error"]:
                out.append({"broker": b["broker"], "error": b["error"]})
            elif b["next"]:
                out.append({"broker": b["broker"], **b["next"][0]})
        return out

    # --- start and stop -------------------------------------------------------------------

    def open(self) -> None:
        s = self.settings
        log.info("pies daemon starting", broker=s.broker_kind, broker_account=s.broker_name,
                 live=bool(s.broker_kind == "alpaca" and not s.alpaca.get("paper", True)),
                 ledger=s.describe()["database_url"], windows=s.describe()["windows"], pid=os.getpid())
        self.ledger = open_ledger(s)          # migrates the schema to the newest version
        self.lock = DaemonLock(self.ledger, s.data_dir)
        try:
            self.lock.acquire()               # one daemon per ledger, for its whole life
        except LedgerError:
            self.ledger.dispose()
            raise
        for b in s.brokers:
            try:
                self._broker(b.name)
            except BrokerError as e:               # reported; its windows try again at their time
                log.error("broker account unavailable", broker=b.name, reason=str(e), alert=True)
        self.reload_policies()
        log.info("next windows", next=self.upcoming())

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT. Returns the exit code."""
        global _CURRENT
        self.open()
        _CURRENT = self
        assert self.ledger is not None
        self.scheduler = sched = self.schedule()
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self._mtimes.clear())   # the watch job reloads them all
        pidfile = self.settings.data_dir / "daemon.pid"
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(str(os.getpid()))       # ours: we hold the lock
        sched.start()
        api = self._serve_api() if self.settings.api_enabled else None
        heartbeat_job()
        for w in self.settings.windows:          # a daemon that was down at the window's time
            for b in self.settings.brokers:
                threading.Thread(target=self.catch_up, args=(w, b.name), daemon=True).start()
        try:
            while not self.stop.wait(1):
                pass
        except BaseException as e:
            log.error("pies daemon stopped unexpectedly", error=f"{type(e).__name__}: {e}", alert=True)
            raise
        finally:
            log.info("pies daemon stopping: finishing the current step")
            if api is not None:
                api.should_exit = True
            sched.shutdown(wait=True)
            _CURRENT = None
            if pidfile.exists() and pidfile.read_text().strip() == str(os.getpid()):
                pidfile.unlink()                  # only the owner removes it
            self.lock.release()
            self.ledger.dispose()
            log.info("pies daemon stopped")
        return 0

    def schedule(self) -> BackgroundScheduler:
        """The scheduler with every job, not started yet."""
        # Jobs live in memory: the settings define them at every start, and a window missed
        # while the daemon was down is run by catch_up at start (the ledger says whether it
        # closed), not by a job store's memory of it (docs/window.md, "The daemon's schedule").
        # A run that starts late still runs within its misfire grace (until the cut-off);
        # runs missed together coalesce into one.
        sched = BackgroundScheduler(jobstores={"default": MemoryJobStore()},
                                    job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        for w in self.settings.windows:
            for k, b in enumerate(self.settings.brokers):
                job = f"window:{w.name}" if k == 0 else f"window:{w.name}@{b.name}"
                sched.add_job(run_window_job, CronTrigger(day_of_week="mon-fri", hour=w.at.hour, minute=w.at.minute,
                                                          timezone=ZoneInfo(w.timezone)),
                              args=[w.name, b.name], id=job, name=f"window {w.name} of {b.name}",
                              misfire_grace_time=grace_seconds(w))
        sched.add_job(heartbeat_job, "interval", seconds=60, id="heartbeat")
        sched.add_job(watch_job, "interval", seconds=5, id="watch-policies")
        return sched

    def _serve_api(self):
        """The HTTP API and console in a thread of the daemon ([api] enabled = true)."""
        import uvicorn
        from engine.shell.api import create_app
        s = self.settings
        server = uvicorn.Server(uvicorn.Config(create_app(s, ledger=self.ledger, access_log=True,
                                                          live_prices=lambda symbols: self.broker.latest_prices(symbols)
                                                          if symbols else {}),
                                               host=s.api_host, port=s.api_port, log_level="warning",
                                               server_header=False, proxy_headers=False, access_log=False))
        server.install_signal_handlers = lambda: None      # the daemon owns SIGTERM
        threading.Thread(target=server.run, name="pies-api", daemon=True).start()
        log.info("api listening", url=f"http://{s.api_host}:{s.api_port}", console=f"http://{s.api_host}:{s.api_port}/console/")
        return server

    def catch_up(self, w: Window, broker: str | None = None) -> None:
        broker = broker or self.settings.broker_name
        today = self.now().astimezone(ZoneInfo(w.timezone)).date()
        due = window_due(w, self.now(), self._trading(today, broker))
        if due.run:
            log.info("catching up a window", window_name=w.name, broker=broker, day=today.isoformat())
            self.run_window(w.name, broker)
        elif due.final:
            log.info("today's window does not run", window_name=w.name, broker=broker, day=today.isoformat(),
                     reason=due.reason)

    def _trading(self, day: date, broker: str | None = None) -> bool:
        try:
            return self._broker(broker or self.settings.broker_name).market_day(day) is not None
        except BrokerError as e:
            log.warning("calendar unavailable", broker=broker, error=str(e))
            return False

    # --- the window job ---------------------------------------------------------------------

    def _enter(self, key: tuple[str, str]) -> bool:
        """Start a window unless it is running already; waits while policies reload."""
        while True:
            with self._state:
                if key in self._running:
                    return False
                if not self._reloading:
                    self._running.add(key)
                    return True
            self.stop.wait(0.2)

    def run_window(self, name: str, broker: str | None = None) -> dict | None:
        broker = broker or self.settings.broker_name
        w = next(x for x in self.settings.windows if x.name == name)
        now = self.now()
        today = now.astimezone(ZoneInfo(w.timezone)).date()
        wlog = log.bind(window_name=name, broker=broker, day=today.isoformat())
        try:
            adapter = self._broker(broker)
        except BrokerError as e:
            wlog.error("window not run: the broker account is unavailable", reason=str(e), alert=True)
            return None
        due = window_due(w, now, self._trading(today, broker))
        if not due.run:
            wlog.info("window skipped", reason=due.reason)
            return None
        key = (name, broker)
        if not self._enter(key):     # the cron job and a catch-up never run one window twice at once
            wlog.info("window already running")
            return None
        try:
            runner = WindowRunner(self.ledger, adapter, broker,
                                  window_options(self.settings, broker, settle_timeout=self._settle_bound(w, now, broker)),
                                  stop=self.stop)
            report = runner.run(today, name, accounts=False)
        except Interrupted as e:
            wlog.info("window interrupted; it resumes at the next start", reason=str(e))
            return None
        except WindowPaused as e:
            wlog.warning("window paused; it resumes at the next trigger", reason=str(e), alert=True)
            return None
        except WindowHeld as e:            # logged with its breaks (alert) by the window; an operator accepts
            wlog.error("window waits for an operator", reason=str(e), alert=True)
            return None
        except LedgerConflict as e:        # `pies window run` or the API runs it: not twice
            wlog.warning("window not run here: it is running elsewhere", reason=str(e))
            return None
        except StopTrading as e:
            wlog.error("trading stopped on this broker account: a person must act", reason=str(e), alert=True)
            self.brokers.pop(broker, None)     # reopened (keys read again) at its next window
            return None
        except Exception:  # noqa: BLE001 - the daemon lives on; the window resumes later
            wlog.exception("window failed", alert=True)
            return None
        finally:
            with self._state:
                self._running.discard(key)
        problems = report.get("problems", [])
        wlog.info("window report", accounts=report.get("account_count", 0), orders=len(report.get("orders", [])),
                  problems=problems, **({"alert": True} if problems else {}))
        return report

    def _settle_bound(self, w: Window, now: datetime, broker: str | None = None) -> float:
        """Wait for fills until `settle.before_close_minutes` before the close (early closes
        included), at least `settle.at_least_seconds`: the broker account's own settings."""
        b = self.settings.broker_named(broker) if broker else self.settings.broker
        day = now.astimezone(ZoneInfo(w.timezone)).date()
        least = b.settle_at_least_seconds
        try:
            md = self._broker(b.name).market_day(day)
        except BrokerError:
            md = None
        if md is None:
            return least
        before = timedelta(minutes=b.settle_before_close_minutes)
        return max(least, (md.close - before - now).total_seconds())

    # --- policies -------------------------------------------------------------------------

    def reload_policies(self) -> None:
        for f in self.settings.policy_files:
            self._load(f)

    def reload_if_changed(self) -> None:
        for f in self.settings.policy_files:
            try:
                m = Path(f).stat().st_mtime
            except OSError:
                continue
            if self._mtimes.get(f) != m:
                self._load(f)

    def _load(self, f: str) -> None:
        # Accounts must not change pies in the middle of a window: wait for it to end (the
        # watch job retries every few seconds, since the file still looks unread).
        with self._state:
            if self._running:
                log.info("policy reload waits for the running windows", file=f,
                         windows=sorted(f"{n}@{b}" for n, b in self._running))
                return
            self._reloading = True
        try:
            self._load_now(f)
        finally:
            with self._state:
                self._reloading = False

    def _load_now(self, f: str) -> None:
        """A changed file is planned first. A change that trades nothing applies at once; one
        that would liquidate is staged until `pies policy apply`, unless `auto_apply` allows
        it (within its limits)."""
        try:
            self._mtimes[f] = Path(f).stat().st_mtime
            path, text = policies.read(f)          # one file, one policy: by its resolved path
            plan = policies.plan(self.ledger, path, text, self.broker.latest_prices)
            for warning in policies.stale_names(self.ledger, path, text):
                log.warning("policy names a changed symbol", file=path, warning=warning)
            if not plan.changed:
                return
            why = self._needs_approval(plan)
            if why:
                if self._staged.get(path) != plan.sha256:
                    self._staged[path] = plan.sha256
                    log.warning("policy change staged: it waits for `pies policy apply`", file=path, reason=why,
                                sha=plan.sha256[:12], accounts=len(plan.accounts), amount=fmt(plan.cents),
                                by_symbol={sym: fmt(c) for sym, _, c in plan.totals}, alert=True)
                return
            version, queued = policies.apply(self.ledger, path, text, source="auto" if plan.trades else "daemon")
            self._staged.pop(path, None)
            log.info("policy loaded", file=f, version=version.id, queued=queued)
        except policy_lang.PolicyError as e:
            for d in e.diagnostics:
                log.error("policy rejected; the previous version keeps trading", file=f, error=d.render().splitlines()[0])
        except (LedgerError, OSError, BrokerError) as e:
            log.error("policy rejected; the previous version keeps trading", file=f, error=str(e))

    def _needs_approval(self, plan) -> str | None:
        """Why a change must wait for a person, or None when it may apply now."""
        if not plan.trades:
            return None
        s = self.settings
        if not s.auto_apply:
            return f"it liquidates ${fmt(plan.cents)} in {len(plan.accounts)} account(s)"
        if plan.unpriced:
            return f"no price for {', '.join(plan.unpriced)}: the amount is unknown"
        if s.auto_apply_max_cents is not None and plan.cents > s.auto_apply_max_cents:
            return f"it liquidates ${fmt(plan.cents)}, over the auto_apply limit of ${fmt(s.auto_apply_max_cents)}"
        if s.auto_apply_max_accounts is not None and len(plan.accounts) > s.auto_apply_max_accounts:
            return f"it liquidates in {len(plan.accounts)} accounts, over the auto_apply limit of " \
                   f"{s.auto_apply_max_accounts}"
        return None


def reload_running(settings: Settings) -> int:
    """`pies reload`: SIGHUP the running daemon. Returns its pid."""
    pidfile = settings.data_dir / "daemon.pid"
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        raise LedgerError(f"no daemon is running (no pid in {pidfile})") from None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise LedgerError(f"no daemon is running (pid {pid} from {pidfile} is gone)") from None
    return pid



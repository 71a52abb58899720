"""The web console: pages a person reads (on a phone too), served by the API's app.

Sign in with an API token; the console then keeps a server-side session behind an
HttpOnly, SameSite=Strict cookie, and every form carries the session's CSRF token. The
pages call the same service layer as the CLI and the API; no JavaScript, no CDN: one
stylesheet and the templates ship in the package.
"""

import math
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from html import escape
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

import rules as policy_lang
from engine.core.errors import BrokerUnavailable, PiesError, Refused
from engine.core.money import cents, fmt, parse_dollars
from engine.core.roles import Caller
from engine.shell.service import NotAPolicyFile, StalePlan, gains_csv, safe_name

HERE = Path(__file__).parent
COOKIE = "pies_session"
SESSION_SECONDS = 8 * 3600
PER_TOKEN = 20              # console sessions one token may hold at once
PALETTE = ["#2f5fd0", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4",
           "#b15928"]


@dataclass
class Session:
    caller: Caller
    csrf: str
    token: str             # the token's hash (never the token): the session lives only while it does
    started: float
    seen: float


class Sessions:
    """Console sessions in memory: a random id -> its caller, CSRF token and token hash.

    A session ends when it has been idle for `idle` seconds, SESSION_SECONDS after sign-in,
    at sign-out, and at once when its token is revoked or its role changed: `current(hash)`
    (the token's caller as the ledger has it now) is asked on every request."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, idle: float = 30 * 60,
                 current: Callable[[str], Caller | None] | None = None):
        self.clock, self.idle, self.current = clock, idle, current
        self._s: dict[str, Session] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._s)

    def start(self, who: Caller, token_hash: str = "") -> tuple[str, str]:
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            for old in [k for k, v in self._s.items() if self._expired(v, now)]:
                del self._s[old]                  # ended sessions do not pile up
            mine = [k for k, v in self._s.items() if v.token == token_hash]
            for old in mine[:max(0, len(mine) - PER_TOKEN + 1)]:
                del self._s[old]                  # a token signs in again and again: its oldest sessions go
            self._s[sid] = Session(who, csrf, token_hash, now, now)
        return sid, csrf

    def _expired(self, v: Session, now: float) -> bool:
        return now - v.seen > self.idle or now - v.started > SESSION_SECONDS

    def get(self, sid: str | None) -> tuple[Caller, str] | None:
        if not sid:
            return None
        now = self.clock()
        with self._lock:
            got = self._s.get(sid)
            if got is None or self._expired(got, now):
                self._s.pop(sid, None)
                return None
        if self.current is not None:
            who = self.current(got.token)
            if who is None or who != got.caller:       # revoked, or its role (or name) changed
                self.end(sid)
                return None
        with self._lock:
            got.seen = now
        return got.caller, got.csrf

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._s.pop(sid or "", None)


def pie_chart(slices: list[dict[str, Any]], size: int = 260) -> str:
    """An SVG donut: the outer ring one segment per security at its target share of the
    whole portfolio, the inner ring its actual share; nested pies as a band outside."""
    leaves = [s for s in slices if not s["pie"]]
    pies = [s for s in slices if s["pie"]]
    effective: dict[str, float] = {}

    def share(path: str, key: str) -> float:
        # Effective share of the whole: the product of the shares down the path (display only).
        out, parts = 1.0, path.split("/")
        by_path = {s["path"]: s for s in slices}
        for k in range(1, len(parts) + 1):
            s = by_path.get("/".join(parts[:k]))
            v = s.get(key) if s else None
            out *= float(str(v).rstrip("%")) / 100 if v else 0.0
        return out

    c = size / 2
    parts = [f'<svg class="pie-chart" viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img" '
             f'aria-label="target and actual by slice">']

    def arc(r0: float, r1: float, a0: float, a1: float, color: str, cls: str, path: str, label: str) -> str:
        if a1 - a0 <= 1e-9:
            return (f'<path class="segment {cls}" data-slice="{escape(path)}" d="" fill="{color}">'
                    f'<title>{escape(label)}</title></path>')
        a1 = min(a1, a0 + 2 * math.pi - 1e-6)
        big = 1 if a1 - a0 > math.pi else 0
        x = lambda r, a: c + r * math.sin(a)       # noqa: E731 - clockwise from 12 o'clock
        y = lambda r, a: c - r * math.cos(a)       # noqa: E731
        d = (f"M {x(r1, a0):.2f} {y(r1, a0):.2f} A {r1} {r1} 0 {big} 1 {x(r1, a1):.2f} {y(r1, a1):.2f} "
             f"L {x(r0, a1):.2f} {y(r0, a1):.2f} A {r0} {r0} 0 {big} 0 {x(r0, a0):.2f} {y(r0, a0):.2f} Z")
        return (f'<path class="segment {cls}" data-slice="{escape(path)}" d="{d}" fill="{color}" stroke="#fff" '
                f'stroke-width="1"><title>{escape(label)}</title></path>')

    colors = {s["path"]: PALETTE[i % len(PALETTE)] for i, s in enumerate(leaves)}
    for key, cls, r0, r1 in (("target", "target", c * 0.62, c * 0.82), ("actual", "actual", c * 0.36, c * 0.58)):
        a = 0.0
        for s in leaves:
            frac = share(s["path"], key)
            effective[f"{cls}:{s['path']}"] = frac
            parts.append(arc(r0, r1, a, a + 2 * math.pi * frac, colors[s["path"]], cls, s["path"],
                             f"{s['path']} {key} {frac * 100:.2f}%"))
            a += 2 * math.pi * frac
    a = 0.0
    starts: dict[str, float] = {}
    for s in leaves:
        for p in pies:
            if s["path"].startswith(p["path"] + "/") and p["path"] not in starts:
                starts[p["path"]] = a
        a += 2 * math.pi * effective[f"target:{s['path']}"]
    for p in pies:
        span = 2 * math.pi * share(p["path"], "target")
        parts.append(arc(c * 0.86, c * 0.96, starts.get(p["path"], 0.0), starts.get(p["path"], 0.0) + span, "#c9ced8",
                         "pie-band", p["path"], f"pie {p['path']} target {span / 2 / math.pi * 100:.2f}%"))
    parts.append("</svg>")
    legend = "".join(f'<div class="legend"><span style="background:{colors[s["path"]]}"></span>{escape(s["path"])}'
                     f'</div>' for s in leaves)
    return "".join(parts) + legend


def grouped(value: Any) -> str:
    """A number as people read it: thousands separated (1,250.50; -12,000; +3.5), the
    digits after the point kept as they are. Anything else is shown as it is."""
    if value is None or value == "":
        return ""
    text = str(value)
    sign = text[0] if text[:1] in "+-" else ""
    try:
        d = Decimal(text[len(sign):].replace(",", ""))
    except InvalidOperation:
        return text
    return sign + format(d, ",") if d.is_finite() else text


def percent(x: float | None) -> str:
    """A return as people read it: +1.23% (a dash when the period defines none)."""
    return "-" if x is None else f"{x * 100:+.2f}%"


def local_time(value: Any, zone: str = "UTC") -> Markup:
    """An ISO time as a <time> element reading in `zone` (the market's: the first window's
    time zone), e.g. "2026-11-24 10:00 EST"; the exact UTC instant in its title."""
    if not value:
        return Markup("")
    try:
        t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return Markup(escape(str(value)))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    utc = t.astimezone(timezone.utc)
    here = t.astimezone(ZoneInfo(zone))
    return Markup(f'<time datetime="{utc.isoformat()}" title="{utc:%Y-%m-%d %H:%M} UTC">'
                  f'{here:%Y-%m-%d %H:%M} {escape(here.tzname() or zone)}</time>')


def mount_console(app: FastAPI, *, access, service, sessions: Sessions | None = None) -> None:
    pages = Jinja2Templates(directory=str(HERE / "templates"))
    zone = app.state.settings.windows[0].timezone if app.state.settings.windows else "UTC"
    pages.env.filters["num"] = grouped
    pages.env.filters["when"] = lambda v: local_time(v, zone)
    pages.env.globals["zone"] = zone
    from engine.shell.report import replaced_orders
    pages.env.globals["replaced"] = replaced_orders           # the CLI's words for dropped orders
    store = sessions or Sessions(idle=app.state.settings.api_session_idle_seconds, current=access.current)
    app.state.sessions = store
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="static")
    limiter = app.state.limiter
    settings = app.state.settings

    def render(request: Request, template: str, title: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
        s = store.get(request.cookies.get(COOKIE))
        who, csrf = s if s else (None, "")
        return pages.TemplateResponse(request, template, {"title": title, "who": who, "csrf": csrf, **ctx},
                                      status_code=status)

    def signed_in(request: Request) -> tuple[Caller, str] | None:
        return store.get(request.cookies.get(COOKIE))

    def to_login() -> RedirectResponse:
        return RedirectResponse("/console/login", status_code=303)

    def checked(request: Request, csrf: str, role: str) -> Caller | Response:
        s = signed_in(request)
        if s is None:
            return to_login()
        who, token = s
        if not secrets.compare_digest(csrf or "", token):
            return HTMLResponse("<h1>Refused</h1><p>This form is missing its CSRF token; reload the page.</p>",
                                status_code=403)
        if not who.may(role):
            return HTMLResponse(f"<h1>Refused</h1><p>This needs the {role} role.</p>", status_code=403)
        return who

    @app.get("/console/login", include_in_schema=False)
    def login_page(request: Request) -> HTMLResponse:
        return render(request, "login.html", "Sign in", {})

    @app.post("/console/login", include_in_schema=False)
    def login(request: Request, token: str = Form("")) -> Response:
        client = app.state.client_of(request)
        wait = limiter.wait(client)
        if wait:
            return render(request, "login.html", "Sign in", {"message": f"Too many failed sign-ins; try again in "
                                                                        f"{int(wait) + 1} seconds.", "bad": True},
                          status=429)
        token = token.strip()[:200]
        who = access.check(token)
        if who is None:
            wait = limiter.wait(client, token)        # wrong tokens are held to their prefix's count too
            limiter.failed(client, token)
            if wait:
                return render(request, "login.html", "Sign in", {"message": f"Too many failed sign-ins; try again "
                                                                            f"in {int(wait) + 1} seconds.",
                                                                 "bad": True}, status=429)
            return render(request, "login.html", "Sign in", {"message": "That token is not valid.", "bad": True},
                          status=401)
        sid, _ = store.start(who, access.fingerprint(token))
        r = RedirectResponse("/console/", status_code=303)
        r.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=app.state.scheme_of(request) == "https",
                     max_age=SESSION_SECONDS, path="/console")
        return r

    @app.post("/console/logout", include_in_schema=False)
    def logout(request: Request, csrf: str = Form("")) -> Response:
        got = checked(request, csrf, "viewer")
        if isinstance(got, Response):
            return got
        store.end(request.cookies.get(COOKIE))
        r = to_login()
        r.delete_cookie(COOKIE, path="/console")
        return r

    @app.get("/console/", include_in_schema=False)
    def dashboard(request: Request) -> Response:
        if signed_in(request) is None:
            return to_login()
        accounts = service.accounts()
        from decimal import Decimal
        total_value = sum(cents(Decimal(a["value"])) for a in accounts["accounts"])
        total_cash = sum(cents(Decimal(a["cash"])) for a in accounts["accounts"])
        try:
            status, plan = service.status(), service.plan()
        except BrokerUnavailable as e:
            status = {"brokers": [{"broker": settings.broker_name, "next": [], "error": e.console()}]}
            plan = {"orders": []}
        windows = service.windows(1)["windows"]
        return render(request, "dashboard.html", "Dashboard", {
            "accounts": accounts, "total_value": fmt(total_value, commas=True), "total_cash": fmt(total_cash, commas=True),
            "pending": sum(a["pending"] for a in accounts["accounts"]), "status": status, "plan": plan,
            "last": windows[0] if windows else None})

    @app.get("/console/accounts", include_in_schema=False)
    def accounts_page(request: Request, search: str = "", page: int = 1) -> Response:
        if signed_in(request) is None:
            return to_login()
        return render(request, "accounts.html", "Accounts",
                      {"page": service.accounts(page=max(page, 1), size=50, search=search[:100]), "search": search})

    @app.get("/console/accounts/{name}", include_in_schema=False)
    def account_page(request: Request, name: str, message: str = "", bad: int = 0) -> Response:
        if signed_in(request) is None:
            return to_login()
        try:
            a = service.account(name)
        except PiesError as e:
            return render(request, "windows.html", e.title.capitalize(), {"windows": [], "message": e.console(),
                                                                          "bad": True}, status=e.status)
        return render(request, "account.html", name, {"a": a, "h": service.history(name),
                                                      "chart": pie_chart(a["slices"]), "message": message,
                                                      "bad": bool(bad)})

    def refused_page(request: Request, e: PiesError) -> HTMLResponse:
        return render(request, "windows.html", e.title.capitalize(), {"windows": [], "message": e.console(),
                                                                      "bad": True}, status=e.status)

    def day_param(text: str, what: str) -> date | None:
        """A date a page was given (empty: none); a bad one is refused naming it."""
        if not text:
            return None
        try:
            if len(text) != 10:
                raise ValueError(text)
            return date.fromisoformat(text)
        except ValueError:
            raise Refused(f"{what} {text[:30]!r} is not a date like 2026-11-24") from None

    @app.get("/console/accounts/{name}/performance", include_in_schema=False)
    def performance_page(request: Request, name: str) -> Response:
        if signed_in(request) is None:
            return to_login()
        start, end = request.query_params.get("from", ""), request.query_params.get("to", "")
        try:
            p = service.performance(name, day_param(start, "from"), day_param(end, "to"))
        except PiesError as e:
            return refused_page(request, e)
        return render(request, "performance.html", f"{name}: performance",
                      {"p": p, "start": start[:10], "end": end[:10], "pct": percent})

    @app.get("/console/accounts/{name}/lots", include_in_schema=False)
    def lots_page(request: Request, name: str) -> Response:
        if signed_in(request) is None:
            return to_login()
        try:
            d = service.lots(name)
        except PiesError as e:
            return refused_page(request, e)
        return render(request, "lots.html", f"{name}: lots", {"d": d})

    def year_param(text: str) -> int | None:
        if not text:
            return None
        if not (len(text) == 4 and text.isdigit()):
            raise Refused(f"year {text[:30]!r} is not a year like 2026")
        return int(text)

    def gains_page(request: Request, title: str, ask: Callable[[int | None], dict[str, Any]], base: str,
                   filename: str) -> Response:
        """A gains page, or its CSV download (`format=csv`): the same document either way."""
        from urllib.parse import urlencode
        if signed_in(request) is None:
            return to_login()
        year = request.query_params.get("year", "")
        try:
            d = ask(year_param(year))
        except PiesError as e:
            return refused_page(request, e)
        if request.query_params.get("format") == "csv":
            name = f"{filename}{'-' + year if d['year'] else ''}.csv"
            return Response(gains_csv(d), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        csv = base + "?" + urlencode({"format": "csv", **({"year": d["year"]} if d["year"] else {})})
        return render(request, "gains.html", title, {"d": d, "who_": title, "csv": csv})

    @app.get("/console/accounts/{name}/gains", include_in_schema=False)
    def account_gains_page(request: Request, name: str) -> Response:
        from urllib.parse import quote
        return gains_page(request, name, lambda y: service.gains(name, year=y),
                          f"/console/accounts/{quote(name[:100])}/gains", f"gains-{safe_name(name)}")

    @app.get("/console/owners/{owner}/gains", include_in_schema=False)
    def owner_gains_page(request: Request, owner: str) -> Response:
        from urllib.parse import quote
        return gains_page(request, f"owner {owner}", lambda y: service.gains(owner=owner, year=y),
                          f"/console/owners/{quote(owner[:100])}/gains", f"gains-owner-{safe_name(owner)}")

    def back(name: str, message: str, bad: bool = False) -> RedirectResponse:
        from urllib.parse import quote, urlencode
        # The message rides in the URL: never long, whatever was typed into the form.
        short = message if len(message) <= 300 else message[:300] + "..."
        return RedirectResponse(f"/console/accounts/{quote(name[:100])}?" + urlencode({"message": short,
                                                                                       "bad": int(bad)}),
                                status_code=303)

    @app.post("/console/accounts/{name}/events", include_in_schema=False)
    def record(request: Request, name: str, csrf: str = Form(""), kind: str = Form(...),
               amount: str = Form("")) -> Response:
        who = checked(request, csrf, "operator")
        if isinstance(who, Response):
            return who
        args = {"account": name, "kind": kind, "amount": amount or None}
        if len(kind) > 20:
            service.refused(who, f"record {kind[:20]}", args, Refused("too long"))    # audited as "refused: too long"
            return back(name, "No such kind of event.", True)
        try:
            doc = service.audited(who, f"record {kind}", args, lambda: service.record(
                kind, name, None if kind == "rebalance" else parse_dollars(amount, what=kind)))
        except PiesError as e:
            return back(name, e.console(), True)
        return back(name, f"{kind} #{doc['event']} recorded" + (f": {doc['amount_text']}" if doc["amount_text"]
                                                                else "") + " (pending until the next window)")

    @app.post("/console/events/{event_id}/cancel", include_in_schema=False)
    def cancel(request: Request, event_id: int, csrf: str = Form(""), account: str = Form("")) -> Response:
        who = checked(request, csrf, "operator")
        if isinstance(who, Response):
            return who
        try:
            service.audited(who, "cancel", {"event": event_id}, lambda: service.cancel(event_id))
        except PiesError as e:
            return back(account, e.console(), True)
        return back(account, f"event #{event_id} canceled")

    @app.get("/console/windows", include_in_schema=False)
    def windows_page(request: Request) -> Response:
        if signed_in(request) is None:
            return to_login()
        return render(request, "windows.html", "Windows", {"windows": service.windows(100)["windows"]})

    @app.get("/console/windows/{window_id}", include_in_schema=False)
    def window_page(request: Request, window_id: int, page: int = 1) -> Response:
        if signed_in(request) is None:
            return to_login()
        try:
            w = service.window(window_id, min(max(page, 1), 1_000_000), 100)   # a page of accounts at a time
        except PiesError as e:
            return render(request, "windows.html", e.title.capitalize(), {"windows": [], "message": e.console(),
                                                                          "bad": True}, status=e.status)
        return render(request, "window.html", f"Window {window_id}", {"w": w})

    @app.get("/console/reconcile", include_in_schema=False)
    def reconcile_page(request: Request, message: str = "", bad: int = 0) -> Response:
        if signed_in(request) is None:
            return to_login()
        try:
            r = service.reconciliation()
        except PiesError as e:
            return render(request, "windows.html", e.title.capitalize(), {"windows": [], "message": e.console(),
                                                                          "bad": True}, status=e.status)
        return render(request, "reconcile.html", "Reconcile", {"r": r, "message": message[:300], "bad": bool(bad)})

    @app.post("/console/reconcile/accept", include_in_schema=False)
    def reconcile_accept(request: Request, csrf: str = Form(""), reason: str = Form("", max_length=2000),
                         broker: str = Form("", max_length=100)) -> Response:
        from urllib.parse import urlencode
        who = checked(request, csrf, "operator")
        if isinstance(who, Response):
            return who
        try:
            doc = service.accept_breaks(reason, caller=who, broker=broker or None)
        except PiesError as e:
            return RedirectResponse("/console/reconcile?" + urlencode({"message": e.console()[:300], "bad": 1}),
                                    status_code=303)
        said = ", ".join(f"{a['symbol']} {a['difference']}" for a in doc["accepted"])
        return RedirectResponse("/console/reconcile?" + urlencode({"message": f"accepted: {said}"[:300]}),
                                status_code=303)

    def plan_of(f: str) -> dict[str, Any]:
        try:
            plan = service.plan_policy(f)
            return {"file": plan.file, "plan": {**plan.to_json(), "tax": service.policy_tax(plan)},
                    "warnings": service.policy_warnings(f)}
        except policy_lang.PolicyError as e:
            return {"file": f, "error": e.render()}
        except PiesError as e:
            return {"file": f, "error": e.console()}

    from engine.shell.backtest.api import mount_console_page
    mount_console_page(app, render=render, signed_in=signed_in, checked=checked, to_login=to_login,
                       policy_files=settings.policy_files)

    @app.get("/console/policies", include_in_schema=False)
    def policies_page(request: Request, message: str = "", bad: int = 0) -> Response:
        if signed_in(request) is None:
            return to_login()
        return render(request, "policies.html", "Policies", {"plans": [plan_of(f) for f in settings.policy_files],
                                                             "message": message, "bad": bool(bad)})

    @app.get("/console/policies/confirm", include_in_schema=False)
    def policy_confirm(request: Request, file: str = "", sha256: str = "") -> Response:
        """A change that sells is applied only from this page: its plan, then one button."""
        if signed_in(request) is None:
            return to_login()
        try:
            service.policy_file(file)
        except NotAPolicyFile:
            return HTMLResponse("<h1>Refused</h1><p>Not a policy file of these settings.</p>", status_code=403)
        p = plan_of(file)
        stale = "plan" in p and p["plan"]["sha256"] != sha256
        return render(request, "confirm.html", "Confirm the policy change", {
            "p": p, "stale": stale, "message": "The file changed since that plan was shown: this is its plan "
                                               "now." if stale else "", "bad": stale})

    @app.post("/console/policies/apply", include_in_schema=False)
    def policy_apply(request: Request, csrf: str = Form(""), file: str = Form(..., max_length=4096),
                     sha256: str = Form(..., max_length=64), confirm: str = Form("")) -> Response:
        who = checked(request, csrf, "analyst")
        if isinstance(who, Response):
            return who
        from urllib.parse import urlencode
        try:
            service.policy_file(file)
        except NotAPolicyFile:
            return HTMLResponse("<h1>Refused</h1><p>Not a policy file of these settings.</p>", status_code=403)
        p = plan_of(file)
        if "plan" in p and p["plan"]["trades"] and confirm != "liquidate":
            # Selling is confirmed on the page that shows what would be sold (the CLI asks too).
            return RedirectResponse("/console/policies/confirm?" + urlencode({"file": file, "sha256": sha256}),
                                    status_code=303)
        try:
            done = service.apply_policy(file, sha256, caller=who, source=f"console:{who.name}")   # audited there
        except NotAPolicyFile:
            return HTMLResponse("<h1>Refused</h1><p>Not a policy file of these settings.</p>", status_code=403)
        except StalePlan:
            msg, bad = "The file changed since this plan was shown; review the new plan.", 1
        except (PiesError, policy_lang.PolicyError) as e:
            msg, bad = str(e), 1
        else:
            msg, bad = f"Applied version {done['version']}; queued {len(done['queued'])} event(s).", 0
        return RedirectResponse("/console/policies?" + urlencode({"message": msg, "bad": bad}), status_code=303)

    @app.get("/console/events", include_in_schema=False)
    def events_page(request: Request, page: int = 1) -> Response:
        """Every pending event, of every account: what the next window will do."""
        if signed_in(request) is None:
            return to_login()
        page = min(max(page, 1), 1_000_000)
        doc = service.pending_events(page=page, size=100)
        return render(request, "events.html", "Pending events", {"page": doc})

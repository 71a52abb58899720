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
from html import escape
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

import rules as policy_lang
from engine.core.roles import Caller
from engine.core.errors import BrokerUnavailable, PiesError

HERE = Path(__file__).parent
COOKIE = "pies_session"
SESSION_SECONDS = 8 * 3600
PALETTE = ["#2f5fd0", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4",
           "#b15928"]


class Sessions:
    """Console sessions in memory: a random id -> (caller, CSRF token, expiry)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._s: dict[str, tuple[Caller, str, float]] = {}
        self._lock = threading.Lock()

    def start(self, who: Caller) -> tuple[str, str]:
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._s[sid] = (who, csrf, self.clock() + SESSION_SECONDS)
        return sid, csrf

    def get(self, sid: str | None) -> tuple[Caller, str] | None:
        if not sid:
            return None
        with self._lock:
            got = self._s.get(sid)
            if got is None or got[2] < self.clock():
                self._s.pop(sid, None)
                return None
            return got[0], got[1]

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


def mount_console(app: FastAPI, *, access, service, sessions: Sessions | None = None) -> None:
    pages = Jinja2Templates(directory=str(HERE / "templates"))
    store = sessions or Sessions()
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="static")
    limiter = app.state.limiter
    settings = app.state.settings
    led = app.state.ledger

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
        client = request.client.host if request.client else "unknown"
        wait = limiter.wait(client)
        if wait:
            return render(request, "login.html", "Sign in", {"message": f"Too many failed sign-ins; try again in "
                                                                        f"{int(wait) + 1} seconds.", "bad": True},
                          status=429)
        who = access.check(token.strip())
        if who is None:
            limiter.failed(client)
            return render(request, "login.html", "Sign in", {"message": "That token is not valid.", "bad": True},
                          status=401)
        sid, _ = store.start(who)
        r = RedirectResponse("/console/", status_code=303)
        r.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=request.url.scheme == "https",
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
        total_value = sum((Decimal(a["value"]) for a in accounts["accounts"]), Decimal(0))
        total_cash = sum((Decimal(a["cash"]) for a in accounts["accounts"]), Decimal(0))
        try:
            status, plan = service.status(), service.plan()
        except BrokerUnavailable as e:
            status = {"brokers": [{"broker": settings.broker_name, "next": [], "error": e.console()}]}
            plan = {"orders": []}
        windows = service.windows(1)["windows"]
        return render(request, "dashboard.html", "Dashboard", {
            "accounts": accounts, "total_value": f"{total_value:,.2f}", "total_cash": f"{total_cash:,.2f}",
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

    def back(name: str, message: str, bad: bool = False) -> RedirectResponse:
        from urllib.parse import quote, urlencode
        return RedirectResponse(f"/console/accounts/{quote(name)}?" + urlencode({"message": message, "bad": int(bad)}),
                                status_code=303)

    @app.post("/console/accounts/{name}/events", include_in_schema=False)
    def record(request: Request, name: str, csrf: str = Form(""), kind: str = Form(...),
               amount: str = Form("")) -> Response:
        who = checked(request, csrf, "operator")
        if isinstance(who, Response):
            return who
        args = {"account": name, "kind": kind, "amount": amount or None}
        try:
            doc = service.audited(who, f"record {kind}", args, lambda: service.record(kind, name, amount or None))
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

    def plans() -> list[dict[str, Any]]:
        out = []
        for f in settings.policy_files:
            try:
                text = policy_lang.read_policy_text(f)
                out.append({"file": f, "plan": led.plan_policy(f, text, service.live_prices).to_json()})
            except policy_lang.PolicyError as e:
                out.append({"file": f, "error": e.render()})
            except PiesError as e:
                out.append({"file": f, "error": e.console()})
        return out

    from engine.shell.backtest.api import mount_console_page
    mount_console_page(app, render=render, signed_in=signed_in, checked=checked, to_login=to_login,
                       policy_files=settings.policy_files)

    @app.get("/console/policies", include_in_schema=False)
    def policies_page(request: Request, message: str = "", bad: int = 0) -> Response:
        if signed_in(request) is None:
            return to_login()
        return render(request, "policies.html", "Policies", {"plans": plans(), "message": message, "bad": bool(bad)})

    @app.post("/console/policies/apply", include_in_schema=False)
    def policy_apply(request: Request, csrf: str = Form(""), file: str = Form(...), sha256: str = Form(...)) -> Response:
        who = checked(request, csrf, "analyst")
        if isinstance(who, Response):
            return who
        import hashlib
        from urllib.parse import urlencode
        if file not in settings.policy_files:
            return HTMLResponse("<h1>Refused</h1><p>Not a policy file of these settings.</p>", status_code=403)
        text = policy_lang.read_policy_text(file)
        if hashlib.sha256(text.encode()).hexdigest() != sha256:
            msg, bad = "The file changed since this plan was shown; review the new plan.", 1
        else:
            try:
                version, queued = led.apply_policy(file, text, source=f"console:{who.name}")
                access.audit(who, "apply policy", {"file": file, "sha256": sha256}, "ok")
                msg, bad = f"Applied version {version.id}; queued {len(queued)} event(s).", 0
            except (PiesError, policy_lang.PolicyError) as e:
                access.audit(who, "apply policy", {"file": file, "sha256": sha256}, f"refused: {e}")
                msg, bad = str(e), 1
        return RedirectResponse("/console/policies?" + urlencode({"message": msg, "bad": bad}), status_code=303)

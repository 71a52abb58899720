"""The HTTP API (FastAPI): the service layer over HTTP, for operators' scripts and the
systems around pies (a bank feed recording deposits, a back office asking for values).

- Every route but `/health` needs `Authorization: Bearer <token>` (`pies token create`);
  roles rank viewer < operator < analyst < admin. Failed logins are limited per client.
- JSON with amounts as strings; errors are RFC 9457 problem details naming the field at
  fault; `POST /api/v1/events` honours `Idempotency-Key` (the ledger's event key).
- Every write is recorded in the audit log (`pies audit`). No secret is ever sent back.
See docs/api.md.
"""


import threading
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal

from engine.shell import logs
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

import rules as policy_lang
from config.settings import Settings
from engine.core.errors import BrokerUnavailable, PiesError, Unavailable
from engine.core.money import parse_dollars
from engine.core.roles import ROLES, Caller
from engine.shell.guards import MAX_FAILURES, WINDOW, Limiter  # noqa: F401 - re-exported for callers and tests
from engine.shell.guards import AccessLog, BodyLimit, client_address, networks, scheme
from engine.shell.service import AUDITED_REFUSALS, NotAPolicyFile, Service, StalePlan, gains_csv, safe_name

if TYPE_CHECKING:
    from adapters.ledger.store import Ledger

log = logs.logger("pies.api")
PROBLEM = "application/problem+json"
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.title, self.detail, self.field, self.headers = status, title, detail, field, headers


def problem(status: int, title: str, detail: str, instance: str, errors: list[dict] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail[:2000],
                            "instance": instance[:300]}     # nothing a caller sent comes back long
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class WindowRuns:
    """Windows started over the API, each run in a thread of this process holding its
    window lock; their outcome kept in memory (the last KEEP runs) for the caller to follow."""

    KEEP = 100

    def __init__(self):
        self._runs: dict[int, dict[str, Any]] = {}
        self._next = 1
        self._lock = threading.Lock()

    def start(self, started) -> dict[str, Any]:
        from datetime import datetime, timezone
        with self._lock:
            rid, self._next = self._next, self._next + 1
            self._runs[rid] = {"run": rid, "status": "running", "window": started.window_id, "broker": started.broker,
                               "name": started.name, "day": started.day.isoformat(), "error": None,
                               "started_at": datetime.now(timezone.utc).isoformat(), "finished_at": None,
                               "links": {"run": f"/api/v1/windows/runs/{rid}",
                                         "window": f"/api/v1/windows/{started.window_id}"}}
            for old in sorted(self._runs)[:-self.KEEP]:
                del self._runs[old]
            doc = dict(self._runs[rid])
        threading.Thread(target=self._run, args=(rid, started), name=f"pies-window-run-{rid}", daemon=True).start()
        return doc

    def _run(self, rid: int, started) -> None:
        from datetime import datetime, timezone
        status, error = "closed", None
        try:
            started.run()
        except Exception as e:  # noqa: BLE001 - reported to whoever follows the run; it resumes when run again
            line = str(e).splitlines()[0] if str(e) else ""
            status, error = "failed", line if isinstance(e, PiesError) else f"{type(e).__name__}: {line}"
            log.error("window run failed", run=rid, window=started.window_id, error=error, alert=True)
        with self._lock:
            if rid in self._runs:
                self._runs[rid].update(status=status, error=error, finished_at=datetime.now(timezone.utc).isoformat())

    def get(self, rid: int) -> dict[str, Any] | None:
        with self._lock:
            doc = self._runs.get(rid)
            return None if doc is None else {**doc, "links": dict(doc["links"])}


# --- request bodies ------------------------------------------------------------------------

class EventIn(BaseModel):
    account: str = Field(min_length=1, max_length=100)
    kind: Literal["deposit", "withdrawal", "dividend", "rebalance"]
    # No max_length here: the one amount parser bounds the length itself, so the API refuses
    # an over-long amount with the same words as every other door (the body limit bounds it first).
    amount: str | None = Field(default=None, description="Dollars as a string: 123, 123.45 or 1,234.56 (docs/money.md)")
    path: str = Field(default="", max_length=1000,
                      description="A nested pie, for a rebalance of part of the portfolio")


class AccountIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="1-100 characters, no '/', no control characters")
    pie: str = Field(min_length=1, max_length=200, description="The top-level pie it follows")
    policy: str | None = Field(default=None, max_length=4096,
                               description="One of the settings' policy files (default: the first)")
    rules: str | None = Field(default=None, max_length=100)
    broker: str | None = Field(default=None, max_length=100, description="Default: the first broker account")


class OwnerIn(BaseModel):
    owner: str = Field(min_length=1, max_length=100, description="Who owns the account, for wash sales")


class AccountsIn(BaseModel):
    accounts: list[AccountIn] = Field(min_length=1, max_length=1000)


class PolicyIn(BaseModel):
    file: str = Field(min_length=1, max_length=4096, description="A policy file the daemon follows")
    sha256: str | None = Field(default=None, max_length=64, description="For apply: the text's hash from its plan")


class AcceptIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500,
                        description="What was checked and why the broker's figures are right")
    broker: str | None = Field(default=None, max_length=100, description="Default: the first broker account")


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["viewer", "operator", "analyst", "admin"]


def create_app(settings: Settings, *, ledger: "Ledger | None" = None,
               live_prices: Callable[[list[str]], dict[str, Decimal]] | None = None,
               limiter: Limiter | None = None, access_log: bool = False) -> FastAPI:
    """`access_log`: a line per request (`pies serve` and the daemon; tests keep quiet)."""
    from engine.shell.wiring import open_broker, open_ledger
    led = ledger or open_ledger(settings)
    limits = limiter or Limiter()
    brokers: dict[str, Any] = {}

    def prices(symbols: list[str]) -> dict[str, Decimal]:
        if not symbols:
            return {}
        if live_prices is not None:
            return live_prices(symbols)
        if "b" not in brokers:
            brokers["b"] = open_broker(settings)
        return brokers["b"].latest_prices(symbols)

    service = Service(settings, led, prices)
    access = service.access
    # No open /docs (Swagger UI loads its code from a CDN) and the OpenAPI document needs a
    # token like everything else but /health.
    app = FastAPI(title="pies", version="1", description=__doc__, docs_url=None, redoc_url=None, openapi_url=None,
                  openapi_tags=[{"name": "read"}, {"name": "operate"}, {"name": "policies"}, {"name": "admin"}])
    app.state.ledger, app.state.access, app.state.service, app.state.settings = led, access, service, settings
    app.state.limiter = limits
    proxies = networks(settings.api_trusted_proxies)
    app.state.client_of = lambda request: client_address(request.scope, proxies)
    app.state.scheme_of = lambda request: scheme(request.scope, proxies)
    from engine.shell.backtest.api import API_MAX_TEXT
    upload = 2 * API_MAX_TEXT + 1024 * 1024                 # a backtest's prices and actions files, and the rest
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes,
                       routes={"/api/v1/backtests": upload, "/console/backtests": upload})
    if access_log:
        app.add_middleware(AccessLog, proxies=proxies)

    # --- errors as problem details ----------------------------------------------------------

    @app.exception_handler(Problem)
    async def _problem(request: Request, e: Problem) -> JSONResponse:
        errors = [{"field": e.field, "message": e.detail}] if e.field else None
        return problem(e.status, e.title, e.detail, request.url.path, errors, e.headers)

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, e: Unavailable) -> JSONResponse:
        return problem(503, "ledger unavailable", str(e), request.url.path, headers={"Retry-After": "30"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        every = e.errors()
        errors = [{"field": ".".join(str(p) for p in err["loc"] if p not in ("body", "query", "path", "header"))[:100],
                   "message": str(err["msg"])[:300]} for err in every[:20]]     # never the input itself
        detail = "; ".join(f"{x['field']}: {x['message']}" for x in errors) + \
            (f"; and {len(every) - 20} more" if len(every) > 20 else "")
        return problem(422, "invalid request", detail, request.url.path, errors)

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> Any:
        # Unknown routes (a name with "/" reaches none) and wrong methods: problem details too.
        titles = {404: "not found", 405: "method not allowed"}
        detail = f"no route {request.method} {request.url.path[:200]}" if e.status_code in (404, 405) \
            else str(e.detail)
        if request.url.path.startswith("/console") and e.status_code == 404:
            return HTMLResponse("<!doctype html><title>Not found</title><h1>Not found</h1>"
                                "<p>No such page. <a href=\"/console/\">Back to the dashboard</a>.</p>",
                                status_code=404)
        return problem(e.status_code, titles.get(e.status_code, "refused"), detail, request.url.path,
                       headers=getattr(e, "headers", None))

    def failure(e: Exception, field: str | None = None) -> Problem:
        """The error's class chooses the status (engine/core/errors.py); a policy that does
        not compile is refused input too."""
        if isinstance(e, Unavailable):
            return Problem(e.status, e.title, str(e), headers={"Retry-After": "30"})
        if isinstance(e, BrokerUnavailable):
            return Problem(e.status, e.title, str(e))
        if isinstance(e, PiesError):
            return Problem(e.status, e.title, str(e), field=field)
        return Problem(422, "refused", str(e), field=field)

    # --- who is calling ---------------------------------------------------------------------

    def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
        client = client_address(request.scope, proxies)

        def slow_down(wait: float) -> Problem:
            return Problem(429, "too many failed logins", f"too many failed logins from {client}; "
                           f"try again in {int(wait) + 1} seconds", headers={"Retry-After": str(int(wait) + 1)})
        wait = limits.wait(client)
        if wait:
            raise slow_down(wait)
        token = authorization[7:].strip() if authorization and authorization.lower().startswith("bearer ") else ""
        who = access.check(token) if token else None
        if who is None:
            wait = limits.wait(client, token)          # wrong tokens are held to their prefix's count too
            limits.failed(client, token)
            if wait:
                raise slow_down(wait)
            raise Problem(401, "unauthorized", "a valid token is required (Authorization: Bearer ...)",
                          headers={"WWW-Authenticate": "Bearer"})
        return who

    def role(needed: str) -> Callable[..., Caller]:
        def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
            if not who.may(needed):
                raise Problem(403, "forbidden", f"this needs the {needed} role; token {who.name!r} is {who.role}")
            return who
        check.__name__ = f"needs_{needed}"
        return check

    Viewer = Annotated[Caller, Depends(role("viewer"))]
    Operator = Annotated[Caller, Depends(role("operator"))]
    Analyst = Annotated[Caller, Depends(role("analyst"))]
    Admin = Annotated[Caller, Depends(role("admin"))]

    def audited(who: Caller, action: str, args: dict[str, Any], fn: Callable[[], Any]) -> Any:
        try:
            return service.audited(who, action, args, fn)
        except AUDITED_REFUSALS as e:
            raise failure(e) from None

    def read(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except PiesError as e:
            raise failure(e) from None

    # --- routes -----------------------------------------------------------------------------

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(who: Viewer) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/health", tags=["read"])
    def health() -> dict[str, str]:
        """Alive, and the ledger answers. The only route without a token."""
        return service.health()

    @app.get("/api/v1/accounts", tags=["read"])
    def accounts(who: Viewer, page: Annotated[int, Query(ge=1, le=1_000_000)] = 1, size: Annotated[int, Query(ge=0, le=1000)] = 50,
                 search: Annotated[str, Query(max_length=100)] = "", live: bool = False,
                 after: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
        """A page of accounts by name. Page on with `after` (the previous page's `next`: as
        fast at any depth) or `page`; `total` is exact up to 1,000 accounts and the
        database's estimate past that (`total_exact`)."""
        return read(lambda: service.accounts(page=page, size=size, search=search, live=live, after=after))

    @app.get("/api/v1/accounts/{name}", tags=["read"])
    def account(name: str, who: Viewer, live: bool = False) -> dict[str, Any]:
        return read(lambda: service.account(name, live=live))

    @app.get("/api/v1/accounts/{name}/history", tags=["read"])
    def history(name: str, who: Viewer) -> dict[str, Any]:
        return read(lambda: service.history(name))

    @app.get("/api/v1/accounts/{name}/performance", tags=["read"])
    def account_performance(name: str, who: Viewer, start: Annotated[date | None, Query(alias="from")] = None,
                            end: Annotated[date | None, Query(alias="to")] = None) -> dict[str, Any]:
        """Time- and money-weighted return, value, flows, dividends, realized and unrealized
        gain over [from, to] (docs/performance.md)."""
        return read(lambda: service.performance(name, start, end))

    @app.get("/api/v1/accounts/{name}/lots", tags=["read"])
    def account_lots(name: str, who: Viewer) -> dict[str, Any]:
        """The account's open tax lots (docs/books.md)."""
        return read(lambda: service.lots(name))

    Year = Annotated[int | None, Query(ge=1900, le=9999)]
    Format = Annotated[Literal["json", "csv"], Query()]

    def gains_response(doc: dict[str, Any], fmt_: str, filename: str) -> Any:
        if fmt_ == "csv":
            return PlainTextResponse(gains_csv(doc), media_type="text/csv; charset=utf-8",
                                     headers={"Content-Disposition": f'attachment; filename="{filename}"'})
        return doc

    @app.get("/api/v1/accounts/{name}/gains", tags=["read"],
             responses={200: {"content": {"text/csv": {}}, "description": "JSON, or Form 8949's CSV with format=csv"}})
    def account_gains(name: str, who: Viewer, year: Year = None, format: Format = "json") -> Any:
        """Realized gains of the account (sold in `year`), with short- and long-term totals;
        `format=csv`: Form 8949's columns."""
        doc = read(lambda: service.gains(name, year=year))
        return gains_response(doc, format, f"gains-{safe_name(name)}{f'-{year}' if year else ''}.csv")

    @app.get("/api/v1/owners/{owner}/gains", tags=["read"],
             responses={200: {"content": {"text/csv": {}}, "description": "JSON, or Form 8949's CSV with format=csv"}})
    def owner_gains(owner: str, who: Viewer, year: Year = None, format: Format = "json") -> Any:
        """Realized gains of every account of an owner (each row names its account)."""
        doc = read(lambda: service.gains(owner=owner, year=year))
        return gains_response(doc, format, f"gains-owner-{safe_name(owner)}{f'-{year}' if year else ''}.csv")

    @app.get("/api/v1/windows", tags=["read"])
    def windows(who: Viewer, limit: Annotated[int, Query(ge=1, le=1000)] = 30) -> dict[str, Any]:
        return read(lambda: service.windows(limit))

    @app.get("/api/v1/windows/{window_id}", tags=["read"])
    def window(window_id: Id, who: Viewer, page: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
               size: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """A window and its report; with `page`, only that page of `size` accounts' lines
        (a window of many accounts is read page by page)."""
        return read(lambda: service.window(window_id, page, size))

    @app.get("/api/v1/status", tags=["read"])
    def status(who: Viewer) -> dict[str, Any]:
        """The next window of each broker account, pending events, the last windows."""
        return read(service.status)

    @app.get("/api/v1/plan", tags=["read"])
    def plan(who: Viewer, account: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
        """What the next window would trade now, at current prices (for one account, or all)."""
        return read(lambda: service.plan(account))

    @app.get("/api/v1/events", tags=["read"])
    def pending(who: Viewer, page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
                size: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """Every account's pending events (what the next window will do), oldest first."""
        return read(lambda: service.pending_events(page=page, size=size))

    @app.post("/api/v1/events", tags=["operate"], status_code=201)
    def record(body: EventIn, who: Operator,
               idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> JSONResponse:
        """Record an event for the next window. The same Idempotency-Key records once."""
        if body.kind != "rebalance" and body.amount is None:
            raise Problem(422, "invalid request", f"a {body.kind} needs an amount", field="amount")
        cents = None
        if body.kind != "rebalance":
            try:
                cents = parse_dollars(body.amount or "", what=body.kind)
            except PiesError as e:
                service.refused(who, f"record {body.kind}", body.model_dump(), e)
                raise Problem(422, "invalid request", str(e), field="amount") from None
        doc = audited(who, f"record {body.kind}", {**body.model_dump(), "idempotency_key": idempotency_key},
                      lambda: service.record(body.kind, body.account, cents, path=body.path,
                                             key=idempotency_key))
        return JSONResponse(doc, status_code=201 if doc["created"] else 200)

    @app.post("/api/v1/accounts", tags=["operate"], status_code=201)
    def add_accounts(body: AccountsIn, who: Operator) -> JSONResponse:
        """Open accounts (up to 1,000 at once): all of them or none, every mistake named by
        its index. Idempotent by name: an account that exists already with the same pie,
        policy, rules and broker is left as it is (`created: false`); 201 when any was
        opened, else 200."""
        rows = [{k: v for k, v in a.model_dump().items() if v is not None} for a in body.accounts]
        for i, r in enumerate(rows):
            if "policy" in r:
                try:
                    r["policy"] = service.policy_file(r["policy"])     # only the settings' files, over the network
                except NotAPolicyFile as e:
                    raise Problem(422, "invalid request", f"accounts[{i}]: {e}", field=f"accounts.{i}.policy") \
                        from None
        doc = audited(who, "add accounts", {"accounts": rows},
                      lambda: service.add_accounts(rows, label=lambda i: f"accounts[{i}]"))
        return JSONResponse(doc, status_code=201 if doc["created"] else 200)

    @app.put("/api/v1/accounts/{name}/owner", tags=["operate"])
    def set_owner(name: str, body: OwnerIn, who: Operator) -> dict[str, Any]:
        """Who owns the account for wash sales (all of an owner's accounts count together);
        409 while a window of its broker account is open."""
        return audited(who, "set owner", {"account": name, "owner": body.owner},
                       lambda: service.set_owner(name, body.owner))

    @app.post("/api/v1/events/{event_id}/cancel", tags=["operate"])
    def cancel(event_id: Id, who: Operator) -> dict[str, Any]:
        return audited(who, "cancel", {"event": event_id}, lambda: service.cancel(event_id))

    runs = WindowRuns()
    app.state.window_runs = runs

    @app.post("/api/v1/windows/run", tags=["operate"], status_code=202,
              responses={200: {"description": "The window closed already: returned as it is (`already_closed`)"},
                         409: {"description": "A window of the broker account is running already (its holder named)"}})
    def run_window(who: Operator, name: Annotated[str | None, Query(max_length=50)] = None,
                   broker: Annotated[str | None, Query(max_length=100)] = None) -> JSONResponse:
        """Start (or resume) today's window and answer at once: 202 with `Location:` the
        run to follow (`GET /api/v1/windows/runs/{run}`: running, closed or failed, and its
        window). A window of the broker account running already (here, in the daemon or
        `pies window run`) is a 409 naming its holder; a window that closed already comes
        back as it is, 200 with `already_closed`."""
        started = audited(who, "run window", {"name": name, "broker": broker},
                          lambda: service.start_window(name=name, broker=broker,
                                                       holder=f"pies api (token {who.name})"))
        if isinstance(started, dict):
            return JSONResponse(started, status_code=200)
        doc = runs.start(started)
        return JSONResponse(doc, status_code=202, headers={"Location": doc["links"]["run"]})

    @app.get("/api/v1/windows/runs/{run_id}", tags=["read"])
    def window_run(run_id: Id, who: Viewer) -> dict[str, Any]:
        """A window run started over the API (this process's last 100): `running`, `closed`
        or `failed` with its one-line error; the window itself is at `links.window`."""
        doc = runs.get(run_id)
        if doc is None:
            raise Problem(404, "not found", f"no window run {run_id} (runs are kept in memory, the last "
                          f"{WindowRuns.KEEP}; the window itself is under /api/v1/windows)")
        return doc

    @app.get("/api/v1/reconcile", tags=["read"])
    def reconciliation(who: Viewer, broker: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
        """The ledger against each broker account (or the one named) now: per symbol the
        accounts' shares, the house's, the broker's, the difference and its likely cause;
        `waits` when an unexplained break above the tolerance holds trading."""
        return read(lambda: service.reconciliation(broker))

    @app.post("/api/v1/reconcile/accept", tags=["operate"], status_code=201)
    def reconcile_accept(body: AcceptIn, who: Operator) -> dict[str, Any]:
        """Accept the unexplained breaks as they are now, with a reason (audited): the next
        window goes on past them while each stays the same. 422 when there is none."""
        try:
            return service.accept_breaks(body.reason, caller=who, broker=body.broker)
        except PiesError as e:
            raise failure(e) from None

    @app.post("/api/v1/policies/plan", tags=["policies"])
    def policy_plan(body: PolicyIn, who: Analyst) -> dict[str, Any]:
        """What applying the file's current text would do; writes nothing."""
        try:
            planned = service.plan_policy(body.file)
            warnings = service.policy_warnings(body.file)
            doc = {**planned.to_json(), "tax": service.policy_tax(planned)}
            return {**doc, "warnings": warnings} if warnings else doc
        except NotAPolicyFile as e:
            raise Problem(422, "invalid request", str(e), field="file") from None
        except policy_lang.PolicyError as e:
            raise Problem(422, "the policy does not compile", e.render(), field="file") from None
        except PiesError as e:
            raise failure(e, "file") from None

    @app.post("/api/v1/policies/apply", tags=["policies"])
    def policy_apply(body: PolicyIn, who: Analyst) -> dict[str, Any]:
        """Apply the file's text, only if it is still the text that was planned (sha256)."""
        try:
            return service.apply_policy(body.file, body.sha256 or "", caller=who, source=f"api:{who.name}")
        except NotAPolicyFile as e:
            raise Problem(422, "invalid request", str(e), field="file") from None
        except StalePlan as e:
            raise Problem(409, "the file changed since its plan", str(e), field="sha256") from None
        except policy_lang.PolicyError as e:
            raise Problem(422, "the policy does not compile", e.render(), field="file") from None
        except PiesError as e:
            raise failure(e) from None

    from engine.shell.backtest.api import BacktestIn, InputError, run_request_elsewhere

    @app.post("/api/v1/backtests", tags=["policies"])
    async def backtests(body: BacktestIn, who: Analyst) -> dict[str, Any]:
        """Backtest pies of a policy text over uploaded prices (docs/backtest.md): bounded in
        size, run in a worker process while the server goes on serving; writes nothing."""
        try:
            return await run_request_elsewhere(body)
        except InputError as e:
            raise Problem(422, "the backtest cannot run", str(e)) from None

    @app.get("/api/v1/tokens", tags=["admin"])
    def tokens(who: Admin) -> dict[str, Any]:
        return service.tokens()

    @app.post("/api/v1/tokens", tags=["admin"], status_code=201)
    def token_create(body: TokenIn, who: Admin) -> dict[str, Any]:
        """The token's text is in this response and nowhere else, ever."""
        token = audited(who, "create token", {"name": body.name, "role": body.role},
                        lambda: service.create_token(body.name, body.role))
        return {"name": body.name, "role": body.role, "token": token}

    @app.delete("/api/v1/tokens/{name}", tags=["admin"])
    def token_revoke(name: str, who: Admin) -> dict[str, Any]:
        return audited(who, "revoke token", {"name": name}, lambda: service.revoke_token(name))

    @app.get("/api/v1/audit", tags=["admin"])
    def audit(who: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        return service.audit_log(limit)

    @app.get("/metrics", tags=["read"], response_class=PlainTextResponse)
    def metrics(who: Viewer) -> PlainTextResponse:
        """Prometheus text format: window step durations, orders, problems, last good window."""
        from engine.shell.metrics import render
        return PlainTextResponse(render(led), media_type="text/plain; version=0.0.4")

    assert set(ROLES) == {"viewer", "operator", "analyst", "admin"}
    from engine.shell.web import mount_console
    mount_console(app, access=access, service=service)
    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None, *,
          say: Callable[[str], None] = print, **app_options: Any) -> None:
    """Serve the API and console until stopped (`pies serve`): a start line once the socket
    listens, then an access log line per request (stderr). X-Forwarded-For is read by the
    app only from [api] trusted_proxies, so uvicorn's own reading of it is off."""
    import uvicorn
    app = create_app(settings, access_log=True, **app_options)

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if not self.started:
                return
            bound = [sock.getsockname() for server in self.servers for sock in server.sockets]
            h, p = (bound[0][0], bound[0][1]) if bound else (host, port)
            url = f"http://{'[' + h + ']' if ':' in str(h) else h}:{p}"
            say(f"pies: listening on {url} (console: {url}/console/, health: {url}/health); Ctrl-C stops")

    Server(uvicorn.Config(app, host=host or settings.api_host, port=settings.api_port if port is None else port,
                          log_level="warning", proxy_headers=False, server_header=False, access_log=False)).run()

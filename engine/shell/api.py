"""The HTTP API (FastAPI): the service layer over HTTP, for operators' scripts and the
systems around pies (a bank feed recording deposits, a back office asking for values).

- Every route but `/health` needs `Authorization: Bearer <token>` (`pies token create`);
  roles rank viewer < operator < analyst < admin. Failed logins are limited per client.
- JSON with amounts as strings; errors are RFC 9457 problem details naming the field at
  fault; `POST /api/v1/events` honours `Idempotency-Key` (the ledger's event key).
- Every write is recorded in the audit log (`pies audit`). No secret is ever sent back.
See docs/api.md.
"""


from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Callable, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

import rules as policy_lang
from config.settings import Settings
from engine.core.errors import BrokerUnavailable, PiesError
from engine.core.roles import ROLES, Caller
from engine.shell.guards import MAX_FAILURES, WINDOW, Limiter  # noqa: F401 - re-exported for callers and tests
from engine.shell.guards import AccessLog, BodyLimit, client_address, networks, scheme
from engine.shell.service import AUDITED_REFUSALS, NotAPolicyFile, Service, StalePlan

if TYPE_CHECKING:
    from adapters.ledger.store import Ledger

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


# --- request bodies ------------------------------------------------------------------------

class EventIn(BaseModel):
    account: str = Field(min_length=1, max_length=100)
    kind: Literal["deposit", "withdrawal", "dividend", "rebalance"]
    amount: str | None = Field(default=None, max_length=40,
                               description="Dollars as a string: 123, 123.45 or 1,234.56")
    path: str = Field(default="", max_length=1000,
                      description="A nested pie, for a rebalance of part of the portfolio")


class AccountIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="1-100 characters, no '/', no control characters")
    pie: str = Field(min_length=1, max_length=200, description="The top-level pie it follows")
    policy: str | None = Field(default=None, max_length=4096,
                               description="One of the settings' policy files (default: the first)")
    rules: str | None = Field(default=None, max_length=100)
    broker: str | None = Field(default=None, max_length=100, description="Default: the first broker account")


class AccountsIn(BaseModel):
    accounts: list[AccountIn] = Field(min_length=1, max_length=1000)


class PolicyIn(BaseModel):
    file: str = Field(min_length=1, max_length=4096, description="A policy file the daemon follows")
    sha256: str | None = Field(default=None, max_length=64, description="For apply: the text's hash from its plan")


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
                 search: Annotated[str, Query(max_length=100)] = "", live: bool = False) -> dict[str, Any]:
        return read(lambda: service.accounts(page=page, size=size, search=search, live=live))

    @app.get("/api/v1/accounts/{name}", tags=["read"])
    def account(name: str, who: Viewer, live: bool = False) -> dict[str, Any]:
        return read(lambda: service.account(name, live=live))

    @app.get("/api/v1/accounts/{name}/history", tags=["read"])
    def history(name: str, who: Viewer) -> dict[str, Any]:
        return read(lambda: service.history(name))

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
        if body.kind != "rebalance" and not body.amount:
            raise Problem(422, "invalid request", f"a {body.kind} needs an amount", field="amount")
        if body.kind != "rebalance":
            try:
                from engine.core.money import parse_dollars          # the parser the ledger's parse_amount uses
                parse_dollars(body.amount or "", what=body.kind)
            except PiesError as e:
                service.refused(who, f"record {body.kind}", body.model_dump(), e)
                raise Problem(422, "invalid request", str(e), field="amount") from None
        doc = audited(who, f"record {body.kind}", {**body.model_dump(), "idempotency_key": idempotency_key},
                      lambda: service.record(body.kind, body.account, body.amount, path=body.path,
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

    @app.post("/api/v1/events/{event_id}/cancel", tags=["operate"])
    def cancel(event_id: Id, who: Operator) -> dict[str, Any]:
        return audited(who, "cancel", {"event": event_id}, lambda: service.cancel(event_id))

    @app.post("/api/v1/windows/run", tags=["operate"])
    def run_window(who: Operator, name: Annotated[str | None, Query(max_length=50)] = None,
                   broker: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
        """Run (or resume) today's window now and return it with its report (a window that
        closed already is returned as it is, `already_closed`)."""
        return audited(who, "run window", {"name": name, "broker": broker},
                       lambda: service.run_window(name=name, broker=broker))

    @app.post("/api/v1/policies/plan", tags=["policies"])
    def policy_plan(body: PolicyIn, who: Analyst) -> dict[str, Any]:
        """What applying the file's current text would do; writes nothing."""
        try:
            return service.plan_policy(body.file).to_json()
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

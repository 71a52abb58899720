"""`POST /api/v1/backtests`: the backtests of a policy text over uploaded prices, bounded in
size and run in a worker process so that the server goes on serving (docs/backtest.md)."""

from __future__ import annotations

import base64
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Annotated

from fastapi import File, Form, Request, UploadFile      # module level: FastAPI reads the routes' annotations here
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import rules

from . import SAMPLE
from .run import (SAMPLE_ACTIONS, InputError, parse_actions, parse_prices, parse_span, prepare, run_job,
                  sample_prices)

API_MAX_RUNS = 10               # backtests in one request
API_MAX_DAYS = 12_000           # trading days from --from to --to (about 47 years)
API_MAX_TEXT = 8 * 1024 * 1024  # characters of an uploaded prices or actions file


class BacktestIn(BaseModel):
    """POST /api/v1/backtests: the policy's text, the prices uploaded as CSV text (or the
    name of the sample history), the options of `pies backtest`."""

    model_config = ConfigDict(populate_by_name=True)
    policy: str = Field(min_length=1, max_length=rules.vocabulary.MAX_FILE_BYTES, description="Policy text")
    pies: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=1, max_length=API_MAX_RUNS)
    rules: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=lambda: [rules.DEFAULT_RULES], min_length=1, max_length=API_MAX_RUNS)
    prices: str = Field(min_length=1, max_length=API_MAX_TEXT, description=f"CSV text, or {SAMPLE}")
    actions: str | None = Field(default=None, max_length=API_MAX_TEXT, description=f"CSV text, or {SAMPLE}")
    start_date: str = Field(alias="from", min_length=1, max_length=10, description="YYYY-MM-DD")
    end_date: str = Field(alias="to", min_length=1, max_length=10, description="YYYY-MM-DD")
    start: str = Field(default="10,000", max_length=30, description="The start cash in dollars")
    deposit: str | None = Field(default=None, max_length=40, description="PERIOD:AMOUNT")
    withdraw: str | None = Field(default=None, max_length=40, description="PERIOD:AMOUNT")
    min_order: str = Field(default="1.00", max_length=30)


def run_request(body: BacktestIn) -> dict:
    """The backtests a request asks for, bounded in size: {"backtests": [report, ...]}.
    Raises InputError (one line, or the policy's diagnostics) for a bad input."""
    try:
        policy = rules.compile_text(body.policy, "policy")
    except rules.PolicyError as e:
        raise InputError(e.render()) from None
    d0, d1 = parse_span(body.start_date, body.end_date)
    days, symbols = sample_prices() if body.prices.strip() == SAMPLE else parse_prices(body.prices, "prices")
    if sum(1 for d in days if d0 <= d.day <= d1) > API_MAX_DAYS:
        raise InputError(f"more than {API_MAX_DAYS:,} trading days from {d0} to {d1}; run longer ones with pies backtest")
    acts = [] if not body.actions else (parse_actions(SAMPLE_ACTIONS, SAMPLE) if body.actions.strip() == SAMPLE
                                        else parse_actions(body.actions, "actions"))
    jobs = prepare({"policy": policy}, body.pies, body.rules, "prices", symbols, body.start_date, body.end_date,
                   body.start, body.deposit, body.withdraw, body.min_order, API_MAX_RUNS)
    return {"backtests": [run_job(j, policy, days, acts) for j in jobs]}


_POOL: list[ProcessPoolExecutor] = []


async def run_request_elsewhere(body: BacktestIn) -> dict:
    """run_request in a worker process, so that the server's event loop and threads go on
    serving while it runs (two at a time; more wait their turn)."""
    import asyncio
    import multiprocessing
    if not _POOL:
        _POOL.append(ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")))
    return await asyncio.wrap_future(_POOL[0].submit(run_request, body))


# --- the console's page ------------------------------------------------------------------------

def mount_console_page(app, *, render, signed_in, checked, to_login, policy_files) -> None:
    """/console/backtests: an analyst picks a policy file of the settings, pies and rule
    sets, uploads a prices file (or takes the sample) and sees the table and the chart."""
    from .run import chart_bytes, rows

    def page(request: Request, form: dict, status: int = 200, **ctx) -> Response:
        names = [Path(f).name for f in policy_files]
        return render(request, "backtests.html", "Backtests", {"files": names, "form": form, **ctx}, status=status)

    @app.get("/console/backtests", include_in_schema=False)
    def backtests_page(request: Request) -> Response:
        if signed_in(request) is None:
            return to_login()
        return page(request, {"rules": rules.DEFAULT_RULES, "start": "10,000", "min_order": "1.00"})

    @app.post("/console/backtests", include_in_schema=False)
    async def backtests_run(request: Request, csrf: str = Form(""), file: str = Form(""), pies: str = Form(""),
                            rule_sets: str = Form("m1"), start_date: str = Form(""), end_date: str = Form(""),
                            start: str = Form("10,000"), deposit: str = Form(""), withdraw: str = Form(""),
                            min_order: str = Form("1.00"), sample: str = Form(""),
                            prices: UploadFile | None = File(None), actions: UploadFile | None = File(None)) -> Response:
        who = checked(request, csrf, "analyst")
        if isinstance(who, Response):
            return who
        form = {"file": file, "pies": pies, "rules": rule_sets, "from": start_date, "to": end_date, "start": start,
                "deposit": deposit, "withdraw": withdraw, "min_order": min_order, "sample": bool(sample)}
        try:
            path = next((f for f in policy_files if Path(f).name == file or f == file), None)
            if path is None:
                raise InputError(f"{file!r} is not a policy file of these settings")
            price_text = SAMPLE if sample else await _upload(prices, "prices")
            action_text = SAMPLE if sample else (await _upload(actions, "actions") if actions and actions.filename
                                                 else None)
            body = BacktestIn(policy=rules.read_policy_text(path), pies=_names(pies), rules=_names(rule_sets),
                              prices=price_text, actions=action_text, **{"from": start_date, "to": end_date},
                              start=start, deposit=deposit or None, withdraw=withdraw or None, min_order=min_order)
            result = await run_request_elsewhere(body)
        except ValidationError as e:
            said = "; ".join(f"{'.'.join(str(p) for p in x['loc'])}: {x['msg']}" for x in e.errors())
            return page(request, form, message=said, bad=True, status=422)
        except (InputError, rules.PolicyError) as e:
            return page(request, form, message=str(e).splitlines()[0], bad=True, status=422)
        reports = result["backtests"]
        labels = [r["pie"] + (f" [{r['rules']}]" if len(body.rules) > 1 else "") for r in reports]
        try:
            svg = base64.b64encode(chart_bytes(reports, labels)).decode()
        except InputError:
            svg = None                  # no matplotlib here: the table alone
        return page(request, form, labels=labels, rows=rows(reports), first=reports[0], chart=svg)


async def _upload(f, what: str) -> str:
    if f is None or not f.filename:
        raise InputError(f"upload a {what} file (date,SYMBOL,... of daily closes) or take the sample")
    data = await f.read(API_MAX_TEXT + 1)
    if len(data) > API_MAX_TEXT:
        raise InputError(f"{f.filename}: the {what} file is larger than {API_MAX_TEXT:,} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{f.filename}: the {what} file is not UTF-8 text") from None


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]

"""`POST /api/v1/backtests`: the backtests of a policy text over uploaded prices, bounded in
size and run in a worker process so that the server goes on serving (docs/backtest.md)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

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

"""Builds the Alpaca cassettes from verbatim Alpaca bodies (../shared/alpaca-examples).

    python tests/brokers/cassettes/build.py [EXAMPLES_DIR]

The cassettes are committed; this script says where every body came from and lets anyone
rebuild them. Each response starts from a documented example (so alpaca-py's models must
parse it) with only the scenario's values changed: symbol, ids, status, amounts. No
request carries a key: the adapter's auth headers are never written.
"""

from __future__ import annotations

import copy
import json
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TRADING = "https://paper-api.alpaca.markets/v2"
DATA = "https://data.alpaca.markets/v2"
DAY = "2026-11-24"
ASSETS = f"{TRADING}/assets?asset_class=us_equity"
# One poll of `wait`: every order since a second before the earliest it waits for.
LIST = f"{TRADING}/orders?status=all&after={DAY}T14:34:59.090000%2B00:00&limit=500&direction=asc"


def load(examples: Path, name: str):
    return json.loads((examples / name).read_text())


def interaction(method: str, uri: str, status: int, body, request_body=None, json_text: bool = False) -> dict:
    text = body if isinstance(body, str) else json.dumps(body)
    ctype = "text/plain" if isinstance(body, str) and not json_text else "application/json"
    return {
        "request": {"method": method, "uri": uri, "headers": {},
                    "body": None if request_body is None else json.dumps(request_body)},
        "response": {"status": {"code": status, "message": {200: "OK", 207: "Multi-Status", 403: "Forbidden",
                                                             401: "Unauthorized", 404: "Not Found",
                                                             422: "Unprocessable Entity", 429: "Too Many Requests",
                                                             500: "Internal Server Error", 503: "Service Unavailable"
                                                             }.get(status, "")},
                     "headers": {"Content-Type": [ctype]}, "body": {"string": text}},
    }


def write(name: str, interactions: list[dict]) -> None:
    (HERE / f"{name}.yaml").write_text(yaml.safe_dump({"interactions": interactions, "version": 1},
                                                      sort_keys=False, width=120))


def main(examples: Path) -> None:
    order_t = load(examples, "order__notional_500_accepted__alpaca-docs-broker-api.json")
    asset_t = load(examples, "asset__fractionable_AAPL__alpaca-docs-fractional.json")
    clock_t = load(examples, "clock__openapi-trading-api-legacy_clock.json")
    cal_t = load(examples, "calendar__alpaca-py-tests-brokerclient.json")[0]
    trades_t = load(examples, "data__latest_trades__openapi-market-data.json")
    account_t = load(examples, "account__openapi-trading-api.json")
    positions_t = load(examples, "positions__list__alpaca-py-tests.json")
    errors = {e["what"].split(" (")[0]: e["body"] for e in load(examples, "errors__observed_bodies.json")}

    def order(coid: str, symbol: str, side: str, status: str, *, notional=None, qty=None,
              filled_qty="0", price=None) -> dict:
        o = copy.deepcopy(order_t)
        o.update(id=str(uuid.uuid5(uuid.NAMESPACE_URL, coid)), client_order_id=coid, symbol=symbol, side=side,
                 status=status, notional=notional, qty=qty, filled_qty=filled_qty, filled_avg_price=price,
                 created_at=f"{DAY}T14:35:00.100000Z", updated_at=f"{DAY}T14:35:01.200000Z",
                 submitted_at=f"{DAY}T14:35:00.090000Z",
                 filled_at=f"{DAY}T14:35:01.200000Z" if status == "filled" else None,
                 expired_at=f"{DAY}T21:00:00Z" if status == "expired" else None,
                 canceled_at=f"{DAY}T20:45:00Z" if status == "canceled" else None)
        return o

    def asset(symbol: str, fractionable: bool = True) -> dict:
        a = dict(asset_t, symbol=symbol, fractionable=fractionable,
                 id=str(uuid.uuid5(uuid.NAMESPACE_URL, "asset:" + symbol)), name=f"{symbol} (test)")
        return a

    # The day's asset list (GET /v2/assets, read once a day): one inactive symbol and one
    # that is active but not tradable, beside the ones the scenarios trade.
    universe = [asset("AAPL"), asset("VTI"), asset("MSFT"), asset("BRK.B", fractionable=False),
                dict(asset("OLDCO"), status="inactive", tradable=False),
                dict(asset("HALTD"), tradable=False)]

    def trades(prices: dict) -> dict:
        t = trades_t["trades"]["AAPL"]
        return {"trades": {s: dict(t, p=p) for s, p in prices.items()}}

    def by_id(coid: str) -> str:
        return f"{TRADING}/orders:by_client_order_id?client_order_id={coid}"

    def cal(day: str, close: str = "16:00") -> dict:
        return dict(cal_t, date=day, close=close)

    # --- the contract suite's scenarios ---------------------------------------------------
    clock = dict(clock_t, is_open=True, timestamp=f"{DAY}T10:05:00-05:00", next_close=f"{DAY}T16:00:00-05:00",
                 next_open="2026-11-25T09:30:00-05:00")
    write("contract_market_day_and_clock", [
        interaction("GET", f"{TRADING}/clock", 200, clock),
        interaction("GET", f"{TRADING}/calendar?start={DAY}&end={DAY}", 200, [cal(DAY)]),
        interaction("GET", f"{TRADING}/calendar?start=2026-11-26&end=2026-11-26", 200, []),
        interaction("GET", f"{TRADING}/calendar?start=2026-11-27&end=2026-11-27", 200, [cal("2026-11-27", "13:00")]),
    ])
    write("contract_prices_and_assets", [
        interaction("GET", f"{DATA}/stocks/trades/latest?symbols=AAPL%2CVTI&feed=iex", 200,
                    trades({"AAPL": 172.78, "VTI": 301.12})),
        interaction("GET", ASSETS, 200, universe),
    ])
    coid = "w1-AAPL-buy"
    write("contract_notional_buy_fills", [
        interaction("GET", ASSETS, 200, universe),
        interaction("POST", f"{TRADING}/orders", 200, order(coid, "AAPL", "buy", "accepted", notional="500")),
        interaction("GET", LIST, 200, [order(coid, "AAPL", "buy", "new", notional="500")]),
        interaction("GET", LIST, 200, [order(coid, "AAPL", "buy", "filled", notional="500",
                                             filled_qty="2.893853455", price="172.78")]),
    ])
    write("contract_duplicate_client_order_id_is_one_order", [
        interaction("GET", ASSETS, 200, universe),
        interaction("POST", f"{TRADING}/orders", 200, order("w2-AAPL-buy", "AAPL", "buy", "accepted", notional="25")),
        interaction("POST", f"{TRADING}/orders", 422, {"code": 40010001, "message": "client_order_id must be unique"}),
        interaction("GET", by_id("w2-AAPL-buy"), 200, order("w2-AAPL-buy", "AAPL", "buy", "filled", notional="25",
                                                            filled_qty="0.144692672", price="172.78")),
    ])
    write("contract_insufficient_buying_power_is_rejected", [
        interaction("GET", ASSETS, 200, universe),
        interaction("POST", f"{TRADING}/orders", 403, errors["insufficient buying power"]),
    ])
    pos = copy.deepcopy(positions_t)
    write("contract_quantity_sell_of_a_whole_position", [
        interaction("GET", f"{TRADING}/positions", 200, pos),
        interaction("GET", ASSETS, 200, universe),
        interaction("POST", f"{TRADING}/orders", 200, order("w3-AAPL-sell", "AAPL", "sell", "accepted", qty="5")),
        interaction("GET", LIST, 200, [order("w3-AAPL-sell", "AAPL", "sell", "filled", qty="5",
                                             filled_qty="5", price="120.0")]),
    ])
    write("contract_notional_sell", [
        interaction("GET", ASSETS, 200, universe),
        interaction("POST", f"{TRADING}/orders", 200, order("w4-AAPL-sell", "AAPL", "sell", "accepted",
                                                            notional="100")),
        interaction("GET", LIST, 200, [order("w4-AAPL-sell", "AAPL", "sell", "filled", notional="100",
                                             filled_qty="0.833333333", price="120.0")]),
    ])
    write("contract_unknown_order_is_not_found", [
        interaction("GET", by_id("nope"), 404, {"code": 40410000, "message": "order not found"}),
    ])
    write("contract_positions_and_balance", [
        interaction("GET", f"{TRADING}/positions", 200, pos),
        interaction("GET", f"{TRADING}/account", 200, account_t),
    ])
    write("contract_not_fractionable_trades_whole_shares", [
        interaction("GET", ASSETS, 200, universe),
        interaction("GET", f"{DATA}/stocks/trades/latest?symbols=BRK.B&feed=iex", 200, trades({"BRK.B": 480.5})),
        interaction("POST", f"{TRADING}/orders", 200, order("w5-BRK.B-buy", "BRK.B", "buy", "accepted", qty="2")),
    ])

    # --- Alpaca-only scenarios ------------------------------------------------------------
    write("rate_limited_read_then_success", [
        interaction("GET", f"{TRADING}/account", 429, "Too Many Requests"),
        interaction("GET", f"{TRADING}/account", 429, {"code": 42910000, "message": "rate limit exceeded"}),
        interaction("GET", f"{TRADING}/account", 200, account_t),
    ])
    write("rate_limited_submit_looks_up_before_resending", [
        interaction("GET", ASSETS, 200, universe),
        interaction("POST", f"{TRADING}/orders", 429, "Too Many Requests"),
        interaction("GET", by_id("w6-AAPL-buy"), 404, {"code": 40410000, "message": "order not found"}),
        interaction("POST", f"{TRADING}/orders", 200, order("w6-AAPL-buy", "AAPL", "buy", "accepted",
                                                            notional="50")),
    ])
    write("timeout_after_submit_finds_the_order", [
        interaction("GET", ASSETS, 200, universe),
        interaction("POST", f"{TRADING}/orders", 504, "Gateway Timeout"),
        interaction("GET", by_id("w7-AAPL-buy"), 200, order("w7-AAPL-buy", "AAPL", "buy", "accepted",
                                                            notional="50")),
    ])
    write("server_errors_exhausted", [
        interaction("GET", f"{TRADING}/clock", 503, "Service Unavailable") for _ in range(5)
    ])
    write("bad_credentials", [
        interaction("GET", f"{TRADING}/account", 401, {"code": 40110000, "message": "request is not authorized"}),
    ])
    write("partial_fill_then_expired", [
        interaction("GET", ASSETS, 200, universe),
        interaction("POST", f"{TRADING}/orders", 200, order("w8-AAPL-buy", "AAPL", "buy", "accepted",
                                                            notional="1000")),
        interaction("GET", LIST, 200, [order("w8-AAPL-buy", "AAPL", "buy", "partially_filled",
                                             notional="1000", filled_qty="2.5", price="172.78")]),
        interaction("GET", LIST, 200, [order("w8-AAPL-buy", "AAPL", "buy", "expired",
                                             notional="1000", filled_qty="2.5", price="172.78")]),
    ])
    write("cancel_a_partial_fill", [
        interaction("GET", by_id("w9-AAPL-buy"), 200, order("w9-AAPL-buy", "AAPL", "buy", "partially_filled",
                                                            notional="1000", filled_qty="1", price="172.78")),
        interaction("DELETE", f"{TRADING}/orders/{uuid.uuid5(uuid.NAMESPACE_URL, 'w9-AAPL-buy')}", 204, ""),
        interaction("GET", by_id("w9-AAPL-buy"), 200, order("w9-AAPL-buy", "AAPL", "buy", "canceled",
                                                            notional="1000", filled_qty="1", price="172.78")),
    ])
    # Alpaca's NonTradeActivity schema (docs: GET /v2/account/activities/{type}); amounts are strings.
    divs = [{"id": "20261115000000000::8e5c9b2a-0000-4000-8000-000000000001", "account_id":
             account_t["id"], "activity_type": "DIV", "date": "2026-11-15", "net_amount": "4.51",
             "description": "Cash DIV @ 0.902, Pos QTY: 5.0, Rec Date: 2026-11-10", "symbol": "AAPL",
             "qty": "5", "per_share_amount": "0.902", "status": "executed"}]
    write("dividends", [
        interaction("GET", f"{TRADING}/account/activities/DIV?after=2026-11-01&direction=asc&page_size=100", 200, divs),
    ])
    page1 = [order(f"p{i}-AAPL-buy", "AAPL", "buy", "filled", notional="10", filled_qty="0.057876", price="172.78")
             for i in range(2)]
    page1[1]["submitted_at"] = f"{DAY}T14:36:00Z"
    page2 = [order("p2-AAPL-buy", "AAPL", "buy", "filled", notional="10", filled_qty="0.057876", price="172.78")]
    write("orders_paginated", [
        interaction("GET", f"{TRADING}/orders?status=all&limit=2&after={DAY}T14:00:00%2B00:00&direction=asc",
                    200, page1),
        interaction("GET", f"{TRADING}/orders?status=all&limit=2&after={DAY}T14:36:00%2B00:00&direction=asc",
                    200, page2),
    ])

    # --- Alpaca's order statuses, read in one list call per poll ----------------------------
    # The adapter did not place these (a resumed window): it lists from the start of the day
    # before. First poll: each status once; the open ones end at the second poll.
    since = f"{TRADING}/orders?status=all&after=2026-11-23T00:00:00-05:00&limit=500&direction=asc"
    replacement_coid = "9b4d1f0e-7c1a-4d8e-9a57-6c0f1a2b3c4d"      # Alpaca names a replacement itself
    repl_id = str(uuid.uuid5(uuid.NAMESPACE_URL, replacement_coid))
    replaced = dict(order("s-REPL-buy", "MSFT", "buy", "replaced", notional="100"), replaced_by=repl_id,
                    replaced_at=f"{DAY}T14:35:02Z")
    replacement = dict(order(replacement_coid, "MSFT", "buy", "filled", notional="100", filled_qty="0.240963855",
                             price="415.00"), replaces=replaced["id"])
    first_poll = [
        order("s-ACC-buy", "AAPL", "buy", "accepted", notional="100"),
        order("s-PNEW-buy", "VTI", "buy", "pending_new", notional="100"),
        order("s-PART-buy", "AAPL", "buy", "partially_filled", notional="1000", filled_qty="2.5", price="172.78"),
        order("s-DFD-buy", "VTI", "buy", "done_for_day", notional="1000", filled_qty="1", price="301.12"),
        order("s-EXP-sell", "AAPL", "sell", "expired", qty="3", filled_qty="1.5", price="172.78"),
        order("s-CXL-buy", "VTI", "buy", "canceled", notional="50"),
        order("s-REJ-buy", "AAPL", "buy", "rejected", notional="50"),
        replaced, replacement,
    ]
    second_poll = [
        order("s-ACC-buy", "AAPL", "buy", "filled", notional="100", filled_qty="0.578770691", price="172.78"),
        order("s-PNEW-buy", "VTI", "buy", "new", notional="100"),
        order("s-PART-buy", "AAPL", "buy", "filled", notional="1000", filled_qty="5.787706910", price="172.78"),
    ]
    third_poll = [order("s-PNEW-buy", "VTI", "buy", "filled", notional="100", filled_qty="0.332093517",
                        price="301.12")]
    write("statuses_in_one_poll", [
        interaction("GET", since, 200, first_poll),
        # now the adapter knows when they were placed: from a second before the earliest
        interaction("GET", LIST, 200, second_poll),
        interaction("GET", LIST, 200, third_poll),
    ])
    # One order looked up alone: its replacement is not in a list, so it is fetched by id.
    write("replaced_order_followed", [
        interaction("GET", by_id("s-REPL-buy"), 200, replaced),
        interaction("GET", f"{TRADING}/orders/{repl_id}", 200, replacement),
    ])
    # The asset list, read once a day.
    write("assets_once_a_day", [
        interaction("GET", ASSETS, 200, universe),
        interaction("GET", ASSETS, 200, [a for a in universe if a["symbol"] != "VTI"]),
    ])

    # --- one whole trading window through the Alpaca adapter ------------------------------
    aapl, msft = "pies-20261124-open-w1-AAPL-buy", "pies-20261124-open-w1-MSFT-buy"
    held = []
    for sym, qty, price in (("AAPL", "4.342227109", "172.78"), ("MSFT", "1.807831325", "415.00")):
        p = copy.deepcopy(positions_t[0])
        value = str((Decimal(qty) * Decimal(price)).quantize(Decimal("0.01")))
        p.update(symbol=sym, qty=qty, market_value=value, cost_basis=value, avg_entry_price=price,
                 current_price=price, asset_id=str(uuid.uuid5(uuid.NAMESPACE_URL, "asset:" + sym)))
        held.append(p)
    write("window_one_day", [
        # before collecting: the window's reconciliation compares the ledger (the house's
        # $10,000, nothing held) with the broker's positions and cash
        interaction("GET", f"{TRADING}/positions", 200, []),
        interaction("GET", f"{TRADING}/account", 200, dict(account_t, cash="10000")),
        interaction("GET", f"{TRADING}/account/activities/DIV", 200, []),
        interaction("GET", f"{DATA}/stocks/trades/latest?symbols=AAPL%2CMSFT&feed=iex", 200,
                    trades({"AAPL": 172.78, "MSFT": 415.00})),
        interaction("GET", ASSETS, 200, universe),
        interaction("POST", f"{TRADING}/orders", 200, order(aapl, "AAPL", "buy", "accepted", notional="750.25")),
        interaction("POST", f"{TRADING}/orders", 200, order(msft, "MSFT", "buy", "accepted", notional="750.25")),
        # one poll for both orders (a list call, not one per order)
        interaction("GET", LIST, 200, [order(aapl, "AAPL", "buy", "filled", notional="750.25",
                                             filled_qty="4.342227109", price="172.78"),
                                       order(msft, "MSFT", "buy", "filled", notional="750.25",
                                             filled_qty="1.807831325", price="415.00")]),
        interaction("GET", f"{TRADING}/positions", 200, held),
        interaction("GET", f"{TRADING}/account", 200, dict(account_t, cash="8499.5")),
        # at close: dividends paid during the window are told apart from a cash discrepancy
        interaction("GET", f"{TRADING}/account/activities/DIV", 200, []),
    ])

    corporate_actions()


# --- corporate actions (GET /v1/corporate-actions on the data API) ---------------------------
# alpaca-shared has no corporate-actions body; these entries are alpaca-py's own test body
# (tests/data/test_corporate_actions.py at alpacahq/alpaca-py bd1fa9e), one of each of the
# 13 kinds, with these changes: a second forward split whose rate has more digits than a
# float keeps (RATE_20), and the cash dividend left where it is (the adapter skips it).
CA = "https://data.alpaca.markets/v1/corporate-actions"
RATE_20 = "1.0000000000000000001"      # a float would make this 1.0
CA_BODY = {
    "reverse_splits": [{"id": "a7932b15-f816-4f83-921e-998b524487b0", "ex_date": "2023-08-24", "new_rate": 1,
                        "old_rate": 50, "new_cusip": "NEWCUSIP1", "old_cusip": "OLDCUSIP1",
                        "process_date": "2023-08-24", "record_date": "2023-08-24", "symbol": "MNTS"}],
    "forward_splits": [{"cusip": "CUSIP1", "id": "a7932b15-f816-4f83-921e-998b524487b1",
                        "due_bill_redemption_date": "2023-08-23", "ex_date": "2023-08-22", "new_rate": 2,
                        "old_rate": 1, "payable_date": "2023-08-21", "process_date": "2023-08-22",
                        "record_date": "2023-08-14", "symbol": "SRE"},
                       {"cusip": "CUSIP9", "id": "a7932b15-f816-4f83-921e-998b524487d0", "ex_date": "2023-08-23",
                        "new_rate": "__RATE_20__", "old_rate": 1, "process_date": "2023-08-23", "symbol": "EXACT"}],
    "unit_splits": [{"id": "a7932b15-f816-4f83-921e-998b524487b2", "alternate_cusip": "ALTCUSIP1",
                     "alternate_rate": 0.3333, "alternate_symbol": "LVROW", "effective_date": "2023-03-01",
                     "new_cusip": "NEWCUSIP1", "new_rate": 1, "new_symbol": "LVRO", "old_cusip": "OLDCUSIP1",
                     "old_rate": 1, "old_symbol": "TPBAU", "process_date": "2023-03-01"}],
    "stock_dividends": [{"cusip": "CUSIP1", "id": "a7932b15-f816-4f83-921e-998b524487b3", "ex_date": "2023-05-19",
                         "payable_date": "2023-05-05", "process_date": "2023-05-19", "rate": 0.05,
                         "record_date": "2023-05-22", "symbol": "MSBC"}],
    "cash_dividends": [{"cusip": "CUSIP1", "id": "a7932b15-f816-4f83-921e-998b524487b4", "ex_date": "2023-05-04",
                        "foreign": False, "payable_date": "2023-05-19", "process_date": "2023-05-19",
                        "rate": 0.125, "record_date": "2023-05-05", "special": False, "symbol": "FCF"}],
    "spin_offs": [{"id": "a7932b15-f816-4f83-921e-998b524487b5", "ex_date": "2023-08-15", "new_cusip": "NEWCUSIP1",
                   "new_rate": 1, "new_symbol": "SRM", "process_date": "2023-08-15", "record_date": "2023-08-15",
                   "source_cusip": "SOURCECUSIP1", "source_rate": 19.35, "source_symbol": "JUPW"}],
    "cash_mergers": [{"id": "a7932b15-f816-4f83-921e-998b524487b6", "acquiree_symbol": "GLOP",
                      "acquiree_cusip": "ACQUIREECUSIP1", "effective_date": "2023-07-17",
                      "payable_date": "2023-07-17", "process_date": "2023-07-17", "rate": 5.37}],
    "stock_mergers": [{"id": "a7932b15-f816-4f83-921e-998b524487b7", "acquiree_cusip": "ACQUIREECUSIP1",
                       "acquiree_rate": 1, "acquiree_symbol": "LSI", "acquirer_cusip": "ACQUIRERCUSIP1",
                       "acquirer_rate": 0.895, "acquirer_symbol": "EXR", "effective_date": "2023-07-20",
                       "payable_date": "2023-07-20", "process_date": "2023-07-20"}],
    "stock_and_cash_mergers": [{"id": "a7932b15-f816-4f83-921e-998b524487b8", "acquiree_cusip": "ACQUIREECUSIP1",
                                "acquiree_rate": 1, "acquiree_symbol": "MLVF", "acquirer_cusip": "ACQUIRERCUSIP1",
                                "acquirer_rate": 0.7733, "acquirer_symbol": "FRBA", "cash_rate": 7.8,
                                "effective_date": "2023-07-18", "payable_date": "2023-07-18",
                                "process_date": "2023-07-18"}],
    "redemptions": [{"id": "a7932b15-f816-4f83-921e-998b524487b9", "payable_date": "2023-06-13",
                     "process_date": "2023-06-13", "cusip": "CUSIP1", "rate": 0.141134, "symbol": "ORPHY"}],
    "name_changes": [{"id": "a7932b15-f816-4f83-921e-998b524487c0", "new_cusip": "NEWCUSIP1", "new_symbol": "VFS",
                      "old_cusip": "OLDCUSIP1", "old_symbol": "BSAQ", "process_date": "2023-08-15"}],
    "worthless_removals": [{"id": "a7932b15-f816-4f83-921e-998b524487c1", "cusip": "CUSIP1", "symbol": "ATNXQ",
                            "process_date": "2023-10-11"}],
    "rights_distributions": [{"id": "a7932b15-f816-4f83-921e-998b524487c2", "source_cusip": "SOURCECUSIP1",
                              "source_symbol": "IFN", "new_cusip": "NEWCUSIP1", "new_symbol": "IFN.RTWI", "rate": 1,
                              "ex_date": "2024-04-17", "record_date": "2024-04-18", "payable_date": "2024-04-19",
                              "process_date": "2024-04-19", "expiration_date": "2024-05-14"}],
}
CA_SYMBOLS = ["ATNXQ", "BSAQ", "EXACT", "FCF", "GLOP", "IFN", "JUPW", "LSI", "MLVF", "MNTS", "MSBC", "ORPHY",
              "SRE", "TPBAU"]
TOKEN = "MDA3Q1ZSMDIwfDIwMjQtMDItMTV8NjBiZjkxYzItMDc0Ni00ZDliLThjOWUtYTgwYmIzMDhmZDkx"


def ca_uri(symbols: list[str], start: str, end: str, token: str | None = None) -> str:
    from urllib.parse import urlencode
    q = {"symbols": ",".join(symbols), "start": start, "end": end, "sort": "asc", "limit": 1000}
    if token:
        q["page_token"] = token
    return f"{CA}?{urlencode(q)}"


def ca_body(actions: dict, token: str | None) -> str:
    return json.dumps({"corporate_actions": actions, "next_page_token": token}).replace('"__RATE_20__"', RATE_20)


def corporate_actions() -> None:
    # Asked for 2023-01-01..2024-12-31: the adapter asks Alpaca 10 days further each way.
    first = {k: v for k, v in CA_BODY.items() if k not in ("name_changes", "worthless_removals",
                                                           "rights_distributions")}
    second = {k: CA_BODY[k] for k in ("name_changes", "worthless_removals", "rights_distributions")}
    write("corporate_actions_every_kind", [
        interaction("GET", ca_uri(CA_SYMBOLS, "2022-12-22", "2025-01-10"), 200, ca_body(first, TOKEN),
                    json_text=True),
        interaction("GET", ca_uri(CA_SYMBOLS, "2022-12-22", "2025-01-10", TOKEN), 200, ca_body(second, None),
                    json_text=True),
    ])
    # A window from 2023-08-16 to 2023-08-22: Alpaca answers what its process dates match;
    # the adapter keeps what takes effect in the range (SRE's ex-date 08-22, not MNTS's 08-24).
    near = {"forward_splits": CA_BODY["forward_splits"][:1], "reverse_splits": CA_BODY["reverse_splits"],
            "name_changes": CA_BODY["name_changes"]}
    write("corporate_actions_effective_days", [
        interaction("GET", ca_uri(["BSAQ", "MNTS", "SRE"], "2023-08-06", "2023-09-01"), 200, ca_body(near, None),
                    json_text=True),
    ])
    # A kind this adapter does not know, on a held symbol.
    odd = {"warrant_exercises": [{"id": "0b1e0000-0000-4000-8000-00000000dead", "symbol": "SRE",
                                  "process_date": "2023-08-22", "rate": 1}],
           "forward_splits": CA_BODY["forward_splits"][:1]}
    write("corporate_actions_unknown_kind", [
        interaction("GET", ca_uri(["SRE"], "2023-08-06", "2023-09-01"), 200, ca_body(odd, None), json_text=True),
    ])
    # Many symbols: one request per chunk of symbols (ACTION_CHUNK = 1 in the test).
    write("corporate_actions_chunks", [
        interaction("GET", ca_uri(["MNTS"], "2023-08-06", "2023-09-03"), 200,
                    ca_body({"reverse_splits": CA_BODY["reverse_splits"]}, None), json_text=True),
        interaction("GET", ca_uri(["SRE"], "2023-08-06", "2023-09-03"), 200,
                    ca_body({"forward_splits": CA_BODY["forward_splits"][:1]}, None), json_text=True),
    ])


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[4] / "shared" / "alpaca-examples"
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    if not src.is_dir():
        sys.exit(f"{src}: no such directory (give the path of alpaca-examples)")
    main(src)

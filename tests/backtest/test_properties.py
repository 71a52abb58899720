"""Properties of any backtest: cash is conserved to the cent (start + deposits + dividends
- withdrawals - bought + sold), nothing goes negative, the curve's value is the cash plus
the holdings at the last closes, and the same inputs give the same result."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings, strategies as st

import rules
from engine.core.backtest import CorporateAction, PriceDay, Recurring, Spec, simulate
from engine.core.money import market_cents

POLICY = rules.compile_text('''
pie "Mix" { AAA 35% pie "Inner" 65% { BBB 50% CCC 30% AAA 20% } }
rules "tight" extends "m1" { when drift > 1% rebalance  cash reserve $25 }
''')
RULES = ["m1", "drift-5", "monthly", "hold-cash", "pro-rata", "tight"]


@st.composite
def histories(draw):
    n = draw(st.integers(2, 60))
    steps = draw(st.lists(st.tuples(*[st.integers(-900, 900)] * 3), min_size=n, max_size=n))
    gaps = draw(st.lists(st.sampled_from(["", "AAA", "BBB", "CCC"]), min_size=n, max_size=n))
    price = {"AAA": Decimal("50.00"), "BBB": Decimal("20.00"), "CCC": Decimal("133.33")}
    days, d = [], date(2024, 1, 1)
    for k, (step, gap) in enumerate(zip(steps, gaps)):
        days.append(PriceDay(d, {s: p for s, p in price.items() if s != gap or k == 0}))
        price = {s: max(Decimal("0.50"), (p * (10_000 + x) / 10_000).quantize(Decimal("0.01")))
                 for (s, p), x in zip(sorted(price.items()), step)}
        d += timedelta(days=draw(st.integers(1, 9)))
    acts = draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(["AAA", "BBB", "CCC"]),
                                   st.sampled_from(["dividend", "split"]),
                                   st.sampled_from([Decimal("0.013"), Decimal("1.5"), Decimal(2), Decimal("0.25")])),
                         max_size=4))
    return days, [CorporateAction(days[i].day, s, k, v) for i, s, k, v in acts]


@settings(max_examples=60, deadline=None)
@given(histories(), st.sampled_from(RULES), st.integers(1, 500_000),
       st.none() | st.tuples(st.sampled_from(["weekly", "monthly"]), st.integers(1, 100_000)),
       st.none() | st.tuples(st.sampled_from(["weekly", "monthly"]), st.integers(1, 100_000)),
       st.sampled_from([1, 100, 2_500]))
def test_cash_is_conserved_and_nothing_goes_negative(history, rule_name, start, dep, wd, min_order):
    days, actions = history
    spec = Spec(POLICY.pies["Mix"], rules.find_rules(rule_name, POLICY), days[0].day, days[-1].day, start,
                Recurring(*dep) if dep else None, Recurring(*wd) if wd else None, min_order)
    path = list(simulate(spec, days, actions))
    again = list(simulate(spec, days, actions))
    assert path == again
    last: dict[str, Decimal] = {}
    cash = start
    for day, pd in zip(path, days):
        last.update(pd.closes)
        for a in actions:
            if a.day == pd.day and a.kind == "split" and a.symbol not in pd.closes:
                last[a.symbol] = last[a.symbol] / a.value
        cash += day.deposited - day.withdrawn + day.dividends - day.bought + day.sold
        assert day.cash == cash >= 0
        assert all(q > 0 for _, _, q in day.holdings)
        assert day.value == day.cash + sum(market_cents(q * last[s]) for _, s, q in day.holdings)
        assert day.flow == day.deposited - day.withdrawn
    assert path[0].flow == 0 and path[0].deposited == 0

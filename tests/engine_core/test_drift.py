"""Slice rows: a pie's value is the sum of the securities under it (summed once per path)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rules
from engine.core.drift import MissingPrice, slice_rows, slice_values

PIE = rules.compile_text('pie "Core" { VTI 50% pie "Bonds" 30% { BND 70% pie "Short" 30% { TIP 100% } } '
                         'pie "World" 20% { VXUS 100% } }\n', "t.pie").pies["Core"]
PATHS = ["VTI", "Bonds/BND", "Bonds/Short/TIP", "World/VXUS", "Gone/OLD"]


@given(st.dictionaries(st.sampled_from(PATHS), st.integers(0, 10**9)))
def test_every_slice_is_worth_what_is_held_under_it(values):
    rows = {r.path: r for r in slice_rows(PIE, values)}
    for path, r in rows.items():
        assert r.value == sum(v for p, v in values.items() if p == path or p.startswith(path + "/"))
    total = sum(values.values())
    assert rows["VTI"].share_bp == (rows["VTI"].value * 10_000 // total if total else None)
    assert rows["Bonds/Short"].share_bp == (rows["Bonds/Short"].value * 10_000 // rows["Bonds"].value
                                            if rows["Bonds"].value else None)


def test_slice_values_round_to_the_cent_and_name_a_missing_price():
    held = {"VTI": ("VTI", Decimal("1.000000005")), "Bonds/BND": ("BND", Decimal("0")), "World/VXUS": ("VXUS", Decimal("2"))}
    assert slice_values(held, {"VTI": Decimal("0.50"), "VXUS": Decimal("64.125")}) == {"VTI": 50, "World/VXUS": 12825}
    with pytest.raises(MissingPrice) as e:
        slice_values(held, {"VTI": Decimal("1")})
    assert e.value.symbol == "VXUS"

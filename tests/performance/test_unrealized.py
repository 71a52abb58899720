"""The unrealized gain per symbol and its long-term part, at the one-year boundary."""

from datetime import date
from decimal import Decimal as D

from engine.core.lots import Lot
from engine.core.unrealized import unrealized_by_symbol


def test_the_long_term_part_counts_lots_held_more_than_a_year():
    lots = [Lot(1, 1, "VTI", date(2025, 3, 10), date(2025, 3, 10), D("2"), 20_000),      # long on 2026-03-11
            Lot(2, 1, "VTI", date(2025, 3, 11), date(2025, 3, 11), D("1"), 12_000),      # a day short of it
            Lot(3, 1, "BND", date(2026, 1, 5), date(2024, 1, 5), D("4"), 28_000, 1_000)]  # a wash moved it back
    prices = {"VTI": D("150"), "BND": D("70.25")}
    values = {"VTI": 45_000, "BND": 28_100}
    [bnd, vti] = unrealized_by_symbol(lots, values, prices, date(2026, 3, 11))
    assert (vti.symbol, vti.shares, vti.basis, vti.gain, vti.long_term) == ("VTI", D("3"), 32_000, 13_000, 10_000)
    assert vti.long_term_bp == 7692                                 # 10,000 of 13,000
    assert (bnd.gain, bnd.long_term, bnd.long_term_bp) == (100, 100, 10_000)
    [_, vti_day_before] = unrealized_by_symbol(lots, values, prices, date(2026, 3, 10))
    assert vti_day_before.long_term == 0 and vti_day_before.long_term_bp == 0


def test_no_gain_has_no_share_and_a_symbol_without_lots_is_all_gain():
    [x] = unrealized_by_symbol([], {"VTI": 5_000}, {"VTI": D("50")}, date(2026, 3, 11))
    assert (x.basis, x.gain, x.long_term) == (0, 5_000, 0)
    [y] = unrealized_by_symbol([Lot(1, 1, "VTI", date(2026, 1, 2), date(2026, 1, 2), D("1"), 5_000)],
                               {"VTI": 5_000}, {"VTI": D("50")}, date(2026, 3, 11))
    assert y.gain == 0 and y.long_term_bp is None

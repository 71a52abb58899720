"""The tax preview's arithmetic: sells as net sales per symbol, and the gain they realize by
the account's lot method, short- and long-term."""

from datetime import date
from decimal import Decimal as D

from engine.core.lots import Lot
from engine.core.tax_preview import Sale, preview, sales_of

DAY = date(2026, 3, 11)
LOTS = [Lot(1, 1, "VTI", date(2025, 3, 10), date(2025, 3, 10), D("1"), 10_000),    # long, gain 50 at 150
        Lot(2, 1, "VTI", date(2025, 6, 1), date(2025, 6, 1), D("1"), 20_000),      # short, loss 50
        Lot(3, 1, "VTI", date(2026, 1, 2), date(2026, 1, 2), D("1"), 14_000)]      # short, gain 10


def test_tax_min_takes_the_short_term_loss_first_and_fifo_the_oldest():
    sale = [Sale("VTI", D("1"), 15_000)]
    t = preview(sale, LOTS, DAY, "tax-min")
    assert (t.short, t.long, [r.lot_id for r in t.rows]) == (-5_000, 0, [2])
    f = preview(sale, LOTS, DAY, "fifo")
    assert (f.short, f.long, [r.lot_id for r in f.rows]) == (0, 5_000, [1])
    h = preview([Sale("VTI", D("2.5"), 37_500)], LOTS, DAY, "hifo")
    assert [r.lot_id for r in h.rows] == [2, 3, 1] and (h.short, h.long) == (-5_000 + 1_000, 2_500)


def test_a_sale_beyond_the_lots_counts_only_what_the_lots_hold():
    t = preview([Sale("VTI", D("4"), 60_000)], LOTS, DAY, "fifo")
    assert sum(r.shares for r in t.rows) == D("3") and t.total == 45_000 - 44_000


def test_sells_net_per_symbol_against_buys_and_whole_holdings_sell_every_share():
    prices = {"VTI": D("150"), "BND": D("70")}
    trades = [("A/VTI", "VTI", -30_000, False), ("B/VTI", "VTI", 15_000, False),
              ("BND", "BND", -7_000, True), ("TIP", "TIP", -500, False)]      # no price for TIP: no estimate
    assert sales_of(trades, {"BND": D("0.123456789")}, prices) == [
        Sale("BND", D("0.123456789"), 864), Sale("VTI", D("1.000000000"), 15_000)]
    assert sales_of([("VTI", "VTI", 5_000, False)], {}, prices) == []

"""Many ids or symbols in one parameter: `bulk.id_in` and `bulk.text_in` find exactly the
rows asked for on both databases, whatever the symbols contain (the PostgreSQL path sends
them as one array literal, so its quoting must hold)."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.orm import Session

from adapters.ledger import bulk

ODD = ["VTI", "BRK.B", 'A"B', "C\\D", "E,F", " G ", "{H}", "NULL", ""]


def test_id_in_and_text_in_find_exactly_the_rows_asked_for(db_url):
    eng = create_engine(db_url)
    md = MetaData()
    t = Table("arrays_probe", md, Column("id", Integer, primary_key=True), Column("symbol", String(20)))
    md.create_all(eng)
    with Session(eng) as s:
        s.execute(insert(t), [{"id": i, "symbol": sym} for i, sym in enumerate(ODD + ["OTHER"], 1)])
        ids = list(range(1, len(ODD) + 1, 2)) + [10_000]
        assert sorted(r[0] for r in bulk.fetch(s, select(t.c.id).where(bulk.id_in(s, t.c.id, ids)))) == ids[:-1]
        assert bulk.fetch(s, select(t.c.id).where(bulk.id_in(s, t.c.id, []))) == []
        got = {r[0] for r in bulk.fetch(s, select(t.c.symbol).where(bulk.text_in(s, t.c.symbol, ODD)))}
        assert got == set(ODD)
    eng.dispose()

"""A command that only reads or writes a few ledger rows loads what it uses: SQLAlchemy's
Core and the ledger's tables, never the ORM, the window's repository or the policy
language's parser (bench/cli.py times them; docs/architecture.md). Each command runs in
a fresh interpreter, as an operator runs it, and says which of those it loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import cli_runner

ROOT = Path(__file__).resolve().parents[2]
POLICY = 'pie "Core" { VTI 60% pie "Bonds" 40% { BND 70% TIP 30% } }\n'
HEAVY = ("sqlalchemy.orm", "adapters.ledger.schema", "adapters.ledger.window_repo", "lark", "rich")

RUN = """
import sys
from engine.shell.cli import main
try:
    main(sys.argv[1:], prog_name="pies")
finally:
    sys.stderr.write("\\nLOADED " + " ".join(sorted(m for m in sys.modules if m in {heavy!r})) + "\\n")
"""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_ledger_commands_never_load_the_orm(db_url, tmp_path):
    pies = cli_runner(tmp_path, db_url, POLICY, "5000.00")
    pies("account", "add", "alice", "--pie", "Core")
    pies("deposit", "alice", "5")
    env = {**os.environ, **pies.env, "PYTHONPATH": str(ROOT)}
    for args, code in ((["deposit", "alice", "10"], 0), (["history", "alice", "--json"], 0), (["cancel", "1"], 0),
                       (["cancel", "1"], 2), (["windows", "--json"], 0), (["policy", "history", "--json"], 0)):
        r = subprocess.run([sys.executable, "-c", RUN.format(heavy=set(HEAVY)), *args], cwd=ROOT, env=env,
                           capture_output=True, text=True)
        assert r.returncode == code, r.stderr
        loaded = r.stderr.rsplit("LOADED", 1)[1].split()
        assert loaded == [], f"pies {' '.join(args)} loaded {loaded}"
        if "--json" in args:
            json.loads(r.stdout)

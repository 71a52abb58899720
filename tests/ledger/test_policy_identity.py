"""One file is one policy however it was named: relative from any directory, absolute,
through a symlink or `..`, from the settings. Plan, apply and the daemon's watch agree on
who follows it from any working directory, and a ledger that stored several spellings of
one file is merged by migration 0008. On both databases."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text

from adapters.ledger import migrate
from adapters.ledger.schema import Account, PolicyApply, PolicyVersion
from adapters.ledger.store import Ledger
from config.settings import load
from engine.shell import policies
from engine.shell.cli import main

ROOT = Path(__file__).resolve().parents[2]
TWO = 'pie "Core" { VTI 60% BND 40% }\n'
NO_BND = 'pie "Core" { VTI 100% }\n'
PRICES = {"VTI": "250.00", "BND": "72.50"}
MON = date(2026, 11, 23)


@pytest.fixture
def world(db_url, tmp_path, monkeypatch):
    """A project with its settings naming `rules/core.pie` (relative to the settings file),
    a symlink to the policy elsewhere, and a directory that has nothing to do with it."""
    project = tmp_path / "project"
    (project / "rules").mkdir(parents=True)
    policy = project / "rules" / "core.pie"
    policy.write_text(TWO)
    (tmp_path / "link.pie").symlink_to(policy)
    (tmp_path / "elsewhere").mkdir()
    (project / "prices.csv").write_text("".join(f"{s},{p}\n" for s, p in PRICES.items()))
    (project / "settings.toml").write_text(
        '[broker.simulated]\nprices_file = "prices.csv"\nstarting_cash = "100000.00"\n'
        '[policies]\nfiles = ["rules/core.pie"]\n[settle]\nat_least_seconds = 1\npoll_seconds = 0.05\n')
    env = {"PIES_DATABASE_URL": db_url, "PIES_DATA_DIR": str(tmp_path / "data"),
           "PIES_CONFIG": str(project / "settings.toml")}

    def pies(*args: str, cwd: Path, code: int = 0):
        monkeypatch.chdir(cwd)
        extra = {"PIES_NOW": f"{MON.isoformat()}T15:00:00+00:00"} if args[:2] == ("window", "run") else {}
        r = CliRunner().invoke(main, list(args), env={**env, **extra})
        assert r.exit_code == code, r.output
        return r
    return {"root": tmp_path, "project": project, "policy": policy, "env": env, "pies": pies, "url": db_url}


def _invest_four(w) -> None:
    """a1..a4 on Core, each opened with another spelling of the same file, all invested."""
    pies, project, root = w["pies"], w["project"], w["root"]
    pies("account", "add", "a1", "--pie", "Core", "--policy", "rules/core.pie", cwd=project)
    pies("account", "add", "a2", "--pie", "Core", cwd=project)                    # the settings' file
    pies("account", "add", "a3", "--pie", "Core", "--policy", "link.pie", cwd=root)
    pies("account", "add", "a4", "--pie", "Core", "--policy", "./../rules/core.pie", cwd=project / "rules")
    for name in ("a1", "a2", "a3", "a4"):
        pies("deposit", name, "1000", cwd=root / "elsewhere")
    pies("window", "run", "--date", MON.isoformat(), "--force", cwd=root / "elsewhere")


def test_one_file_is_one_policy_for_plan_and_apply_from_any_directory(world):
    _invest_four(world)
    led = Ledger(world["url"])
    (version, _, followers), = led.versions()
    assert version.file == os.path.realpath(world["policy"]) and followers == 4
    world["policy"].write_text(NO_BND)
    elsewhere = world["root"] / "elsewhere"
    # The plan from a directory that has nothing to do with the project sees every follower.
    plan = json.loads(world["pies"]("policy", "plan", "../project/rules/core.pie", "--json", cwd=elsewhere,
                                    code=1).output)
    (p,) = plan["plans"]
    assert plan["trades"] and p["changed"]
    assert {(a["account"], x["slice"]) for a in p["accounts"] for x in a["liquidations"]} == \
        {(n, "BND") for n in ("a1", "a2", "a3", "a4")}
    # Applied through the symlink, from yet another directory: every follower moves.
    out = world["pies"]("policy", "apply", "link.pie", "--yes", cwd=world["root"]).output
    assert all(f"queued liquidation {n} BND" in out for n in ("a1", "a2", "a3", "a4"))
    assert sorted((n, e.path) for e, n in led.events(status="pending") if e.kind == "liquidation") == \
        [(n, "BND") for n in ("a1", "a2", "a3", "a4")]
    (v1, _, left), (v2, applies, moved) = led.versions()
    assert (left, moved, v2.file) == (0, 4, v1.file) and applies[0].liquidations == 4
    # Planned again from the project, with its own spelling: nothing left to do.
    again = json.loads(world["pies"]("policy", "plan", "rules/core.pie", "--json", cwd=world["project"]).output)
    assert not again["plans"][0]["changed"]
    led.dispose()


def test_the_daemons_watch_moves_every_follower_from_another_directory(world, monkeypatch):
    from engine.shell.daemon import Daemon
    _invest_four(world)
    settings = world["project"] / "settings.toml"
    settings.write_text(settings.read_text().replace("[policies]\n", "[policies]\nauto_apply = true\n"))
    monkeypatch.chdir(world["root"] / "elsewhere")
    d = Daemon(load(env=world["env"]))
    d.open()
    d.reload_policies()
    world["policy"].write_text(NO_BND)
    time.sleep(0.01)
    os.utime(world["policy"])
    d.reload_if_changed()
    moved = {a.name: a.policy_version_id for a in d.ledger.accounts()}
    latest = d.ledger.versions()[-1][0]
    assert latest.sha256 == policies.sha_of(NO_BND) and set(moved.values()) == {latest.id}
    assert sorted(n for e, n in d.ledger.events(status="pending") if e.kind == "liquidation") == \
        ["a1", "a2", "a3", "a4"]
    d.ledger.dispose()


def _migration():
    spec = importlib.util.spec_from_file_location(
        "m0008", ROOT / "adapters/ledger/migrations/versions/0008_policy_files_resolved.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_an_old_ledger_with_several_spellings_of_one_file_is_merged(db_url, tmp_path, monkeypatch):
    from alembic import command
    project = tmp_path / "project"
    (project / "rules").mkdir(parents=True)
    policy = project / "rules" / "core.pie"
    policy.write_text(NO_BND)
    (tmp_path / "elsewhere").mkdir()
    eng = create_engine(db_url)
    cfg = migrate._config(eng)
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
    two, one = policies.sha_of(TWO), policies.sha_of(NO_BND)
    spelled = [(1, "rules/core.pie", two, TWO),                          # typed in the project
               (2, str(policy), two, TWO),                                # the settings' absolute path
               (3, str(project / "rules" / ".." / "rules" / "core.pie"), one, NO_BND),
               (4, "rules/core.pie", one, NO_BND)]
    with eng.begin() as conn:
        for vid, file, sha, body in spelled:
            conn.execute(text("insert into policy_versions (id, file, sha256, text, loaded_at) "
                              "values (:id, :file, :sha, :text, '2026-11-20 10:00:00')"),
                         {"id": vid, "file": file, "sha": sha, "text": body})
        conn.execute(text("insert into accounts (id, name, broker, cash, is_house, rules, created_at, status) "
                          "values (1, 'house:main', 'main', 0, true, 'm1', '2026-11-20 10:00:00', 'active')"))
        for aid, vid in ((2, 1), (3, 2), (4, 3), (5, 4), (6, 2)):
            conn.execute(text("insert into accounts (id, name, pie, policy_version_id, broker, cash, is_house, rules, "
                              "created_at, status) values (:id, :name, 'Core', :v, 'main', 0, false, 'm1', "
                              "'2026-11-20 10:00:00', 'active')"), {"id": aid, "name": f"a{aid}", "v": vid})
        for vid in (1, 2, 3):
            conn.execute(text("insert into policy_applies (version_id, applied_at, source, accounts, liquidations) "
                              "values (:v, '2026-11-20 10:00:00', 'cli', 1, 0)"), {"v": vid})
    monkeypatch.chdir(tmp_path / "elsewhere")          # not where `rules/core.pie` was typed
    assert migrate.upgrade(eng) == ("0007", migrate.HEAD)
    eng.dispose()
    led = Ledger(db_url)
    with led.tx() as s:
        versions = [(v.id, v.file, v.sha256) for v in s.scalars(select(PolicyVersion).order_by(PolicyVersion.id))]
        follows = {a.name: a.policy_version_id for a in s.scalars(select(Account).where(Account.is_house.is_(False)))}
        applies = sorted(s.scalars(select(PolicyApply.version_id)))
    real = os.path.realpath(policy)
    assert versions == [(1, real, two), (3, real, one)]
    assert follows == {"a2": 1, "a3": 1, "a4": 3, "a5": 3, "a6": 1} and applies == [1, 1, 3]
    # Every follower is a follower of the one file now, whoever plans it from wherever.
    plan = policies.plan(led, "../project/rules/core.pie", NO_BND, lambda symbols: {})
    assert plan.retargeted == ("a2", "a3", "a6") and plan.changed
    led.dispose()


def test_the_merge_rule_for_relative_spellings(tmp_path):
    rule = _migration().resolved_files
    a, b = str(tmp_path / "x" / "rules" / "core.pie"), str(tmp_path / "y" / "rules" / "core.pie")
    # One absolute spelling ends with the relative one's parts: that one, from any directory.
    assert rule({"rules/core.pie": {"h1"}, a: {"h2"}}, "/nowhere") == {"rules/core.pie": a, a: a}
    # Two do: the one that has the same text (hash).
    assert rule({"../rules/core.pie": {"h2"}, a: {"h1"}, b: {"h2"}}, "/nowhere")["../rules/core.pie"] == b
    # Still two, or none: resolved against the directory the upgrade runs in.
    assert rule({"rules/core.pie": {"h3"}, a: {"h1"}, b: {"h2"}}, str(tmp_path))["rules/core.pie"] == \
        os.path.realpath(tmp_path / "rules" / "core.pie")
    assert rule({"other.pie": {"h1"}, a: {"h1"}}, str(tmp_path))["other.pie"] == \
        os.path.realpath(tmp_path / "other.pie")


def test_each_policy_version_is_compiled_once(db_url, tmp_path):
    compiler = policies.Compiler()
    led = Ledger(db_url)
    led.ensure_house("main", Decimal("0"), {})
    policy = tmp_path / "core.pie"
    policy.write_text(TWO)
    for name in ("a", "b", "c"):
        policies.add_account(led, name, "Core", policy, compiler=compiler)
    pies = {policies.policy_of(led, n, compiler)[1] for n in ("a", "b", "c")}
    assert compiler.compiled == 1 and len(pies) == 1
    policy.write_text(NO_BND)
    policies.plan(led, policy, NO_BND, lambda symbols: {}, compiler)
    policies.apply_file(led, policy, compiler=compiler)
    assert {policies.policy_of(led, n, compiler)[1].slices[0].target_bp for n in ("a", "b", "c")} == {10_000}
    assert compiler.compiled == 2                  # the new text once, whoever asked
    led.dispose()

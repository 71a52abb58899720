"""Settings: defaults, a user file over them, the environment over both, clear errors."""

from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from config.settings import SettingsError, load
from engine.shell.cli import main


def test_embedded_defaults_are_safe():
    s = load(env={})
    assert s.broker_kind == "simulated" and s.database_url.startswith("sqlite:///")
    assert s.alpaca["paper"] is True and s.alpaca["allow_live"] is False
    assert [(w.name, w.at.isoformat(), w.timezone) for w in s.windows] == [("open", "09:35:00", "America/New_York")]


def test_user_file_and_environment_override(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[broker]\nmin_order = "2.50"\n[[recurring]]\naccount = "a"\namount = "100"\nevery = "week"\nday = 5\n')
    s = load(f, env={"PIES_DATABASE_URL": "postgresql+psycopg://u:hunter2@db/p", "PIES_DATA_DIR": str(tmp_path)})
    assert s.min_order_cents == 250 and s.data_dir == tmp_path
    assert s.recurring == ({"account": "a", "amount": Decimal("100"), "every": "week", "day": 5},)
    assert "hunter2" not in str(s.describe()) and "u:***@db/p" in s.describe()["database_url"]


@pytest.mark.parametrize("text, says", [
    ('[[windows]]\nname = "x"\nat = "9h"\n', "windows[0].at: '9h' is not a time"),
    ('[broker]\nkind = "ib"\n', "broker.kind must be simulated or alpaca"),
    ('[[recurring]]\naccount = "a"\namount = "1.005"\n', "recurring[0]: amount '1.005' must be positive whole cents"),
    ('[broker\n', "s.toml"),
    ('[settle]\npoll_seconds = "often"\n', "settle.poll_seconds: 'often' must be a number of zero or more"),
    ('[settle]\nat_least_seconds = -1\n', "settle.at_least_seconds: -1 must be a number of zero or more"),
])
def test_mistakes_name_the_file_and_key(tmp_path, text, says):
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(SettingsError, match=None) as e:
        load(f, env={})
    assert says in str(e.value) and str(f) in str(e.value)
    r = CliRunner().invoke(main, ["--config", str(f), "accounts"])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_the_settle_bound_and_poll_interval_are_settings(tmp_path):
    from engine.shell.wiring import window_options
    assert window_options(load(env={})).poll_interval == 2.0
    f = tmp_path / "s.toml"
    f.write_text("[settle]\nbefore_close_minutes = 30\nat_least_seconds = 90\npoll_seconds = 0.5\n")
    s = load(f, env={})
    assert (s.settle_before_close_minutes, s.settle_at_least_seconds, s.poll_seconds) == (30, 90.0, 0.5)
    assert window_options(s, settle_timeout=7).poll_interval == 0.5


@pytest.mark.parametrize("text, says", [
    ('[brokr]\nkind = "alpaca"\n', "unknown key brokr (did you mean 'broker'?)"),
    ('[broker]\nknd = "alpaca"\n', "unknown key broker.knd (did you mean 'kind'?)"),
    ('[policies]\nfile = ["a.pie"]\n', "unknown key policies.file (did you mean 'files'?)"),
    ('[broker.alpaca]\npaper = "yes"\n', "broker.alpaca.paper: Input should be a valid boolean"),
    ('[broker.alpaca]\nrequests_per_minute = 500\n', "must be a whole number from 1 to 200 (Alpaca's limit)"),
    ('[[windows]]\nat = "09:35"\ntimezone = "Mars/Olympus"\n', "windows[0].timezone: 'Mars/Olympus' is not a time zone"),
    ('[broker]\nmin_order = 1.5\n', "min_order 1.5 must be written as a string of dollars"),
    ('[[brokers]]\nname = "a"\n[[brokers]]\nname = "a"\n', "two brokers are named 'a'"),
    # amounts: the one grammar of docs/money.md, in one short line
    ('[broker]\nmin_order = ' + "9" * 5000 + '\n', "Exceeds the limit"),
    ('[broker]\nmin_order = "' + "9" * 5000 + '"\n', "too long for an amount"),
    ('[broker]\nmin_order = "10,50"\n', "commas only separate thousands"),
    ('[broker.simulated]\nstarting_cash = "1e30"\n', "starting_cash '1e30' is not a dollar amount"),
    ('[policies]\nauto_apply_max_dollars = "1,000,000,000.01"\n', "surely a typo"),
    ('[[recurring]]\naccount = "a"\namount = "0"\n', "must be positive"),
])
def test_unknown_keys_and_bad_values_are_refused_with_file_key_and_hint(tmp_path, text, says):
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(SettingsError) as e:
        load(f, env={})
    assert says in str(e.value) and str(e.value).startswith(str(f)), str(e.value)
    assert "\n" not in str(e.value) and len(str(e.value)) < 300


def test_several_brokers_and_paths_relative_to_the_settings_file(tmp_path):
    (tmp_path / "conf").mkdir()
    f = tmp_path / "conf" / "s.toml"
    f.write_text('[policies]\nfiles = ["pies/growth.pie"]\n'
                 '[[brokers]]\nname = "paper-a"\nkind = "simulated"\n[brokers.simulated]\nprices_file = "p.csv"\n'
                 '[[brokers]]\nname = "paper-b"\nkind = "alpaca"\nmin_order = "2"\n'
                 '[brokers.alpaca]\nkey_env = "B_KEY"\nsecret_env = "B_SECRET"\ntrading_url = "http://127.0.0.1:9"\n'
                 '[brokers.settle]\nbefore_close_minutes = 30\n')
    s = load(f, env={})
    assert [(b.name, b.kind, b.min_order_cents) for b in s.brokers] == [("paper-a", "simulated", 100),
                                                                         ("paper-b", "alpaca", 200)]
    assert s.policy_files == (str(tmp_path / "conf" / "pies" / "growth.pie"),)
    assert s.brokers[0].simulated["prices_file"] == str(tmp_path / "conf" / "p.csv")
    assert s.brokers[1].alpaca["key_env"] == "B_KEY" and s.brokers[1].settle_before_close_minutes == 30
    assert s.brokers[0].settle_before_close_minutes == 15
    assert s.broker_name == "paper-a"                              # the first is the default one
    with pytest.raises(SettingsError, match="no broker account named 'c'"):
        s.broker_named("c")


def test_the_defaults_policy_path_works_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (path,) = load(env={}).policy_files
    assert Path(path).is_file() and Path(path).name == "growth.pie"


def test_pies_settings_shows_values_sources_and_masks_secrets(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[broker]\nmin_order = "2.50"\n[alerts]\nwebhooks = ["https://hooks.example/T?token=s3cret"]\n')
    env = {"PIES_CONFIG": str(f), "PIES_DATABASE_URL": "postgresql+psycopg://u:hunter2@db/p"}
    r = CliRunner().invoke(main, ["settings", "--json"], env=env)
    assert r.exit_code == 0, r.output
    rows = {x["key"]: x for x in __import__("json").loads(r.output)["settings"]}
    assert rows["broker.min_order"] == {"key": "broker.min_order", "value": "2.50", "source": str(f)}
    assert rows["broker.kind"]["source"] == "defaults"
    assert rows["ledger.url"]["source"] == "environment PIES_DATABASE_URL"
    assert "hunter2" not in r.output and "s3cret" not in r.output and "u:***@db/p" in r.output
    text = CliRunner().invoke(main, ["settings"], env=env).output
    assert "broker.min_order" in text and "hunter2" not in text


def test_zero_is_a_minimum_order_in_any_spelling_of_the_grammar(tmp_path):
    f = tmp_path / "s.toml"
    for zero in ('"0"', '"0.00"', '"$0"', "0"):
        f.write_text(f"[broker]\nmin_order = {zero}\n")
        assert load(f, env={}).min_order_cents == 0


def test_the_alpaca_request_budget_is_a_setting_that_reaches_the_adapter(tmp_path, monkeypatch):
    from engine.shell.wiring import open_broker
    monkeypatch.setenv("APCA_API_KEY_ID", "PKTESTKEY0000000000")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "test-secret-never-recorded")
    f = tmp_path / "s.toml"
    f.write_text('[broker]\nkind = "alpaca"\n[broker.alpaca]\nrequests_per_minute = 120\n')
    b = open_broker(load(f, env={}))
    assert b.config.requests_per_minute == 120 and b.pacer.per_minute == 120
    assert load(None, env={}).alpaca["requests_per_minute"] == 190


def test_whether_a_broker_applies_corporate_actions_is_a_setting_that_reaches_the_adapter(tmp_path, monkeypatch):
    """Unset: the simulated broker and Alpaca live apply them, Alpaca paper does not
    (Alpaca-API #181); either can be said otherwise."""
    from engine.shell.wiring import open_broker
    monkeypatch.setenv("APCA_API_KEY_ID", "PKTESTKEY0000000000")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "test-secret-never-recorded")
    f = tmp_path / "s.toml"
    f.write_text('[[brokers]]\nname = "sim"\n[brokers.simulated]\nstate_file = "sim.json"\n'
                 '[[brokers]]\nname = "paper"\nkind = "alpaca"\n'
                 '[[brokers]]\nname = "live"\nkind = "alpaca"\n[brokers.alpaca]\npaper = false\nallow_live = true\n'
                 '[[brokers]]\nname = "sim-as-paper"\napplies_corporate_actions = false\n'
                 '[brokers.simulated]\nstate_file = "sim2.json"\n'
                 '[[brokers]]\nname = "paper-applies"\nkind = "alpaca"\napplies_corporate_actions = true\n')
    s = load(f, env={})
    assert [(b.name, b.applies_corporate_actions) for b in s.brokers] == [
        ("sim", True), ("paper", False), ("live", True), ("sim-as-paper", False), ("paper-applies", True)]
    assert [open_broker(s, b.name).applies_corporate_actions for b in s.brokers] == [True, False, True, False, True]
    f.write_text('[broker]\napplies_corporate_actions = "no"\n')
    with pytest.raises(SettingsError, match="applies_corporate_actions"):
        load(f, env={})

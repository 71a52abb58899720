"""Settings: defaults, a user file over them, the environment over both, clear errors."""

from decimal import Decimal

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

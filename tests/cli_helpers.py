"""Shared setup of tests that drive the CLI."""

from __future__ import annotations


def cli_env(tmp_path, db_url: str, policy: str, starting_cash: str) -> dict[str, str]:
    """Files and environment for the CLI on one policy file and a simulated broker priced
    VTI 250, BND 72.5, TIP 110."""
    (tmp_path / "core.pie").write_text(policy)
    (tmp_path / "prices.csv").write_text("VTI,250\nBND,72.5\nTIP,110\n")
    (tmp_path / "settings.toml").write_text(
        f'[broker.simulated]\nprices_file = "{tmp_path / "prices.csv"}"\nstarting_cash = "{starting_cash}"\n'
        f'[policies]\nfiles = ["{tmp_path / "core.pie"}"]\n')
    return {"PIES_DATABASE_URL": db_url, "PIES_DATA_DIR": str(tmp_path / "data"),
            "PIES_CONFIG": str(tmp_path / "settings.toml")}


def cli_runner(tmp_path, db_url: str, policy: str, starting_cash: str):
    """`run(*args, code=0)`: a `pies` command in this process on cli_env's files, at 15:00
    UTC on 2026-11-24 (PIES_NOW), asserting its exit code; `run.env` is its environment."""
    from click.testing import CliRunner

    from engine.shell.cli import main
    env = {**cli_env(tmp_path, db_url, policy, starting_cash), "PIES_NOW": "2026-11-24T15:00:00+00:00"}

    def run(*args: str, code: int = 0):
        r = CliRunner().invoke(main, list(args), env=env)
        assert r.exit_code == code, r.output
        return r
    run.env = env
    return run

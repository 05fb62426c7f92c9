"""Errors without an engine: a missing data dir, usage errors, the default data dir, and ``aion demo``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import _env, run_all
from tests.cli.conftest import aion as run


@pytest.mark.timeout(60)
def test_commands_against_a_missing_data_dir(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    commands: list[tuple[str | Path, ...]] = []
    for args in (
        ("list",), ("describe", "x"), ("history", "x"), ("tree",), ("start", "greet"), ("signal", "x", "s"),
        ("query", "x", "q"), ("cancel", "x"), ("terminate", "x"), ("result", "x"),
    ):  # fmt: skip
        commands.append((*args, "--data-dir", missing))
    for result in run_all(commands):
        assert result.code == 1, result
        assert result.err.startswith(f"error[not_found]: data directory '{missing}' does not exist"), result
        assert "aion serve" in result.err
    assert not missing.exists()


@pytest.mark.timeout(60)
def test_a_directory_that_is_not_a_store(tmp_path: Path) -> None:
    result = run("list", "--data-dir", tmp_path)
    assert result.code == 1 and result.err.startswith("error[store_error]: "), result
    bad_id = run("describe", " ", "--data-dir", tmp_path)
    assert bad_id.code == 1 and bad_id.err.startswith("error[invalid_argument]: ")


@pytest.mark.timeout(60)
def test_usage_errors_exit_2(tmp_path: Path) -> None:
    commands: list[tuple[str | Path, ...]] = []
    for args in (
        ("list", "--status", "bogus"), ("start",), ("no-such-command",), ("list", "--limit", "0"),
        ("start", "greet", "--input", "{not json"), ("signal", "x", "y", "--payload", "nope"),
        ("serve", "--data-dir", str(tmp_path)), ("serve", "--module", "no.such.module", "--data-dir", str(tmp_path)),
    ):  # fmt: skip
        commands.append((*args, "--data-dir", tmp_path) if args[0] != "serve" else args)
    for result in run_all(commands):
        assert result.code == 2, result
        assert "Usage:" in result.err or "Error:" in result.err


@pytest.mark.timeout(60)
def test_data_dir_defaults_to_the_environment_then_aion_data(tmp_path: Path) -> None:
    env = _env() | {"AION_DATA_DIR": str(tmp_path / "from-env")}
    result = run("list", env=env)
    assert result.code == 1 and f"'{tmp_path / 'from-env'}'" in result.err
    default = run("list")
    assert default.code == 1 and "data directory 'aion-data'" in default.err
    assert "AION_DATA_DIR" in run("list", "--help").out


@pytest.mark.timeout(90)
def test_demo_runs() -> None:
    result = run("demo", timeout=80)
    assert result.code == 0, result
    assert "completed" in result.out and "each exactly once" in result.out

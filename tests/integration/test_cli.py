"""The ``fastlims`` command against a real database file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fastlims.cli import main


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FASTLIMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FASTLIMS_DATABASE_URL", raising=False)
    return tmp_path


def test_users_add_with_generated_password_and_token(env: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["users", "add", "erin", "--role", "requester"])
    assert result.exit_code == 0, result.output
    assert "one-time password (shown only now):" in result.output
    token = runner.invoke(main, ["tokens", "create", "erin"])
    assert token.exit_code == 0 and token.output.strip().startswith("flt_")
    again = runner.invoke(main, ["users", "add", "erin", "--role", "requester"])
    assert again.exit_code == 1 and "already exists" in again.output


def test_users_add_password_stdin(env: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main, ["users", "add", "lena", "--role", "lab_manager", "--password-stdin"], input="a-long-password\n"
    )
    assert result.exit_code == 0 and "one-time password" not in result.output
    short = runner.invoke(main, ["users", "add", "lars", "--role", "admin", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    empty = runner.invoke(main, ["users", "add", "lars", "--role", "admin", "--password-stdin"], input="")
    assert empty.exit_code == 1 and "no password was read" in empty.output


def test_bad_role_and_unknown_user(env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["users", "add", "x1", "--role", "boss"]).exit_code == 2
    missing = runner.invoke(main, ["tokens", "create", "ghost"])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_db_commands(env: Path) -> None:
    runner = CliRunner()
    assert "database at 0002" in runner.invoke(main, ["db", "upgrade"]).output
    assert "current: 0002" in runner.invoke(main, ["db", "current"]).output
    assert "database at base" in runner.invoke(main, ["db", "downgrade", "base"]).output


def test_bad_configuration_is_named(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTLIMS_TIMEZONE", "Mars/Olympus")
    result = CliRunner().invoke(main, ["db", "current"])
    assert result.exit_code == 1 and "Mars/Olympus" in result.output

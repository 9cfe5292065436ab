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
    from fastlims.db.migrate import head_revision

    assert f"database at {head_revision()}" in runner.invoke(main, ["db", "upgrade"]).output
    assert f"current: {head_revision()}" in runner.invoke(main, ["db", "current"]).output
    assert "database at base" in runner.invoke(main, ["db", "downgrade", "base"]).output


def test_bad_configuration_is_named(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTLIMS_TIMEZONE", "Mars/Olympus")
    result = CliRunner().invoke(main, ["db", "current"])
    assert result.exit_code == 1 and "Mars/Olympus" in result.output


def test_mqtt_users_add_and_list(env: Path) -> None:
    runner = CliRunner()
    added = runner.invoke(main, ["mqtt-users", "add", "comau-dt", "--role", "partner"])
    assert added.exit_code == 0 and "one-time password (shown only now):" in added.output
    bench = runner.invoke(
        main, ["mqtt-users", "add", "bench-01", "--role", "bench", "--password-stdin"], input="bench-password-1\n"
    )
    assert bench.exit_code == 0 and "one-time password" not in bench.output
    listing = runner.invoke(main, ["mqtt-users", "list"]).output
    assert "comau-dt\tpartner\tactive" in listing and "bench-01\tbench\tactive" in listing
    again = runner.invoke(main, ["mqtt-users", "add", "comau-dt", "--role", "partner"])
    assert again.exit_code == 1 and "already exists" in again.output
    bad = runner.invoke(main, ["mqtt-users", "add", "a/b", "--role", "bench"])
    assert bad.exit_code == 1 and "becomes a topic level" in bad.output
    assert runner.invoke(main, ["mqtt-users", "add", "x1", "--role", "lims"]).exit_code == 2


def test_mqtt_identity_passwords_are_argon2(env: Path) -> None:
    from fastlims.bootstrap import build
    from fastlims.config import Settings
    from fastlims.messaging import identities

    CliRunner().invoke(
        main, ["mqtt-users", "add", "dt1", "--role", "partner", "--password-stdin"], input="a-long-password\n"
    )
    system = build(Settings())
    with system.database.transaction() as session:
        user = identities.get_all(session=session)[0]
        assert user.password_hash.startswith("$argon2id$")
        assert identities.check(session=session, username="dt1", password="a-long-password") is not None
        assert identities.check(session=session, username="dt1", password="wrong-password") is None
    system.close()

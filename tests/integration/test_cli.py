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
    unknown = runner.invoke(main, ["mqtt-users", "add", "comau-dt", "--role", "partner"])
    assert unknown.exit_code == 1 and "add it first with `fastlims partners add comau-dt`" in unknown.output
    assert runner.invoke(main, ["partners", "add", "comau-dt"]).exit_code == 0  # no key: no SFTP
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
    watcher = runner.invoke(main, ["mqtt-users", "add", "dash", "--role", "monitor"])
    assert watcher.exit_code == 0 and "dash\tmonitor\tactive" in runner.invoke(main, ["mqtt-users", "list"]).output


def test_mqtt_identity_passwords_are_argon2(env: Path) -> None:
    from fastlims.bootstrap import build
    from fastlims.config import Settings
    from fastlims.messaging import identities

    assert CliRunner().invoke(main, ["partners", "add", "dt1"]).exit_code == 0
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


def test_one_partner_name_across_sftp_mqtt_and_http_upload(env: Path) -> None:
    """`partners add`, `mqtt-users add --role partner`, `users add --role model_uploader --partner`
    name one partner; routes send a UUT's or a test's requests to it; disabling it disables all."""
    from fastlims.bootstrap import build
    from fastlims.config import Settings
    from fastlims.messaging import identities

    runner = CliRunner()
    assert runner.invoke(main, ["partners", "add", "acme"]).exit_code == 0
    pw = {"input": "a-long-password\n"}
    assert (
        runner.invoke(main, ["mqtt-users", "add", "acme", "--role", "partner", "--password-stdin"], **pw).exit_code == 0
    )
    as_bench = runner.invoke(main, ["mqtt-users", "add", "acme", "--role", "bench", "--password-stdin"], **pw)
    assert as_bench.exit_code == 1 and "partner's name" in as_bench.output
    uploader = runner.invoke(
        main, ["users", "add", "acme-up", "--role", "model_uploader", "--partner", "acme", "--password-stdin"], **pw
    )
    assert uploader.exit_code == 0, uploader.output
    unbound = runner.invoke(main, ["users", "add", "up2", "--role", "model_uploader", "--password-stdin"], **pw)
    assert unbound.exit_code == 1 and "give --partner NAME" in unbound.output
    nobody = runner.invoke(
        main, ["users", "add", "up3", "--role", "model_uploader", "--partner", "nobody", "--password-stdin"], **pw
    )
    assert nobody.exit_code == 1 and "partner 'nobody' does not exist" in nobody.output
    assert runner.invoke(main, ["partners", "route", "add", "acme", "--uut", "CELL-01"]).exit_code == 0
    assert runner.invoke(main, ["partners", "route", "add", "acme", "--test", "Capacity test"]).exit_code == 0
    both = runner.invoke(main, ["partners", "route", "add", "acme", "--test", "x", "--uut", "y"])
    assert both.exit_code == 2 and "exactly one of --test NAME or --uut CODE" in both.output
    ghost = runner.invoke(main, ["partners", "route", "add", "ghost", "--uut", "CELL-01"])
    assert ghost.exit_code == 1 and "partner 'ghost' does not exist" in ghost.output
    assert runner.invoke(main, ["partners", "route", "list"]).output.splitlines() == [
        "test\tCapacity test\tacme",
        "uut\tCELL-01\tacme",
    ]
    assert runner.invoke(main, ["partners", "route", "remove", "--test", "Capacity test"]).exit_code == 0
    missing = runner.invoke(main, ["partners", "route", "remove", "--test", "Capacity test"])
    assert missing.exit_code == 1 and "there is no route for test 'Capacity test'" in missing.output
    acl = runner.invoke(main, ["mqtt-users", "mosquitto-acl", "--lims-user", "lims"]).output
    assert (
        "user acme\ntopic write fastest/v1/partners/acme/requests/+/ack\ntopic read fastest/v1/partners/acme/#" in acl
    )
    assert "user lims\ntopic write fastest/v1/#" in acl
    assert runner.invoke(main, ["partners", "disable", "acme"]).exit_code == 0
    system = build(Settings())
    with system.database.transaction() as session:  # the MQTT identity went with the partner
        assert identities.check(session=session, username="acme", password="a-long-password") is None
    system.close()

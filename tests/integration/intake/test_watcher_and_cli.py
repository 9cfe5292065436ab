"""Files dropped into the local pool by other means, the intake service's start-up pass, and the
`fastlims partners` commands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from fastlims.bootstrap import System
from fastlims.cli import main
from tests.integration.intake.helpers import (
    LoopThread,
    ModelFiles,
    RunningIntake,
    new_request,
    request_row,
    ssh_keygen,
    start_intake,
    wait_for,
)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_files_copied_into_the_pool_are_processed_once_complete(
    system: System, running_intake: RunningIntake, fmi2_set: ModelFiles
) -> None:
    request = new_request(system)
    folder = running_intake.intake.storage.local_root / "pool" / request.test_uuid  # type: ignore[operator]
    folder.mkdir(parents=True)
    for name, data in fmi2_set.files().items():
        if name == "battery_cell.fmu":
            # Written in pieces, as a slow copy would: the watcher waits until it stops changing.
            with open(folder / name, "wb") as out:
                for start in range(0, len(data), 512):
                    out.write(data[start : start + 512])
                    out.flush()
        else:
            temporary = folder / f".{name}.part"
            temporary.write_bytes(data)
            os.replace(temporary, folder / name)  # the recommended way: write, then rename
    wait_for(lambda: request_row(system, request.test_uuid)["status"] == "ModelReady", what="ModelReady")
    assert not folder.exists()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_files_that_arrived_while_down_are_processed_at_start(system: System, fmi2_set: ModelFiles) -> None:
    request = new_request(system)

    storage = system.intake.storage
    for name, data in fmi2_set.files().items():
        storage.put(f"pool/{request.test_uuid}/{name}", data)
    loop = LoopThread()
    running = start_intake(system, loop, sftp_enabled=False)
    try:
        wait_for(lambda: request_row(system, request.test_uuid)["status"] == "ModelReady", what="ModelReady")
    finally:
        loop.run(running.service.stop())
        running.system.close()
        loop.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FASTLIMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FASTLIMS_DATABASE_URL", raising=False)
    return tmp_path


def test_partners_commands(env: Path) -> None:
    first, second = ssh_keygen(env / "acme1"), ssh_keygen(env / "acme2")
    runner = CliRunner()
    added = runner.invoke(main, ["partners", "add", "acme", "--key", f"{first}.pub", "--quota", "5GB"])
    assert added.exit_code == 0, added.output
    assert "SHA256:" in added.output and "sftp -P 2222 acme@127.0.0.1" in added.output
    assert "ssh-ed25519" not in added.output  # fingerprints, never keys
    assert runner.invoke(main, ["partners", "add-key", "acme", "--key", f"{second}.pub"]).exit_code == 0
    listed = runner.invoke(main, ["partners", "list"])
    assert listed.output.count("SHA256:") == 2 and "quota 5000000000 bytes" in listed.output
    fingerprint = listed.output.split()[-1]
    assert runner.invoke(main, ["partners", "remove-key", "acme", fingerprint]).exit_code == 0
    assert runner.invoke(main, ["partners", "disable", "acme"]).exit_code == 0
    assert "disabled" in runner.invoke(main, ["partners", "list"]).output
    again = runner.invoke(main, ["partners", "add", "acme", "--key", f"{first}.pub"])
    assert again.exit_code == 1 and "already exists" in again.output
    private = runner.invoke(main, ["partners", "add", "evil", "--key", str(first)])
    assert private.exit_code == 1 and "PRIVATE key" in private.output
    (env / "junk.pub").write_text("not a key\n")
    junk = runner.invoke(main, ["partners", "add", "junk", "--key", str(env / "junk.pub")])
    assert junk.exit_code == 1 and "not an OpenSSH public key" in junk.output
    bad_name = runner.invoke(main, ["partners", "add", "../etc", "--key", f"{first}.pub"])
    assert bad_name.exit_code == 1 and "invalid" in bad_name.output

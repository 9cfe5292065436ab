"""docs/partners-upload.md with the real OpenSSH client: its sftp commands, verbatim, upload a set
that reaches ModelReady; a partner lists its own folder; another partner's upload is quarantined
as unauthorized without touching the request; a refused upload's every reason reaches the partner."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from fastlims.bootstrap import System
from fastlims.messaging.models import OutboxMessage
from fastlims.requests import routing
from fastlims.requests import service as requests
from tests.integration.intake.helpers import (
    ModelFiles,
    RunningIntake,
    SftpClient,
    add_partner,
    new_request,
    quarantined,
    request_row,
    sftp_binary,
    ssh_keygen,
    wait_for,
    write_files,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "partners-upload.md"
DOC_UUID = "3f2a9c1e-8b7d-4e6f-a5b4-c3d2e1f0a9b8"


def documented_sessions() -> list[list[str]]:
    """The ``sftp>`` commands of each code block of the partner guide, as written."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    sessions = [[line[len("sftp> ") :] for line in b.splitlines() if line.startswith("sftp> ")] for b in blocks]
    return [s for s in sessions if s]


def run(client: SftpClient, user: str, key: Path, commands: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        client.command(user, key),
        input="".join(c + "\n" for c in commands),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


@pytest.fixture
def client(running_intake: RunningIntake) -> SftpClient:
    return SftpClient(sftp_binary(), running_intake.sftp_port)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "keys"
    folder.mkdir()
    return {name: ssh_keygen(folder / name) for name in ("acme", "globex")}


def test_the_guide_shows_one_put_per_file_or_put_dash_r() -> None:
    sessions = documented_sessions()
    assert len(sessions) == 2
    for commands in sessions:
        for command in commands:
            words = command.split()
            if words[0] == "put" and "-R" not in words:
                assert len(words) == 3, f"one file per put: {command!r}"


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("session_index", [0, 1])
def test_the_documented_commands_upload_a_set_verbatim(
    system: System,
    running_intake: RunningIntake,
    client: SftpClient,
    keys: dict[str, Path],
    fmi2_set: ModelFiles,
    tmp_path: Path,
    session_index: int,
) -> None:
    add_partner(system, "acme", keys["acme"])
    request = new_request(system)
    commands = [c.replace(DOC_UUID, request.test_uuid) for c in documented_sessions()[session_index]]
    work = tmp_path / "work"
    write_files(work, fmi2_set.files())  # one put per file: the files beside the client
    write_files(work / request.test_uuid, fmi2_set.files())  # put -R: a folder named after the request
    result = run(client, "acme", keys["acme"], commands, work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Permission denied" not in result.stderr and "Couldn't" not in result.stderr
    assert wait_for(lambda: request_row(system, request.test_uuid)["status"] == "ModelReady", what="ModelReady")
    fmus = running_intake.intake.storage.list(request_row(system, request.test_uuid)["fmu_blob_path"])
    assert sorted(f.key.rsplit("/", 1)[1] for f in fmus) == sorted(fmi2_set.files())


@pytest.mark.parametrize("backend", ["sqlite"])
def test_another_partners_upload_is_unauthorized_and_the_request_is_unaffected(
    system: System,
    running_intake: RunningIntake,
    client: SftpClient,
    keys: dict[str, Path],
    fmi2_set: ModelFiles,
    tmp_path: Path,
) -> None:
    add_partner(system, "acme", keys["acme"])
    add_partner(system, "globex", keys["globex"])
    request = new_request(system)
    with system.database.transaction() as session:  # acme serves it (as a route would decide)
        found = requests.get_by_uuid(session=session, test_uuid=request.test_uuid)
        assert routing.claim(session=session, request=found, partner="acme")
    work = tmp_path / "work"
    write_files(work, fmi2_set.files())
    uuid = request.test_uuid
    upload = [f"mkdir {uuid}", *(f"put {name} {uuid}/" for name in fmi2_set.files())]
    assert run(client, "globex", keys["globex"], upload, work).returncode == 0
    running_intake.loop.run(running_intake.service.sftp.wait_for_events())
    attempts = quarantined(running_intake.intake, uuid)
    assert attempts and all(r["kind"] == "unauthorized" and "partner globex" in r["reason"] for _, r in attempts)
    assert sorted(f["from"].rsplit("/", 1)[1] for _, r in attempts for f in r["files"]) == sorted(fmi2_set.files())
    row = request_row(system, uuid)
    assert row["status"] == "ModelRequested" and row["failure_reason"] is None
    # globex learns why: in its own folder, and on its errors topic (through the outbox).
    listing = run(client, "globex", keys["globex"], ["ls"], work)
    assert f"{uuid}.rejected.json" in listing.stdout, listing.stdout + listing.stderr
    assert run(client, "globex", keys["globex"], [f"get {uuid}.rejected.json notice.json"], work).returncode == 0
    notice = json.loads((work / "notice.json").read_text())
    assert notice["kind"] == "unauthorized" and "partner globex is not the Digital Twin partner" in notice["reason"]
    assert notice["request_status"] is None and "acme" not in json.dumps(notice)
    with system.database.transaction() as session:
        topics = [
            m.topic for m in session.scalars(select(OutboxMessage)) if "not the Digital Twin partner" in m.payload
        ]
    assert sorted(set(topics)) == ["errors", "partners/globex/errors"]
    # The request's own partner then uploads, as if nothing happened.
    assert run(client, "acme", keys["acme"], upload, work).returncode == 0
    assert wait_for(lambda: request_row(system, uuid)["status"] == "ModelReady", what="ModelReady")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_reason_of_a_refused_set_reaches_the_partner(
    system: System,
    running_intake: RunningIntake,
    client: SftpClient,
    keys: dict[str, Path],
    fmi2_set: ModelFiles,
    tmp_path: Path,
) -> None:
    add_partner(system, "acme", keys["acme"])
    request = new_request(system)
    uuid = request.test_uuid
    broken = json.loads(fmi2_set.interconnection)
    broken["FMU_signal_connections"] = [
        {"InSignalReference": "battery_cell/nope_in", "OutSignalReference": "cycler/current"},
        {"InSignalReference": "battery_cell/I", "OutSignalReference": "cycler/nope_out"},
    ]
    work = tmp_path / "work"
    files = {**fmi2_set.files(), "inter_connection.json": json.dumps(broken).encode()}
    write_files(work, files)
    upload = [f"mkdir {uuid}", *(f"put {name} {uuid}/" for name in files)]
    assert run(client, "acme", keys["acme"], upload, work).returncode == 0
    row = wait_for(lambda: (r := request_row(system, uuid))["status"] == "Failed" and r, what="Failed")
    [(_, reason)] = quarantined(running_intake.intake, uuid)
    assert len(reason["problems"]) >= 2
    assert run(client, "acme", keys["acme"], [f"get {uuid}.rejected.json notice.json"], work).returncode == 0
    notice = json.loads((work / "notice.json").read_text())
    assert notice["problems"] == reason["problems"] and notice["request_status"] == "Failed"
    for problem in reason["problems"]:  # every one of them, in the request's status reason too
        assert problem["message"] in row["failure_reason"]

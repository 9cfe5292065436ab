"""The SFTP server with the real OpenSSH client and generated keys: a valid set reaches ModelReady;
wrong keys, unknown users, passwords, shells, SCP, '..', links and oversized files are refused; a
client killed mid-upload triggers nothing and leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from fastlims.bootstrap import System
from fastlims.intake.models import IntakeUpload
from tests.integration.intake.azurite import Azurite, azure_settings
from tests.integration.intake.helpers import (
    LoopThread,
    ModelFiles,
    RunningIntake,
    SftpClient,
    add_partner,
    new_request,
    request_row,
    sftp_binary,
    ssh_keygen,
    start_intake,
    wait_for,
    write_files,
)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "keys"
    folder.mkdir()
    return {name: ssh_keygen(folder / name) for name in ("acme", "intruder")}


@pytest.fixture
def client(running_intake: RunningIntake) -> SftpClient:
    return SftpClient(sftp_binary(), running_intake.sftp_port)


def test_valid_set_uploaded_with_openssh_reaches_model_ready(
    system: System,
    running_intake: RunningIntake,
    client: SftpClient,
    keys: dict[str, Path],
    fmi2_set: ModelFiles,
    tmp_path: Path,
) -> None:
    add_partner(system, "acme", keys["acme"])
    request = new_request(system)
    local = write_files(tmp_path / "upload", fmi2_set.files())
    batch = f"mkdir {request.test_uuid}\n" + "".join(f"put {path} {request.test_uuid}/\n" for path in local.values())
    result = client.run("acme", keys["acme"], batch)
    assert result.returncode == 0, result.stderr
    row = wait_for(
        lambda: (r := request_row(system, request.test_uuid))["status"] == "ModelReady" and r, what="ModelReady"
    )
    fmus = running_intake.intake.storage.list(row["fmu_blob_path"])
    assert sorted(f.key.rsplit("/", 1)[1] for f in fmus) == sorted(fmi2_set.files())
    pool = running_intake.intake.storage.local_root / "pool" / "acme"  # type: ignore[operator]
    wait_for(lambda: not any(pool.iterdir()), what="the partner's pool folder to be cleaned")
    assert not any((pool.parent.parent / ".incoming" / "acme").iterdir())
    host_key = system.settings.data_dir / "sftp_host_ed25519_key"
    assert stat.S_IMODE(host_key.stat().st_mode) == 0o600
    sftp = running_intake.service.sftp
    assert sftp.stats.committed == 3 and sftp.stats.aborted == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_logins_without_the_partners_key_are_refused(
    system: System, running_intake: RunningIntake, client: SftpClient, keys: dict[str, Path]
) -> None:
    add_partner(system, "acme", keys["acme"])
    for user, key in (("acme", keys["intruder"]), ("nobody", keys["acme"]), ("acme", None)):
        result = client.run(user, key, "ls\n")
        assert result.returncode != 0
        assert "Permission denied (publickey)" in result.stderr, result.stderr
    # No password or keyboard-interactive login is offered at all.
    password_only = client.run("acme", None, "ls\n", "-o", "PubkeyAuthentication=no")
    assert "Permission denied (publickey)" in password_only.stderr

    async def try_password() -> str:
        try:
            await asyncssh.connect(
                "127.0.0.1",
                running_intake.sftp_port,
                username="acme",
                password="anything",
                client_keys=None,
                known_hosts=None,
                agent_path=None,
                preferred_auth="password,keyboard-interactive",
            )
        except asyncssh.PermissionDenied as exc:
            return str(exc)
        return "logged in"

    assert "logged in" not in asyncio.run(try_password())
    # A disabled partner is refused from its next login on.
    from fastlims.intake import partners

    with system.database.transaction() as session:
        partners.set_active(session=session, name="acme", active=False)
    assert "Permission denied" in client.run("acme", keys["acme"], "ls\n").stderr


@pytest.mark.parametrize("backend", ["sqlite"])
def test_no_shell_exec_scp_or_forwarding(
    system: System, running_intake: RunningIntake, keys: dict[str, Path], tmp_path: Path
) -> None:
    add_partner(system, "acme", keys["acme"])
    port = str(running_intake.sftp_port)
    common = ["-F", "/dev/null", "-i", str(keys["acme"]), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
              "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
              "-o", "LogLevel=ERROR"]  # fmt: skip
    shell = subprocess.run(
        ["ssh", *common, "-p", port, "acme@127.0.0.1", "id"], capture_output=True, text=True, timeout=30
    )
    assert shell.returncode != 0 and "uid=" not in shell.stdout
    (tmp_path / "x.fmu").write_bytes(b"x")
    scp = subprocess.run(
        ["scp", "-O", *common, "-P", port, str(tmp_path / "x.fmu"), "acme@127.0.0.1:x.fmu"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert scp.returncode != 0
    assert not (running_intake.intake.storage.local_root / "pool" / "acme" / "x.fmu").exists()  # type: ignore[operator]

    async def try_forward() -> str:
        async with asyncssh.connect(
            "127.0.0.1",
            running_intake.sftp_port,
            username="acme",
            client_keys=[str(keys["acme"])],
            known_hosts=None,
            agent_path=None,
        ) as conn:
            try:
                await conn.open_connection("127.0.0.1", 22)
            except asyncssh.ChannelOpenError as exc:
                return f"refused: {exc.reason}"
            return "forwarded"

    assert asyncio.run(try_forward()).startswith("refused")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_dot_dot_paths_and_links_are_refused(
    system: System, running_intake: RunningIntake, client: SftpClient, keys: dict[str, Path], tmp_path: Path
) -> None:
    add_partner(system, "acme", keys["acme"])
    other = keys["intruder"]
    add_partner(system, "other", other)
    root = running_intake.intake.storage.local_root
    assert root is not None
    (tmp_path / "f.fmu").write_bytes(b"payload")
    f = tmp_path / "f.fmu"
    client.run("acme", keys["acme"], f"put {f} mine.txt\n")  # creates pool/acme/ (a .txt is never processed)
    client.run("other", other, "ls\n")  # creates pool/other/
    for command in (
        f"put {f} ../escape.fmu",
        f"put {f} ../../escape.fmu",
        f"put {f} ../other/stolen.fmu",
        f"put {f} /../escape.fmu",
        "get ../other/x.fmu",
        "symlink mine.txt link.txt",
        "symlink /etc/passwd passwd",
        "ln mine.txt hard.txt",
    ):
        result = client.run("acme", keys["acme"], command + "\n")
        assert result.returncode != 0, command
    assert sorted(p.name for p in (root / "pool" / "acme").iterdir()) == ["mine.txt"]
    assert not any((root / "pool" / "other").iterdir())
    assert not (root / "escape.fmu").exists() and not (root / "pool" / "escape.fmu").exists()
    # A link placed inside the folder by other means is not followed out of it.
    os.symlink(root / "pool" / "other", root / "pool" / "acme" / "sneaky")
    for command in ("ls sneaky", f"put {f} sneaky/x.fmu", "get sneaky"):
        assert client.run("acme", keys["acme"], command + "\n").returncode != 0, command
    assert not any((root / "pool" / "other").iterdir())
    # Moving around inside the folder still works: 'cd ..' at the top stays at the top.
    ok = client.run("acme", keys["acme"], "mkdir d\ncd d\ncd ..\ncd ..\npwd\nls\n")
    assert ok.returncode == 0 and "Remote working directory: /" in ok.stdout


@pytest.mark.parametrize("backend", ["sqlite"])
def test_size_limits_are_enforced_while_writing(system: System, keys: dict[str, Path], tmp_path: Path) -> None:
    loop = LoopThread()
    running = start_intake(system, loop, intake_max_file_bytes=1_000_000)
    try:
        client = SftpClient(sftp_binary(), running.sftp_port)
        add_partner(system, "acme", keys["acme"], quota_bytes=1_500_000)
        root = running.intake.storage.local_root / "pool" / "acme"  # type: ignore[operator]
        big = tmp_path / "big.fmu"
        big.write_bytes(os.urandom(1_200_000))
        result = client.run("acme", keys["acme"], f"put {big} big.fmu\n")
        assert result.returncode != 0
        assert not (root / "big.fmu").exists()
        part = tmp_path / "part.bin"
        part.write_bytes(os.urandom(900_000))
        # .bin files are never processed, so they stay and count against the quota.
        assert client.run("acme", keys["acme"], f"put {part} one.bin\n").returncode == 0
        second = client.run("acme", keys["acme"], f"put {part} two.bin\n")
        assert second.returncode != 0  # 900 kB + 900 kB > the partner's 1.5 MB
        assert sorted(p.name for p in root.iterdir()) == ["one.bin"]
        assert running.service.sftp.stats.refused_writes == 2
        assert not any((root.parent.parent / ".incoming" / "acme").iterdir())
    finally:
        loop.run(running.service.stop())
        running.system.close()
        loop.close()


@pytest.fixture
def slow_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "battery_cell.fmu"
    path.write_bytes(os.urandom(4_000_000))
    yield path


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_client_killed_mid_upload_triggers_nothing_and_is_cleaned_up(
    system: System,
    running_intake: RunningIntake,
    client: SftpClient,
    keys: dict[str, Path],
    fmi2_set: ModelFiles,
    slow_file: Path,
    tmp_path: Path,
) -> None:
    add_partner(system, "acme", keys["acme"])
    request = new_request(system)
    u = request.test_uuid
    interconnection = write_files(tmp_path / "ic", {"inter_connection.json": fmi2_set.interconnection})
    assert (
        client.run("acme", keys["acme"], f"mkdir {u}\nput {interconnection['inter_connection.json']} {u}/\n").returncode
        == 0
    )
    handler = running_intake.intake.handler
    wait_for(lambda: handler.handled >= 1, what="the interconnection's event")
    handled_before = handler.handled

    # 800 kbit/s: the 4 MB file takes ~40 s, so it is certainly killed mid-way.
    process = subprocess.Popen(
        client.command("acme", keys["acme"], "-l", "800"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdin is not None
    process.stdin.write(f"put {slow_file} {u}/battery_cell.fmu\n")
    process.stdin.flush()
    incoming = running_intake.intake.storage.local_root / ".incoming" / "acme"  # type: ignore[operator]
    wait_for(
        lambda: any(p.stat().st_size > 64_000 for p in incoming.glob("*.part")) if incoming.exists() else False,
        what="the upload to be under way",
    )
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    sftp = running_intake.service.sftp
    wait_for(lambda: sftp.stats.aborted == 1 and sftp.stats.sessions_open == 0, what="the server to see the abort")
    running_intake.loop.run(sftp.wait_for_events())

    assert list(incoming.glob("*")) == []  # the partial file is gone
    partner_folder = running_intake.intake.storage.local_root / "pool" / "acme" / u  # type: ignore[operator]
    assert sorted(p.name for p in partner_folder.iterdir()) == ["inter_connection.json"]
    assert handler.handled == handled_before  # no event for the truncated file
    assert request_row(system, u)["status"] == "ModelRequested"
    with system.database.transaction() as session:
        paths = [row.path for row in session.query(IntakeUpload).all()]
    assert paths == [f"pool/acme/{u}/inter_connection.json"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_with_blob_storage_sftp_uploads_land_in_the_blob_store(
    system: System,
    keys: dict[str, Path],
    fmi3_set: ModelFiles,
    tmp_path: Path,
    azurite: Azurite,
    azure_container: str,
) -> None:
    loop = LoopThread()
    running = start_intake(system, loop, **azure_settings(azurite, azure_container))
    try:
        add_partner(system, "acme", keys["acme"])
        request = new_request(system)
        local = write_files(tmp_path / "upload", fmi3_set.files())
        batch = f"mkdir {request.test_uuid}\n" + "".join(f"put {p} {request.test_uuid}/\n" for p in local.values())
        result = SftpClient(sftp_binary(), running.sftp_port).run("acme", keys["acme"], batch)
        assert result.returncode == 0, result.stderr
        row = wait_for(
            lambda: (r := request_row(system, request.test_uuid))["status"] == "ModelReady" and r, what="ModelReady"
        )
        storage = running.intake.storage
        assert storage.kind == "azure"
        assert sorted(f.key.rsplit("/", 1)[1] for f in storage.list(row["fmu_blob_path"])) == sorted(local)
        spool = system.settings.data_dir / "sftp-spool" / "pool" / "acme" / request.test_uuid
        assert not spool.exists() or not any(spool.iterdir())  # uploaded, then removed from the spool
    finally:
        loop.run(running.service.stop())
        running.system.close()
        loop.close()

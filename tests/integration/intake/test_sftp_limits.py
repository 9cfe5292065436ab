"""SFTP guessing and size protections (issue 15 items 7 and 9) with the real OpenSSH client and
asyncssh: a locked partner name is refused with the right key too, an append counts against the
quota (and lands at the end), with blob storage the quota counts the stored pool, and file work
runs in worker threads, never on the shared event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from fastlims.bootstrap import System
from fastlims.intake import sftp as sftp_module
from tests.integration.intake.azurite import Azurite, azure_settings
from tests.integration.intake.helpers import (
    LoopThread,
    RunningIntake,
    SftpClient,
    add_partner,
    sftp_binary,
    ssh_keygen,
    start_intake,
    wait_for,
)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "keys"
    folder.mkdir()
    return {name: ssh_keygen(folder / name) for name in ("acme", "beta", "intruder")}


class BannerClient(asyncssh.SSHClient):
    def __init__(self) -> None:
        self.banner = ""

    def auth_banner_received(self, msg: str, lang: str) -> None:
        self.banner += msg


async def login_with_banner(port: int, user: str, key: Path) -> tuple[bool, str]:
    """(logged in, the banner the server sent) for ``user`` with ``key``."""
    client = BannerClient()
    try:
        conn, _ = await asyncssh.create_connection(
            lambda: client, "127.0.0.1", port, username=user, client_keys=[str(key)], known_hosts=None,
            agent_path=None,
        )  # fmt: skip
    except asyncssh.PermissionDenied:
        return False, client.banner
    conn.close()
    await conn.wait_closed()
    return True, client.banner


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_eleventh_login_is_refused_even_with_the_right_key(
    system: System, running_intake: RunningIntake, keys: dict[str, Path]
) -> None:
    add_partner(system, "acme", keys["acme"])
    add_partner(system, "beta", keys["beta"])
    client = SftpClient(sftp_binary(), running_intake.sftp_port)
    assert client.run("acme", keys["acme"], "ls\n").returncode == 0
    for _ in range(10):
        refused = client.run("acme", keys["intruder"], "ls\n")
        assert "Permission denied (publickey)" in refused.stderr, refused.stderr
    locked = client.run("acme", keys["acme"], "ls\n")
    assert locked.returncode != 0 and "Permission denied" in locked.stderr
    logged_in, banner = asyncio.run(login_with_banner(running_intake.sftp_port, "acme", keys["acme"]))
    assert not logged_in
    assert "Too many failed logins for this account or from this address" in banner and "15 more minutes" in banner
    # Another partner from the same address is not locked (its limit is per address, 30 by default).
    assert client.run("beta", keys["beta"], "ls\n").returncode == 0


async def append(port: int, key: Path, path: str, data: bytes) -> str | None:
    """Append ``data`` to ``path`` (FXF_APPEND, as asyncssh's 'ab' sends it); the SFTP error or None."""
    async with (
        asyncssh.connect(
            "127.0.0.1", port, username="acme", client_keys=[str(key)], known_hosts=None, agent_path=None
        ) as conn,
        conn.start_sftp_client() as client,
    ):
        try:
            async with client.open(path, "ab") as remote:
                await remote.write(data)
        except asyncssh.SFTPError as exc:
            return str(exc.reason)
    return None


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_append_counts_against_the_quota_and_lands_at_the_end(
    system: System, keys: dict[str, Path], tmp_path: Path
) -> None:
    loop = LoopThread()
    running = start_intake(system, loop)
    try:
        add_partner(system, "acme", keys["acme"], quota_bytes=1_500_000)
        first = os.urandom(900_000)
        (tmp_path / "one.bin").write_bytes(first)
        client = SftpClient(sftp_binary(), running.sftp_port)
        assert client.run("acme", keys["acme"], f"put {tmp_path / 'one.bin'} one.bin\n").returncode == 0
        stored = running.intake.storage.local_root / "pool" / "acme" / "one.bin"  # type: ignore[operator]

        refused = asyncio.run(append(running.sftp_port, keys["acme"], "one.bin", os.urandom(700_000)))
        assert refused is not None and "quota of 1500000 bytes for partner acme is used up" in refused
        assert stored.read_bytes() == first  # the refused append changed nothing

        more = os.urandom(100_000)
        assert asyncio.run(append(running.sftp_port, keys["acme"], "one.bin", more)) is None
        assert stored.read_bytes() == first + more  # appended at the end, whatever offset was sent
    finally:
        loop.run(running.service.stop())
        running.system.close()
        loop.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_with_blob_storage_the_quota_counts_the_stored_pool(
    system: System, keys: dict[str, Path], tmp_path: Path, azurite: Azurite, azure_container: str
) -> None:
    loop = LoopThread()
    running = start_intake(system, loop, **azure_settings(azurite, azure_container))
    try:
        add_partner(system, "acme", keys["acme"], quota_bytes=1_500_000)
        part = tmp_path / "part.bin"
        part.write_bytes(os.urandom(900_000))
        client = SftpClient(sftp_binary(), running.sftp_port)
        assert client.run("acme", keys["acme"], f"put {part} one.bin\n").returncode == 0
        storage = running.intake.storage
        wait_for(lambda: [f.key for f in storage.list("pool/acme/")] == ["pool/acme/one.bin"], what="one.bin stored")
        spool = system.settings.data_dir / "sftp-spool" / "pool" / "acme"
        wait_for(lambda: not (spool / "one.bin").exists(), what="the spool to be emptied")
        # The SFTP folder is empty now; the 900 kB in the blob store still count.
        second = client.run("acme", keys["acme"], f"put {part} two.bin\n")
        assert second.returncode != 0
        assert [f.key for f in storage.list("pool/acme/")] == ["pool/acme/one.bin"]
    finally:
        loop.run(running.service.stop())
        running.system.close()
        loop.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sftp_file_work_runs_off_the_event_loop(
    system: System, running_intake: RunningIntake, keys: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    where: dict[str, set[str]] = {}

    def recorded(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            where.setdefault(name, set()).add(threading.current_thread().name)
            return function(*args, **kwargs)

        return wrapper

    server_class = sftp_module._PartnerSFTPServer
    monkeypatch.setattr(sftp_module, "_write_at", recorded("write", sftp_module._write_at))
    monkeypatch.setattr(sftp_module, "_commit", recorded("commit", sftp_module._commit))
    monkeypatch.setattr(server_class, "_start_upload", recorded("open", server_class._start_upload))
    usage = sftp_module.SftpIntakeServer.refresh_usage
    monkeypatch.setattr(sftp_module.SftpIntakeServer, "refresh_usage", recorded("quota scan", usage))
    add_partner(system, "acme", keys["acme"])
    payload = tmp_path / "data.bin"
    payload.write_bytes(os.urandom(300_000))
    client = SftpClient(sftp_binary(), running_intake.sftp_port)
    assert (
        client.run("acme", keys["acme"], f"put {payload} data.bin\nget data.bin {tmp_path / 'back.bin'}\n").returncode
        == 0
    )
    assert (tmp_path / "back.bin").read_bytes() == payload.read_bytes()
    assert set(where) == {"write", "commit", "open", "quota scan"}, where
    loop_thread = running_intake.loop.thread.name
    assert all(loop_thread not in threads for threads in where.values()), where

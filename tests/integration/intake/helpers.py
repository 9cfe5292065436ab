"""Helpers for the intake tests: requests waiting for models, uploads, a running intake service."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastlims.bootstrap import System, build
from fastlims.intake.events import UploadEvent
from fastlims.intake.schemas import UploadOutcome
from fastlims.intake.service import Intake, IntakeService
from fastlims.requests import service as requests
from fastlims.requests.schemas import TestRequestCreate
from fastlims.requests.states import Status
from fastlims.users import service as users
from tests import services
from tests.catalog_helpers import applicable
from tests.conftest import Actor
from tests.services import missing

T = TypeVar("T")


@dataclass(frozen=True)
class ModelFiles:
    """A valid upload set as bytes: two co-simulation FMUs and their inter_connection.json."""

    battery_cell: bytes
    cycler: bytes
    interconnection: bytes

    def files(self) -> dict[str, bytes]:
        return {
            "battery_cell.fmu": self.battery_cell,
            "cycler.fmu": self.cycler,
            "inter_connection.json": self.interconnection,
        }


@dataclass(frozen=True)
class WaitingRequest:
    test_uuid: str
    request_number: str
    requester: Actor


_PASSWORD_HASH: list[str] = []


def _requester(system: System, username: str) -> Actor:
    """A requester and a token, without an argon2 hash per test (the login is not under test)."""
    from fastlims.users.models import Role, User
    from fastlims.users.security import hash_password

    if not _PASSWORD_HASH:
        _PASSWORD_HASH.append(hash_password("correct-horse-battery"))
    with system.database.transaction() as session:
        if users.get_by_username(session=session, username=username) is None:
            session.add(
                User(
                    username=username,
                    display_name=username.title(),
                    role=Role.requester,
                    password_hash=_PASSWORD_HASH[0],
                )
            )
            session.flush()
        return Actor(username, users.create_token(session=session, username=username))


def new_request(
    system: System,
    status: Status = Status.ModelRequested,
    username: str = "rita",
    variables: dict[str, Any] | None = None,
) -> WaitingRequest:
    """A stored request (with ``variables``: its procedure), moved to ``status`` along the lifecycle."""
    actor = _requester(system, username)
    combination = applicable(system)
    with system.database.transaction() as session:
        user = users.get_by_username(session=session, username=username)
        assert user is not None
        body = combination.body(variables=variables) if variables is not None else combination.body()
        request = requests.create(session=session, data=TestRequestCreate(**body), requester=user, zone=system.zone)
        if status in (Status.Cancelled, Status.Failed):
            requests.change_status(session=session, request=request, target=status, actor="test", reason="test")
        for step in (Status.ModelRequested, Status.ModelReady, Status.DoeComplete):
            if Status(request.status) in (status, Status.Cancelled, Status.Failed):
                break
            requests.change_status(session=session, request=request, target=step, actor="test")
        return WaitingRequest(request.test_uuid, request.request_number, actor)


def request_row(system: System, test_uuid: str) -> dict[str, Any]:
    with system.database.transaction() as session:
        request = requests.get_by_uuid(session=session, test_uuid=test_uuid)
        return {
            "status": Status(request.status).name,
            "failure_reason": request.failure_reason,
            "simulation_folder": request.simulation_folder,
            "fmu_blob_path": request.fmu_blob_path,
            "fmu_ready_at": request.fmu_ready_at,
            "dt_accepted_at": request.dt_accepted_at,
            "events": [(e.kind, e.from_value, e.to_value, e.actor, e.reason) for e in request.events],
        }


def upload(intake: Intake, key: str, data: bytes, source: str = "scan") -> UploadOutcome:
    """Store ``data`` at ``key`` and deliver its upload event, as a completed upload does."""
    intake.storage.put(key, data)
    return intake.handler.handle_sync(UploadEvent(path=key, source=source))


def upload_set(intake: Intake, prefix: str, files: dict[str, bytes]) -> list[UploadOutcome]:
    return [upload(intake, f"{prefix}{name}", data) for name, data in files.items()]


def quarantined(intake: Intake, test_uuid: str | None) -> list[tuple[str, dict[str, Any]]]:
    """(folder, reason.json) of each quarantined attempt of ``test_uuid``."""
    owner = test_uuid or "unmatched"
    found = []
    for stored in intake.storage.list(f"quarantine/{owner}"):
        if stored.key.endswith("/reason.json"):
            found.append((stored.key.rsplit("/", 1)[0], json.loads(intake.storage.get(stored.key))))
    return found


def wait_for(condition: Callable[[], T], timeout_s: float = 20.0, what: str = "condition") -> T:
    return services.wait_for(condition, timeout_s, what)


class LoopThread:
    """An asyncio loop in a thread, for services that tests drive from synchronous code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="intake-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class RunningIntake:
    system: System
    service: IntakeService
    loop: LoopThread

    @property
    def intake(self) -> Intake:
        return self.service.intake

    @property
    def sftp_port(self) -> int:
        assert self.service.sftp is not None
        return int(self.service.sftp.port)


def start_intake(system: System, loop: LoopThread, **overrides: Any) -> RunningIntake:
    """A system sharing ``system``'s database and data dir, with its intake service running."""
    from tests.services import free_port

    settings = system.settings.model_copy(update={"sftp_port": free_port(), **overrides})
    running = build(settings)
    service = next(s for s in running.services if isinstance(s, IntakeService))
    loop.run(service.start())
    return RunningIntake(running, service, loop)


def ssh_keygen(path: Path) -> Path:
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return path


def write_files(folder: Path, files: dict[str, bytes]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, data in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


def done(outcomes: list[UploadOutcome]) -> UploadOutcome:
    return outcomes[-1]


@dataclass(frozen=True)
class SftpClient:
    """The real OpenSSH ``sftp`` client, isolated from the user's ssh config, agent and known hosts."""

    binary: str
    port: int

    def command(self, user: str, key: Path | None, *extra: str) -> list[str]:
        identity = ["-i", str(key), "-o", "IdentitiesOnly=yes"] if key else []
        return [
            self.binary, "-F", "/dev/null", "-P", str(self.port), *identity,
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "IdentityAgent=none", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", *extra,
            "-b", "-", f"{user}@127.0.0.1",
        ]  # fmt: skip

    def run(self, user: str, key: Path | None, batch: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(user, key, *extra), input=batch, capture_output=True, text=True, timeout=60, check=False
        )


def sftp_binary() -> str:
    binary = shutil.which("sftp")
    if binary is None:
        missing("OpenSSH client (Debian package openssh-client)")
    assert binary is not None
    return binary


def add_partner(system: System, name: str, key: Path, quota_bytes: int | None = None) -> None:
    from fastlims.intake import partners

    with system.database.transaction() as session:
        partners.create(
            session=session, name=name, key_text=key.with_suffix(".pub").read_text(), quota_bytes=quota_bytes
        )


def add_uploader(system: System, partner: str, username: str | None = None) -> Actor:
    """Digital Twin partner ``partner`` (created without SFTP keys unless it exists) and its
    model_uploader account with a token: the partner's HTTP upload identity."""
    from fastlims.intake import partners
    from fastlims.users.models import Role, User
    from fastlims.users.security import hash_password

    if not _PASSWORD_HASH:
        _PASSWORD_HASH.append(hash_password("correct-horse-battery"))
    username = username or f"{partner}-uploader"
    with system.database.transaction() as session:
        if partners.get(session=session, name=partner) is None:
            partners.create(session=session, name=partner)
        session.add(
            User(
                username=username,
                display_name=username,
                role=Role.model_uploader,
                password_hash=_PASSWORD_HASH[0],
                partner=partner,
            )
        )
        session.flush()
        return Actor(username, users.create_token(session=session, username=username))

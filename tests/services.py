"""Real services for the test session: started once on free loopback ports, stopped by pid.

A service that cannot start fails the run under CI (``CI=true``) instead of skipping: a skipped
test is not a passing one.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str) -> None:
    """Fail under CI, skip on a developer's machine without the service."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI but is not available", pytrace=False)
    pytest.skip(f"{what} not available")


def wait_for(condition: Callable[[], T], timeout_s: float = 15.0, what: str = "condition") -> T:
    """Poll ``condition`` until it is truthy or the deadline passes (never a fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    directory: Path
    port: int
    bin_dir: Path

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://fastlims@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://fastlims@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.directory),
                "-m",
                "immediate",
                "stop",
            ],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.directory.parent, ignore_errors=True)


def start_postgres() -> PostgresServer | None:
    """initdb + pg_ctl from Debian's packages, as the postgres user (initdb refuses root)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        return None
    bin_dir = Path(candidates[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="fastlims-pg-"))
    os.chmod(root, 0o755)
    directory = root / "data"
    directory.mkdir()
    shutil.chown(directory, "postgres", "postgres")
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(directory),
            "-A",
            "trust",
            "-U",
            "fastlims",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(directory),
            "-l",
            str(directory / "server.log"),
            "-o",
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    return PostgresServer(directory=directory, port=port, bin_dir=bin_dir)

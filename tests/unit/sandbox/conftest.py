"""A hostile FMU (``hostile/hostile.c``) built against targets a test lays out: a data folder with
a secret key and a SQLite database, a TCP listener standing for the web port, a place outside the
run's scratch folder to write to."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fastlims.peers.fmus import build_fmu

HOSTILE_DIR = Path(__file__).with_name("hostile")
FORKS = 200
HOG_BYTES = 1 << 30


@dataclass
class Targets:
    data_dir: Path
    secret: Path
    database: Path
    outside: Path
    listener: socket.socket

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def connection_arrived(self) -> bool:
        self.listener.setblocking(False)
        try:
            connection, _ = self.listener.accept()
        except BlockingIOError:
            return False
        connection.close()
        return True


@pytest.fixture
def targets(tmp_path: Path) -> Iterator[Targets]:
    data = tmp_path / "fastlims-data"
    data.mkdir(mode=0o700)
    secret = data / "secret_key"
    secret.write_text("hostile-test-secret-key\n")
    database = data / "fastlims.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE users (name TEXT, password_hash TEXT)")
        db.execute("INSERT INTO users VALUES ('admin', 'argon2-hash')")
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o777)
    outside.chmod(0o777)  # writable by anyone: only the sandbox stands in the way
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield Targets(data, secret, database, outside / "written-by-the-fmu.txt", listener)
    finally:
        listener.close()


@pytest.fixture
def hostile_fmu(targets: Targets, tmp_path: Path) -> Path:
    """The hostile FMU (FMI 2.0) aimed at ``targets``, named ``Hostile``."""
    source = tmp_path / "hostile-src"
    source.mkdir()
    defines = {
        "HOSTILE_SECRET": f'"{targets.secret}"',
        "HOSTILE_DB": f'"{targets.database}"',
        "HOSTILE_OUTSIDE": f'"{targets.outside}"',
        "HOSTILE_PORT": str(targets.port),
        "HOSTILE_FORKS": str(FORKS),
        "HOSTILE_HOG_BYTES": f"{HOG_BYTES}ULL",
    }
    header = "".join(f"#define {name} {value}\n" for name, value in defines.items())
    (source / "hostile.c").write_text(header + (HOSTILE_DIR / "hostile.c").read_text())
    (source / "hostile.fmi2.xml").write_text((HOSTILE_DIR / "hostile.fmi2.xml").read_text())
    return build_fmu("hostile", "2.0", tmp_path / "fmus", name="Hostile", cache_dir=tmp_path / "cache",
                     model_dir=source)  # fmt: skip

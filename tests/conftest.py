"""Shared fixtures: a migrated, seeded database on SQLite and on PostgreSQL, the app, users."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from fastlims.bootstrap import System, build, prepare_database
from fastlims.config import Settings
from fastlims.users import service as users
from tests.services import PostgresServer, missing, start_postgres

LAB_ZONE = "Europe/Berlin"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer | None]:
    try:
        server = start_postgres()
    except Exception as exc:  # noqa: BLE001 - reported by the tests that need it
        print(f"PostgreSQL could not start: {exc}")
        server = None
    yield server
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate and seed once; every test copies the file (milliseconds instead of a migration)."""
    directory = tmp_path_factory.mktemp("sqlite-template")
    path = directory / "template.db"
    system = build(Settings(data_dir=directory, database_url=f"sqlite:///{path}", timezone=LAB_ZONE))
    prepare_database(system)
    system.close()
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresServer | None) -> str | None:
    if postgres is None:
        return None
    engine = create_engine(postgres.admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("CREATE DATABASE fastlims_template"))
    engine.dispose()
    system = build(
        Settings(
            data_dir=Path("/tmp"),
            database_url=postgres.url("fastlims_template"),
            timezone=LAB_ZONE,
            secret_key="x" * 32,
        )
    )
    prepare_database(system)
    system.close()
    return "fastlims_template"


def new_postgres_database(postgres: PostgresServer, template: str | None = None) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(postgres.admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        # FILE_COPY: ~0.3 s instead of ~0.5 s per database for a small template (fsync is off).
        suffix = f" TEMPLATE {template} STRATEGY = FILE_COPY" if template else ""
        connection.execute(text(f"CREATE DATABASE {name}{suffix}"))
    engine.dispose()
    return postgres.url(name)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path, postgres: PostgresServer | None) -> str:
    """A database with no tables, on each backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    if postgres is None:
        missing("PostgreSQL server (Debian package postgresql)")
    assert postgres is not None
    return new_postgres_database(postgres)


@pytest.fixture
def system(
    backend: str,
    tmp_path: Path,
    sqlite_template: Path,
    postgres: PostgresServer | None,
    postgres_template: str | None,
) -> Iterator[System]:
    """A migrated database with the seed catalog, on SQLite and on PostgreSQL."""
    if backend == "sqlite":
        path = tmp_path / "fastlims.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        if postgres is None:
            missing("PostgreSQL server (Debian package postgresql)")
        assert postgres is not None
        url = new_postgres_database(postgres, postgres_template)
    built = build(Settings(data_dir=tmp_path, database_url=url, timezone=LAB_ZONE))
    yield built
    built.close()


@dataclass
class Actor:
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def add_user(system: System, username: str, role: str) -> Actor:
    with system.database.transaction() as session:
        users.create(session=session, username=username, role=role, password=PASSWORD, display_name=username.title())
        token = users.create_token(session=session, username=username)
    return Actor(username, token)


@pytest.fixture
def client(system: System) -> Iterator[TestClient]:
    from fastlims.web.app import create_app

    with TestClient(create_app(system)) as test_client:
        yield test_client


@pytest.fixture
def requester(system: System) -> Actor:
    return add_user(system, "rita", "requester")


@pytest.fixture
def other_requester(system: System) -> Actor:
    return add_user(system, "otto", "requester")


@pytest.fixture
def manager(system: System) -> Actor:
    return add_user(system, "mia", "lab_manager")


@pytest.fixture
def admin(system: System) -> Actor:
    return add_user(system, "ada", "admin")

"""Composition root: the only place that turns Settings into running adapters.

Tests call :func:`build` with their own Settings (a temporary SQLite file, or the PostgreSQL
server the test script starts), exactly as ``fastlims up`` does.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from fastlims.catalog.models import UUT
from fastlims.catalog.transfer import ImportReport, load_seed
from fastlims.config import Settings
from fastlims.db import migrate
from fastlims.db.engine import Database

log = logging.getLogger(__name__)


@dataclass
class System:
    """Everything a request handler or command needs, built once per process."""

    settings: Settings
    database: Database
    zone: ZoneInfo
    secret_key: str
    # BackgroundService instances (see fastlims.runtime), started in this order by `fastlims up`.
    services: list[Any] = field(default_factory=list)

    def close(self) -> None:
        self.database.dispose()


def _secret_key(settings: Settings) -> str:
    """Use FASTLIMS_SECRET_KEY, or a random key kept (0600) in the data dir so sessions survive
    restarts without a secret ever being written to the repository or the logs."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    temporary = path.with_suffix(".tmp")
    temporary.touch(mode=0o600)
    temporary.write_text(key)
    temporary.replace(path)
    return key


def build(settings: Settings | None = None) -> System:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    return System(settings=settings, database=database, zone=settings.zone, secret_key=_secret_key(settings))


def prepare_database(system: System, *, seed_catalog: bool = True) -> ImportReport | None:
    """Run migrations to head; on an empty catalog load the shipped seed catalog."""
    migrate.upgrade(system.database.url)
    if not seed_catalog:
        return None
    with system.database.transaction() as session:
        if session.scalar(select(UUT.id).limit(1)) is not None:
            return None
        report = load_seed(session)
    log.info("seed catalog loaded", extra={"summary": report.summary()})
    return report


def data_path(settings: Settings, *parts: str) -> Path:
    return settings.data_dir.joinpath(*parts)

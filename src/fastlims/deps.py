"""Request dependencies every capability's routes use: the running system's shared parts and a
database session per request.

They sit below the capabilities (a capability's ``routes.py`` imports them) and above ``db`` and
``config``; the app that assembles the routers, :mod:`fastlims.web`, sits above the capabilities.
Who is asking is the users capability's (:mod:`fastlims.users.deps`); a capability's own parts
are its own dependency (``IntakeDep`` in :mod:`fastlims.intake.deps`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Protocol
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from fastlims.config import Settings
from fastlims.db.engine import Database


class Parts(Protocol):
    """What any route may read of the running system (``fastlims.system.System`` has these)."""

    settings: Settings
    database: Database
    zone: ZoneInfo


def get_system(request: Request) -> Parts:
    """The system the app was created with (``create_app(system)``)."""
    system: Parts = request.app.state.system
    return system


SystemDep = Annotated[Parts, Depends(get_system)]


def db_session(system: SystemDep) -> Iterator[Session]:
    with system.database.transaction() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session)]

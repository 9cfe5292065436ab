"""Named lock rows: one writer at a time for whatever a name stands for, on SQLite and PostgreSQL
alike.

``hold(session, name)`` first thing in a transaction makes every other transaction that holds
the same name wait until this one ends: it updates the name's row (a row lock on PostgreSQL, the
database write lock on SQLite). The pipeline books benches under ``bench-bookings``; the runs
capability records the end of a request's runs under ``run-record:<test_UUID>``.
"""

from __future__ import annotations

from sqlalchemy import Integer, String, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from fastlims.db.base import Base


class Lock(Base):
    """One named lock; ``Version`` counts the transactions that held it."""

    __tablename__ = "PipelineLocks"  # created with the pipeline's tables (migration 0004)

    name: Mapped[str] = mapped_column("Name", String(64), primary_key=True)
    version: Mapped[int] = mapped_column("Version", Integer, default=0)


def hold(session: Session, name: str) -> None:
    """Serialise the rest of this transaction with every other holder of ``name`` (created on first use)."""
    result = session.execute(update(Lock).where(Lock.name == name).values(version=Lock.version + 1))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        try:
            with session.begin_nested():
                session.add(Lock(name=name, version=1))
        except IntegrityError:  # created by another transaction meanwhile: take it
            session.execute(update(Lock).where(Lock.name == name).values(version=Lock.version + 1))

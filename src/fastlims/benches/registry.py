"""The bench registry: which benches exist, their kind, capabilities and working calendar.

Kept small on purpose (the bench issues build on it): one table, ``Benches``, and the functions
the scheduler needs. A virtual bench runs around the clock unless its calendar says otherwise; a
physical bench without a calendar works the lab's office hours (Monday–Friday 08:00–18:00 in
``FASTLIMS_TIMEZONE``). When the registry lists no active virtual bench, the pipeline schedules
on ``virtual-1`` … ``virtual-N`` (``FASTLIMS_PIPELINE_VIRTUAL_BENCHES``), so a fresh installation
can plan virtual tests at once. The pipeline gets the benches a schedule may use from
:func:`schedulable`, handed to it by the composition root.

Calendar JSON (all keys optional)::

    {"timezone": "Europe/Berlin",
     "weekly_hours": [[["08:00", "18:00"]], [["08:00", "18:00"]], [], [], [], [], []],   # Monday first
     "closed_dates": ["2026-12-24"],
     "maintenance": [["2026-12-01T06:00:00Z", "2026-12-01T12:00:00Z"]]}
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fastlims.db.base import Base, UTCDateTime
from fastlims.messaging.topics import check_id
from fastlims.timeutil import utcnow

if TYPE_CHECKING:  # the solvers (OR-Tools) load only when a schedule is made, not with the tables
    from fastlims.scheduling import Bench, Calendar


class Kind(enum.StrEnum):
    virtual = "virtual"
    physical = "physical"


class BenchRecord(Base):
    """One test bench. ``Name`` is its id everywhere (MQTT topics, queues, schedules)."""

    __tablename__ = "Benches"

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    name: Mapped[str] = mapped_column("Name", String(100), unique=True)
    kind: Mapped[str] = mapped_column("Kind", String(16))
    capabilities_json: Mapped[str] = mapped_column("CapabilitiesJson", Text, default="[]")
    calendar_json: Mapped[str | None] = mapped_column("CalendarJson", Text, nullable=True)
    is_active: Mapped[bool] = mapped_column("IsActive", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("UpdatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(json.loads(self.capabilities_json or "[]"))


class BenchError(ValueError):
    """A bench entry is invalid; says which field and why."""


def _time(text: str, where: str) -> time:
    try:
        return time.fromisoformat(text)
    except (TypeError, ValueError):
        raise BenchError(f"{where}: {text!r} is not a time like '08:00'") from None


def _aware(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise BenchError(f"{where}: {text!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise BenchError(f"{where}: {text!r} needs a time zone (e.g. a trailing Z)")
    return moment


def calendar_from_json(document: Mapping[str, Any] | None, *, kind: str, zone: str) -> Calendar:
    """A scheduling ``Calendar`` from the registry's JSON; the kind's default when absent."""
    from fastlims.scheduling import Calendar

    if not document:
        return Calendar.around_the_clock() if kind == Kind.virtual else Calendar.office_hours(zone)
    timezone = str(document.get("timezone") or zone)
    try:
        if "weekly_hours" in document:
            days = document["weekly_hours"]
            if not isinstance(days, list) or len(days) != 7:
                raise BenchError("calendar.weekly_hours: give 7 weekdays, Monday first")
            weekly = tuple(
                tuple((_time(s, f"weekly_hours[{d}]"), _time(e, f"weekly_hours[{d}]")) for s, e in (spans or []))
                for d, spans in enumerate(days)
            )
        elif kind == Kind.virtual:
            weekly = Calendar().weekly_hours
        else:
            weekly = Calendar.office_hours(timezone).weekly_hours
        closed = frozenset(date.fromisoformat(str(d)) for d in document.get("closed_dates") or [])
        maintenance = tuple(
            (_aware(s, "maintenance"), _aware(e, "maintenance")) for s, e in document.get("maintenance") or []
        )
        return Calendar(timezone=timezone, weekly_hours=weekly, closed_dates=closed, maintenance=maintenance)
    except BenchError:
        raise
    except (TypeError, ValueError) as exc:
        raise BenchError(f"calendar: {exc}") from None


def add(
    *,
    session: Session,
    name: str,
    kind: str,
    capabilities: Iterable[str] = (),
    calendar: Mapping[str, Any] | None = None,
    zone: str = "UTC",
) -> BenchRecord:
    """Register a bench; ``BenchError`` for a bad name, kind, calendar or a name in use."""
    try:
        check_id("bench", name)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    if kind not in (Kind.virtual, Kind.physical):
        raise BenchError(f"bench {name}: kind must be 'virtual' or 'physical', not {kind!r}")
    calendar_from_json(calendar, kind=kind, zone=zone)  # refuse a bad calendar now, not at scheduling
    if session.scalar(select(BenchRecord.id).where(BenchRecord.name == name)) is not None:
        raise BenchError(f"bench {name!r} already exists")
    record = BenchRecord(
        name=name,
        kind=str(kind),
        capabilities_json=json.dumps(sorted(set(capabilities))),
        calendar_json=json.dumps(dict(calendar)) if calendar else None,
    )
    session.add(record)
    session.flush()
    return record


def get_all(*, session: Session, active_only: bool = True) -> list[BenchRecord]:
    query = select(BenchRecord).order_by(BenchRecord.name)
    if active_only:
        query = query.where(BenchRecord.is_active.is_(True))
    return list(session.scalars(query))


def default_virtual_names(count: int) -> list[str]:
    return [f"virtual-{index}" for index in range(1, count + 1)]


def scheduling_benches(records: Sequence[BenchRecord], *, default_virtual: int, zone: str) -> list[Bench]:
    """The benches a schedule may use: the registry's active ones, plus the default virtual
    benches when the registry has no virtual bench."""
    from fastlims.scheduling import Bench

    benches = [
        Bench(
            bench_id=r.name,
            kind="virtual" if r.kind == Kind.virtual else "physical",
            capabilities=r.capabilities,
            calendar=calendar_from_json(
                json.loads(r.calendar_json) if r.calendar_json else None, kind=r.kind, zone=zone
            ),
            name=r.name,
        )
        for r in records
        if r.is_active
    ]
    if not any(b.kind == "virtual" for b in benches):
        benches += [Bench(bench_id=n, kind="virtual", name=n) for n in default_virtual_names(default_virtual)]
    return benches


def schedulable(session: Session, *, default_virtual: int, zone: str) -> list[Bench]:
    """:func:`scheduling_benches` of the registry as ``session`` sees it (what the pipeline's
    schedule step is given as its ``BenchLookup``)."""
    return scheduling_benches(get_all(session=session), default_virtual=default_virtual, zone=zone)

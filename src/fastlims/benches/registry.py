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

import dataclasses
import enum
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Float, Integer, String, Text, false, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fastlims.db.base import Base, UTCDateTime
from fastlims.messaging.topics import check_id
from fastlims.timeutil import utcnow

if TYPE_CHECKING:  # the solvers (OR-Tools) load only when a schedule is made, not with the tables
    from fastlims.scheduling import Bench, BenchRatings, Calendar


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
    max_current_A: Mapped[float | None] = mapped_column("MaxCurrentA", Float, nullable=True)
    min_voltage_V: Mapped[float | None] = mapped_column("MinVoltageV", Float, nullable=True)
    max_voltage_V: Mapped[float | None] = mapped_column("MaxVoltageV", Float, nullable=True)
    channels: Mapped[int] = mapped_column("Channels", Integer, default=1, server_default="1")
    temperature_chamber: Mapped[bool] = mapped_column(
        "TemperatureChamber", Boolean, default=False, server_default=false()
    )
    # Test seconds the bench runs per wall-clock second: 1 for a real cycler; an emulated bench
    # (``fastlims bench emulate --speed F``) runs F times faster, and is booked for that long.
    time_scale: Mapped[float] = mapped_column("TimeScale", Float, default=1.0, server_default="1")
    is_active: Mapped[bool] = mapped_column("IsActive", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("UpdatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(json.loads(self.capabilities_json or "[]"))

    @property
    def calendar(self) -> dict[str, Any] | None:
        return json.loads(self.calendar_json) if self.calendar_json else None


class BenchError(ValueError):
    """A bench entry is invalid; says which field and why."""


class BenchNotFound(BenchError):
    """No bench of that name."""


@dataclass(frozen=True)
class Ratings:
    """What a bench can run (``None``: no limit). The scheduler books a run only on a bench whose
    ratings cover its procedure's current, safety voltage window and temperature set-points."""

    max_current_A: float | None = None
    min_voltage_V: float | None = None
    max_voltage_V: float | None = None
    channels: int = 1
    temperature_chamber: bool = False


#: Fields of :class:`Ratings` that :func:`update` may change, with their CLI/API names.
RATING_FIELDS = ("max_current_A", "min_voltage_V", "max_voltage_V", "channels", "temperature_chamber")


def check_ratings(name: str, kind: str, ratings: Ratings) -> Ratings:
    """``ratings`` when they make sense for a bench of ``kind``; ``BenchError`` naming each problem."""
    problems = []
    for field_name in ("max_current_A", "min_voltage_V", "max_voltage_V"):
        value = getattr(ratings, field_name)
        if value is not None and (not math.isfinite(value) or value < 0):
            problems.append(f"{field_name} must be a finite number >= 0, not {value!r}")
    if ratings.max_current_A is not None and ratings.max_current_A == 0:
        problems.append("max_current_A must be above 0 A")
    low, high = ratings.min_voltage_V, ratings.max_voltage_V
    if low is not None and high is not None and low >= high:
        problems.append(f"min_voltage_V {low:g} V must be below max_voltage_V {high:g} V")
    if not 1 <= ratings.channels <= 1024:
        problems.append(f"channels must be 1..1024, not {ratings.channels!r}")
    if kind == Kind.physical:
        missing = [f for f in ("max_current_A", "max_voltage_V") if getattr(ratings, f) is None]
        if missing:
            problems.append(f"a physical bench needs {' and '.join(missing)} (--max-current, --max-voltage)")
    if problems:
        raise BenchError(f"bench {name}: " + "; ".join(problems))
    if kind == Kind.physical and ratings.min_voltage_V is None:
        return dataclasses.replace(ratings, min_voltage_V=0.0)
    return ratings


MAX_TIME_SCALE = 1000.0  # the bench emulator's fastest --speed


def check_time_scale(name: str, time_scale: float) -> float:
    """A bench's time scale, 1 (real time) to :data:`MAX_TIME_SCALE`; ``BenchError`` otherwise."""
    if not (math.isfinite(time_scale) and 1.0 <= time_scale <= MAX_TIME_SCALE):
        raise BenchError(
            f"bench {name}: time_scale must be 1 (a real bench) to {MAX_TIME_SCALE:g} (an emulator's --speed),"
            f" not {time_scale!r}"
        )
    return float(time_scale)


def ratings_of(record: BenchRecord) -> Ratings:
    return Ratings(
        max_current_A=record.max_current_A,
        min_voltage_V=record.min_voltage_V,
        max_voltage_V=record.max_voltage_V,
        channels=record.channels or 1,
        temperature_chamber=bool(record.temperature_chamber),
    )


def _apply(record: BenchRecord, ratings: Ratings) -> None:
    for field_name in RATING_FIELDS:
        setattr(record, field_name, getattr(ratings, field_name))


def _capabilities_json(name: str, capabilities: Iterable[str]) -> str:
    names = sorted({str(c).strip() for c in capabilities})
    bad = [c for c in names if not c or len(c) > 64 or not c.replace("-", "").replace("_", "").isalnum()]
    if bad:
        raise BenchError(f"bench {name}: capabilities are words like 'cell' or 'thermal', not {bad}")
    return json.dumps(names)


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
    ratings: Ratings | None = None,
    time_scale: float = 1.0,
) -> BenchRecord:
    """Register a bench; ``BenchError`` for a bad name, kind, calendar, ratings or a name in use.
    A physical bench needs its maximum current and voltage (a run it cannot drive safely must
    never be booked on it); a virtual bench without ratings takes any run."""
    try:
        check_id("bench", name)
    except ValueError as exc:
        raise BenchError(str(exc)) from None
    if kind not in (Kind.virtual, Kind.physical):
        raise BenchError(f"bench {name}: kind must be 'virtual' or 'physical', not {kind!r}")
    calendar_from_json(calendar, kind=kind, zone=zone)  # refuse a bad calendar now, not at scheduling
    if session.scalar(select(BenchRecord.id).where(BenchRecord.name == name)) is not None:
        raise BenchError(f"bench {name!r} already exists")
    rated = check_ratings(name, str(kind), ratings or Ratings())
    record = BenchRecord(
        name=name,
        kind=str(kind),
        capabilities_json=_capabilities_json(name, capabilities),
        calendar_json=json.dumps(dict(calendar)) if calendar else None,
        time_scale=check_time_scale(name, time_scale),
    )
    _apply(record, rated)
    session.add(record)
    session.flush()
    return record


def get(*, session: Session, name: str) -> BenchRecord:
    record = session.scalar(select(BenchRecord).where(BenchRecord.name == name))
    if record is None:
        known = ", ".join(r.name for r in get_all(session=session, active_only=False)) or "none"
        raise BenchNotFound(f"no bench {name!r} (benches: {known})")
    return record


def update(
    *,
    session: Session,
    name: str,
    changes: Mapping[str, Any],
    capabilities: Iterable[str] | None = None,
    calendar: Mapping[str, Any] | None = None,
    zone: str = "UTC",
    time_scale: float | None = None,
) -> BenchRecord:
    """Change a bench's ratings (``changes``: :data:`RATING_FIELDS` to new values), capabilities
    or calendar; the result is checked as a whole, so nothing half-valid is stored. Runs booked
    already keep their bookings; new schedules use the new values."""
    record = get(session=session, name=name)
    unknown = sorted(set(changes) - set(RATING_FIELDS))
    if unknown:
        raise BenchError(f"bench {name}: cannot set {unknown} (settable: {', '.join(RATING_FIELDS)})")
    rated = check_ratings(name, record.kind, dataclasses.replace(ratings_of(record), **dict(changes)))
    if calendar is not None:
        calendar_from_json(calendar, kind=record.kind, zone=zone)
        record.calendar_json = json.dumps(dict(calendar)) if calendar else None
    if capabilities is not None:
        record.capabilities_json = _capabilities_json(name, capabilities)
    if time_scale is not None:
        record.time_scale = check_time_scale(name, time_scale)
    _apply(record, rated)
    session.flush()
    return record


def set_active(*, session: Session, name: str, active: bool) -> BenchRecord:
    """Disable (or enable again) a bench: a disabled bench takes no new bookings; its booked runs
    stay booked (cancel or reschedule those requests by hand)."""
    record = get(session=session, name=name)
    record.is_active = active
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
            ratings=scheduling_ratings(ratings_of(r), virtual=r.kind == Kind.virtual),
            time_scale=r.time_scale or 1.0,
        )
        for r in records
        if r.is_active
    ]
    if not any(b.kind == "virtual" for b in benches):
        unrated = scheduling_ratings(Ratings(), virtual=True)
        benches += [
            Bench(bench_id=n, kind="virtual", name=n, ratings=unrated) for n in default_virtual_names(default_virtual)
        ]
    return benches


def scheduling_ratings(ratings: Ratings, *, virtual: bool) -> BenchRatings:
    """A virtual bench sets the ambient temperature through the FMU set's ambient input (the
    intake checks the set declares it when the procedure needs it), so it counts as a chamber."""
    from fastlims.scheduling import BenchRatings

    fields = dataclasses.asdict(ratings)
    if virtual:
        fields["temperature_chamber"] = True
    return BenchRatings(**fields)


def schedulable(session: Session, *, default_virtual: int, zone: str) -> list[Bench]:
    """:func:`scheduling_benches` of the registry as ``session`` sees it (what the pipeline's
    schedule step is given as its ``BenchLookup``)."""
    return scheduling_benches(get_all(session=session), default_virtual=default_virtual, zone=zone)

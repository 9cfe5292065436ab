"""The schedule model: plain, immutable data in and out of the solvers.

Time inside the model is integer minutes relative to ``Problem.origin`` (a timezone-aware UTC
datetime, minute 0). Only calendars speak wall-clock time, because working hours are a local
matter; they are turned into minutes by :mod:`fastlims.scheduling.timeline`. Convert at the
edges with :func:`minutes_from` and :func:`datetime_at`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

BenchKind = Literal["virtual", "physical"]
ScheduleStatus = Literal["optimal", "feasible"]

_MIDNIGHT = time(0, 0)

WorkingHours = tuple[tuple[time, time], ...]
"""Open spans of one weekday in local time; an end of 00:00 means midnight at the end of the day."""


def minutes_from(origin: datetime, moment: datetime) -> int:
    """Whole minutes from ``origin`` to ``moment`` (floored), both timezone-aware."""
    if moment.tzinfo is None or origin.tzinfo is None:
        raise ValueError("minutes_from needs timezone-aware datetimes; attach a tzinfo first")
    return int((moment - origin).total_seconds() // 60)


def datetime_at(origin: datetime, minute: int) -> datetime:
    """The UTC datetime ``minute`` minutes after ``origin``."""
    return (origin + timedelta(minutes=minute)).astimezone(UTC)


@dataclass(frozen=True)
class Calendar:
    """When a bench may work.

    ``weekly_hours[d]`` lists the open spans of weekday ``d`` (0 = Monday) in the lab's local
    time zone ``timezone`` (an IANA name, so daylight-saving changes are followed);
    ``closed_dates`` are local dates with no work at all (holidays); ``maintenance`` windows
    are timezone-aware ``(start, end)`` pairs during which the bench is out of service.
    Virtual benches run around the clock: for them only the maintenance windows count.
    A paused physical run (``Run.may_pause``) may wait over closed hours and closed dates but
    never over a maintenance window, since maintenance needs the bench empty.
    """

    timezone: str = "UTC"
    weekly_hours: tuple[WorkingHours, ...] = (((_MIDNIGHT, _MIDNIGHT),),) * 7
    closed_dates: frozenset[date] = frozenset()
    maintenance: tuple[tuple[datetime, datetime], ...] = ()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"calendar time zone {self.timezone!r} is not an IANA name") from exc
        if len(self.weekly_hours) != 7:
            raise ValueError(f"weekly_hours needs 7 weekdays (Monday first), got {len(self.weekly_hours)}")
        for day, spans in enumerate(self.weekly_hours):
            for start, end in spans:
                if start.tzinfo is not None or end.tzinfo is not None:
                    raise ValueError("working hours are local wall-clock times: give naive times")
                if end != _MIDNIGHT and end <= start:
                    raise ValueError(
                        f"weekday {day}: working span {start}-{end} ends before it starts; "
                        "split spans that cross midnight over two days"
                    )
        for start_dt, end_dt in self.maintenance:
            if start_dt.tzinfo is None or end_dt.tzinfo is None:
                raise ValueError("maintenance windows need timezone-aware datetimes")
            if end_dt <= start_dt:
                raise ValueError(f"maintenance window {start_dt}..{end_dt} is empty")

    @classmethod
    def around_the_clock(cls, maintenance: Iterable[tuple[datetime, datetime]] = ()) -> Calendar:
        """Open every minute except the given maintenance windows."""
        return cls(maintenance=tuple(maintenance))

    @classmethod
    def office_hours(
        cls,
        timezone: str,
        start: time = time(8, 0),
        end: time = time(18, 0),
        weekdays: Iterable[int] = (0, 1, 2, 3, 4),
        closed_dates: Iterable[date] = (),
        maintenance: Iterable[tuple[datetime, datetime]] = (),
    ) -> Calendar:
        """The same working span on the given weekdays, closed on the others."""
        days = set(weekdays)
        hours = tuple(((start, end),) if d in days else () for d in range(7))
        return cls(
            timezone=timezone,
            weekly_hours=hours,
            closed_dates=frozenset(closed_dates),
            maintenance=tuple(maintenance),
        )


#: UUT formats a bench may list among its capabilities; one that lists none takes every format.
UUT_FORMATS = frozenset({"cell", "module", "pack"})


@dataclass(frozen=True)
class RunNeeds:
    """What a run's procedure asks of the bench that executes it (all optional: a run with no
    procedure facts needs nothing). ``current_A`` is the largest current magnitude the procedure
    commands; the voltage window is the run's safety window, which the bench must measure and
    hold; ``temperature_chamber`` when the procedure sets the ambient temperature."""

    uut_format: str | None = None
    current_A: float = 0.0
    min_voltage_V: float | None = None
    max_voltage_V: float | None = None
    temperature_chamber: bool = False


@dataclass(frozen=True)
class BenchRatings:
    """What a bench can do (``None``: no limit, as for a virtual bench). ``channels`` is shown
    and reported; the scheduler books a bench as one resource."""

    max_current_A: float | None = None
    min_voltage_V: float | None = None
    max_voltage_V: float | None = None
    channels: int = 1
    temperature_chamber: bool = False

    def shortfalls(self, needs: RunNeeds, capabilities: frozenset[str] = frozenset()) -> list[str]:
        """Each way the bench falls short of ``needs``, said for a lab manager (empty: it fits)."""
        found = []
        formats = capabilities & UUT_FORMATS
        if needs.uut_format and formats and needs.uut_format not in formats:
            found.append(f"takes {'/'.join(sorted(formats))}, not a {needs.uut_format}")
        if self.max_current_A is not None and needs.current_A > self.max_current_A + 1e-9:
            found.append(f"max current {self.max_current_A:g} A < {needs.current_A:g} A")
        high, low = needs.max_voltage_V, needs.min_voltage_V
        if self.max_voltage_V is not None and high is not None and high > self.max_voltage_V + 1e-9:
            found.append(f"max voltage {self.max_voltage_V:g} V < {high:g} V")
        if self.min_voltage_V is not None and low is not None and low < self.min_voltage_V - 1e-9:
            found.append(f"min voltage {self.min_voltage_V:g} V > {low:g} V")
        if needs.temperature_chamber and not self.temperature_chamber:
            found.append("no temperature chamber")
        return found


@dataclass(frozen=True)
class Bench:
    """One entry of the bench registry.

    A run fits a bench when the kinds match, the bench has every capability the run needs and
    its ratings cover the run's needs (:meth:`BenchRatings.shortfalls`).
    """

    bench_id: str
    kind: BenchKind
    capabilities: frozenset[str] = frozenset()
    calendar: Calendar = field(default_factory=Calendar)
    name: str = ""
    ratings: BenchRatings = field(default_factory=BenchRatings)
    # Test seconds per wall-clock second: 1 for a real cycler, F for an emulator at --speed F.
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("virtual", "physical"):
            raise ValueError(f"bench {self.bench_id}: kind must be 'virtual' or 'physical', not {self.kind!r}")
        if not self.time_scale >= 1.0:
            raise ValueError(f"bench {self.bench_id}: time_scale must be at least 1, not {self.time_scale!r}")

    @property
    def display_name(self) -> str:
        """The name shown to people and returned to the Digital Twin (the bench id if unnamed)."""
        return self.name or self.bench_id


@dataclass(frozen=True)
class Run:
    """One test run to place on a bench. All times are minutes from ``Problem.origin``.

    The bench is occupied for ``setup + duration + teardown`` minutes from the assignment's
    start. ``earliest_start`` is the preferred date: the run never starts before it, and every
    minute it starts later costs ``priority`` (times ``Problem.lateness_weight``). ``deadline``
    is a hard latest end. A physical run must fit between closed hours unless ``may_pause``,
    in which case it stops over closed hours and resumes, keeping the bench meanwhile.
    """

    run_id: str
    request_id: str
    duration: int
    bench_kind: BenchKind
    earliest_start: int = 0
    setup: int = 0
    teardown: int = 0
    capabilities: frozenset[str] = frozenset()
    priority: int = 1
    deadline: int | None = None
    may_pause: bool = False
    needs: RunNeeds = field(default_factory=RunNeeds)

    def __post_init__(self) -> None:
        if self.duration <= 0:
            raise ValueError(f"run {self.run_id}: duration must be positive minutes, got {self.duration}")
        if self.setup < 0 or self.teardown < 0:
            raise ValueError(f"run {self.run_id}: setup and teardown must not be negative")
        if self.priority < 0:
            raise ValueError(f"run {self.run_id}: priority must not be negative")
        if self.bench_kind not in ("virtual", "physical"):
            raise ValueError(f"run {self.run_id}: bench_kind must be 'virtual' or 'physical'")

    @property
    def processing(self) -> int:
        """Minutes of bench work: setup, test and teardown."""
        return self.setup + self.duration + self.teardown


@dataclass(frozen=True)
class FrozenAssignment:
    """A run already started or fixed by hand: a re-solve never moves it.

    The run may be listed in ``Problem.runs`` (then its lateness counts) or not (then it only
    blocks its bench, e.g. a run of an earlier request still going).
    """

    run_id: str
    bench_id: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"frozen run {self.run_id}: end must be after start")


@dataclass(frozen=True)
class Problem:
    """Everything a solver needs.

    Objective (minimised): ``makespan_weight * makespan + lateness_weight * sum(priority *
    (start - earliest_start))`` where makespan is the latest end of any run, frozen ones
    included, in minutes from ``origin``. ``makespan_weight`` defaults to the number of runs
    so that finishing everything one minute earlier weighs as much as starting every run one
    minute earlier. No run is placed before ``origin`` (minute 0).
    """

    origin: datetime
    runs: tuple[Run, ...]
    benches: tuple[Bench, ...]
    frozen: tuple[FrozenAssignment, ...] = ()
    makespan_weight: int | None = None
    lateness_weight: int = 1

    def __post_init__(self) -> None:
        if self.origin.tzinfo is None:
            raise ValueError("Problem.origin must be timezone-aware (UTC)")
        if self.origin.second or self.origin.microsecond:
            raise ValueError("Problem.origin must fall on a whole minute")
        for label, ids in (
            ("run", [r.run_id for r in self.runs]),
            ("bench", [b.bench_id for b in self.benches]),
            ("frozen run", [f.run_id for f in self.frozen]),
        ):
            seen: set[str] = set()
            for item in ids:
                if item in seen:
                    raise ValueError(f"{label} id {item!r} appears twice")
                seen.add(item)
        bench_ids = {b.bench_id for b in self.benches}
        for f in self.frozen:
            if f.bench_id not in bench_ids:
                raise ValueError(f"frozen run {f.run_id} is on unknown bench {f.bench_id!r}")
        if self.makespan_weight is not None and self.makespan_weight < 0:
            raise ValueError("makespan_weight must not be negative")
        if self.lateness_weight < 0:
            raise ValueError("lateness_weight must not be negative")

    @property
    def effective_makespan_weight(self) -> int:
        """The makespan weight in force (the number of runs unless set)."""
        return len(self.runs) if self.makespan_weight is None else self.makespan_weight

    def run(self, run_id: str) -> Run:
        """The run with this id (KeyError if absent)."""
        for r in self.runs:
            if r.run_id == run_id:
                return r
        raise KeyError(run_id)

    def bench(self, bench_id: str) -> Bench:
        """The bench with this id (KeyError if absent)."""
        for b in self.benches:
            if b.bench_id == bench_id:
                return b
        raise KeyError(bench_id)

    def at(self, minute: int) -> datetime:
        """The UTC datetime of a model minute."""
        return datetime_at(self.origin, minute)


@dataclass(frozen=True)
class Assignment:
    """Where and when one run goes: the bench is occupied over ``[start, end)`` (minutes),
    setup and teardown included; the test itself starts at ``start + setup``."""

    run_id: str
    bench_id: str
    start: int
    end: int
    frozen: bool = False


@dataclass(frozen=True)
class Schedule:
    """A solver's answer.

    ``objective`` is the problem's objective of ``assignments``; ``best_bound`` a proven lower
    bound on the optimum; ``gap`` is ``(objective - best_bound) / objective`` (0 when proven
    optimal). ``time_to_first_feasible_s`` counts from the call to ``solve``. ``stats`` holds
    extra figures (the bound's parts, the greedy objective, ...), for reports only.
    """

    origin: datetime
    assignments: tuple[Assignment, ...]
    objective: int
    best_bound: int
    gap: float
    solver: str
    status: ScheduleStatus
    time_to_first_feasible_s: float
    time_used_s: float
    time_limit_s: float = 0.0
    makespan: int = 0
    weighted_lateness: int = 0
    stats: Mapping[str, float] = field(default_factory=dict, compare=False)

    def assignment(self, run_id: str) -> Assignment:
        """The assignment of a run (KeyError if absent)."""
        for a in self.assignments:
            if a.run_id == run_id:
                return a
        raise KeyError(run_id)

    def by_run(self) -> dict[str, Assignment]:
        """Assignments keyed by run id."""
        return {a.run_id: a for a in self.assignments}


class InfeasibleError(ValueError):
    """No schedule can satisfy the problem. ``reasons`` name each run and the constraint."""

    def __init__(self, reasons: Iterable[str]) -> None:
        self.reasons: tuple[str, ...] = tuple(reasons)
        super().__init__("no feasible schedule: " + "; ".join(self.reasons))


class NoScheduleFoundError(RuntimeError):
    """The solver ran out of time before finding any schedule, without proving there is none."""


class SolverUnavailableError(RuntimeError):
    """The requested solver is not installed or not licensed here."""


def objective_parts(problem: Problem, assignments: Iterable[Assignment]) -> tuple[int, int, int]:
    """``(objective, makespan, weighted_lateness)`` of a set of assignments.

    Frozen assignments that are not listed as assignments still count towards the makespan.
    """
    runs = {r.run_id: r for r in problem.runs}
    makespan = 0
    lateness = 0
    seen: set[str] = set()
    for a in assignments:
        seen.add(a.run_id)
        makespan = max(makespan, a.end)
        run = runs.get(a.run_id)
        if run is not None:
            lateness += run.priority * max(0, a.start - run.earliest_start)
    for f in problem.frozen:
        if f.run_id not in seen:
            makespan = max(makespan, f.end)
    weighted = problem.lateness_weight * lateness
    return problem.effective_makespan_weight * makespan + weighted, makespan, weighted

"""Pure planning for the pipeline's DoE and schedule steps: FMU parameters for the DoE, the
designed runs as a document, and the scheduling problem of one request beside the benches'
existing bookings. Data in, data out; the steps do the reading and writing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastlims.doe import Design, DoeSpec, Parameter, parse_doe_section
from fastlims.pipeline.durable import global_run_id
from fastlims.scheduling import Bench, FrozenAssignment, Problem, Run, RunNeeds, Schedule, minutes_from

RUNS_FORMAT = "fastlims.runs/1"
DefaultDoe = Literal["nominal", "latin_hypercube"]
BenchKindName = Literal["virtual", "physical"]


# --- DoE inputs -----------------------------------------------------------------------------


def _number(value: object) -> float | None:
    if value is None:
        return None
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parameters_from(model_description: Any, fmu: str) -> list[Parameter]:
    """The parameters of one FMU as the DoE package wants them, from FMPy's
    ``read_model_description`` (FMI 2 or 3). Arrays and non-numeric starts are left out of
    ``start``; bounds fall back to the variable's declared type."""
    found: list[Parameter] = []
    for variable in getattr(model_description, "modelVariables", []) or []:
        if getattr(variable, "causality", None) != "parameter" or getattr(variable, "dimensions", None):
            continue
        declared = getattr(variable, "declaredType", None)
        low = _number(getattr(variable, "min", None))
        high = _number(getattr(variable, "max", None))
        if low is None and declared is not None:
            low = _number(getattr(declared, "min", None))
        if high is None and declared is not None:
            high = _number(getattr(declared, "max", None))
        if low is not None and high is not None and low > high:
            low = high = None  # a broken declaration: no bounds rather than a refused parameter
        unit = getattr(variable, "unit", None) or (getattr(declared, "unit", None) if declared is not None else None)
        found.append(
            Parameter(
                name=str(variable.name),
                unit=str(unit or ""),
                min=low,
                max=high,
                start=_number(getattr(variable, "start", None)),
                causality="parameter",
                variability=str(getattr(variable, "variability", None) or "fixed"),
                type=str(getattr(variable, "type", None) or "Real"),
                fmu=fmu,
                description=str(getattr(variable, "description", None) or ""),
            )
        )
    return found


def doe_spec(doe_spec_json: Mapping[str, Any] | None, default: DefaultDoe, default_runs: int) -> DoeSpec | None:
    """The test's DoE section, or the default for tests without one: ``None`` (one nominal run
    with the FMUs' own start values) or a Latin hypercube of ``default_runs`` runs over every
    settable parameter with declared bounds. Raises ``DoeError`` for a broken section."""
    if doe_spec_json is not None:
        return parse_doe_section(dict(doe_spec_json), where="TestNames.DoeSpecJson")
    if default == "latin_hypercube":
        return DoeSpec(method="latin_hypercube", run_budget=default_runs)
    return None


# --- the designed runs ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRun:
    """One run to schedule: its id across requests, the design's id, the FMU parameter values
    (``parameters``) and procedure variable values (``values``) it runs with, its resolved
    procedure (a storage key) and its expected length on a bench (the test's own time)."""

    run_id: str
    design_run_id: str
    parameters: Mapping[str, float]
    expected_duration_s: float
    values: Mapping[str, float] = field(default_factory=dict)
    procedure: str | None = None
    needs: RunNeeds = field(default_factory=RunNeeds)  # what its procedure asks of a bench


def nominal_runs(test_uuid: str, duration_s: float) -> list[PlannedRun]:
    """The single run of a test without a design: every parameter at the FMUs' start values."""
    return [PlannedRun(global_run_id(test_uuid, "run-001"), "run-001", {}, duration_s)]


def runs_from_design(test_uuid: str, design: Design, *, procedure_variables: bool = False) -> list[PlannedRun]:
    """The design's runs; with ``procedure_variables`` its factors are the procedure's variables
    (``values``), else the FMUs' parameters (``parameters``)."""
    return [
        PlannedRun(
            global_run_id(test_uuid, run.run_id),
            run.run_id,
            {} if procedure_variables else dict(run.values),
            run.expected_duration_s,
            values=dict(run.values) if procedure_variables else {},
        )
        for run in design.runs
    ]


def runs_document(
    *, test_uuid: str, request_number: str, method: str, runs: Sequence[PlannedRun], notes: Sequence[str] = ()
) -> dict[str, Any]:
    """``doe-output/runs.json``: what the schedule step reads (the design itself is design.json)."""
    return {
        "format": RUNS_FORMAT,
        "test_UUID": test_uuid,
        "request_number": request_number,
        "method": method,
        "notes": list(notes),
        "runs": [
            {
                "run_id": r.run_id,
                "design_run_id": r.design_run_id,
                "parameters": dict(r.parameters),
                "values": dict(r.values),
                "procedure": r.procedure,
                "expected_duration_s": r.expected_duration_s,
                "needs": dataclasses.asdict(r.needs),
            }
            for r in runs
        ],
    }


def runs_from_document(document: Mapping[str, Any]) -> list[PlannedRun]:
    """Read ``runs.json`` back; ``ValueError`` naming what is wrong."""
    if document.get("format") != RUNS_FORMAT:
        raise ValueError(f"not a {RUNS_FORMAT} document (format={document.get('format')!r})")
    runs = []
    for index, item in enumerate(document.get("runs") or []):
        try:
            runs.append(
                PlannedRun(
                    run_id=str(item["run_id"]),
                    design_run_id=str(item["design_run_id"]),
                    parameters={str(k): float(v) for k, v in dict(item["parameters"]).items()},
                    expected_duration_s=float(item["expected_duration_s"]),
                    values={str(k): float(v) for k, v in dict(item.get("values") or {}).items()},
                    procedure=str(item["procedure"]) if item.get("procedure") else None,
                    needs=RunNeeds(**dict(item.get("needs") or {})),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"runs[{index}] is not a run: {exc}") from None
    if not runs:
        raise ValueError("the design has no runs")
    return runs


def runs_csv(runs: Sequence[PlannedRun]) -> str:
    """One line per run (``run_id``, ``design_run_id``, each parameter and procedure variable,
    ``expected_duration_s``)."""
    names = sorted({name for run in runs for name in (*run.parameters, *run.values)})
    lines = [",".join(["run_id", "design_run_id", *names, "expected_duration_s"])]
    for run in runs:
        both = {**run.parameters, **run.values}
        values = [repr(both[name]) if name in both else "" for name in names]
        lines.append(",".join([run.run_id, run.design_run_id, *values, repr(run.expected_duration_s)]))
    return "\n".join(lines) + "\n"


# --- scheduling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFacts:
    """What scheduling needs to know about the request and its test."""

    test_uuid: str
    bench_kind: BenchKindName
    preferred_start: datetime
    setup_minutes: int = 0
    teardown_minutes: int = 0
    may_pause: bool = False


@dataclass(frozen=True)
class Booking:
    """A bench held by a run over ``[start, end)`` (setup and teardown included)."""

    run_id: str
    bench: str
    start: datetime
    end: datetime
    test_start: datetime | None = None


def schedule_origin(now: datetime, preferred_start: datetime, *, virtual: bool = False) -> datetime:
    """Minute 0 of the request's problem: the preferred start or now, whichever is later,
    rounded up to a whole minute (no run starts in the past or before it is wanted). A virtual
    request's is rounded down: its first run may start at once (a simulation needs no one to
    be there at a whole minute, and its bench queue runs one run at a time anyway)."""
    moment = max(now, preferred_start).astimezone(UTC)
    floored = moment.replace(second=0, microsecond=0)
    return floored if floored == moment or virtual else floored + timedelta(minutes=1)


def physical_time_scale(benches: Sequence[Bench]) -> float:
    """How much faster than real time the slowest physical bench runs a test (1 with any real
    bench): a physical request is booked for what its slowest candidate takes, never less."""
    scales = [b.time_scale for b in benches if b.kind == "physical"]
    return min(scales) if scales else 1.0


def scaled_for_benches(
    facts: RequestFacts, runs: Sequence[PlannedRun], scale: float
) -> tuple[RequestFacts, dict[str, float]]:
    """A physical request on benches that run ``scale`` times faster than real time (emulated
    benches): its set-up, tear-down and runs hold a bench ``1/scale`` as long. Set-up and
    tear-down round to whole minutes (an emulator mounts no fixture), the runs' bookings keep
    their rounding up."""
    if scale <= 1.0:
        return facts, {}
    scaled = dataclasses.replace(
        facts,
        setup_minutes=round(facts.setup_minutes / scale),
        teardown_minutes=round(facts.teardown_minutes / scale),
    )
    return scaled, {run.run_id: run.expected_duration_s / scale for run in runs}


def duration_minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60.0))


def build_problem(
    facts: RequestFacts,
    runs: Sequence[PlannedRun],
    benches: Sequence[Bench],
    bookings: Iterable[Booking],
    now: datetime,
    *,
    booked_s: Mapping[str, float] | None = None,
) -> Problem:
    """The request's runs, placed no earlier than :func:`schedule_origin`, on benches that keep
    the other requests' bookings (frozen, they are never moved). ``booked_s``: how long each run
    holds its bench when that is not its expected duration (a virtual run: its compute time)."""
    origin = schedule_origin(now, facts.preferred_start, virtual=facts.bench_kind == "virtual")
    names = {b.bench_id for b in benches}
    frozen = []
    for booking in bookings:
        if booking.bench not in names or booking.end <= origin:
            continue
        start = max(0, minutes_from(origin, booking.start))
        end = -(-int((booking.end - origin).total_seconds()) // 60)  # ceil: never shrink a booking
        if end > start:
            frozen.append(FrozenAssignment(booking.run_id, booking.bench, start, end))
    physical = facts.bench_kind == "physical"
    problem_runs = tuple(
        Run(
            run_id=run.run_id,
            request_id=facts.test_uuid,
            duration=duration_minutes((booked_s or {}).get(run.run_id, run.expected_duration_s)),
            bench_kind=facts.bench_kind,
            earliest_start=0,
            # Set-up and tear-down are bench work with a fixture and a climate chamber: a virtual
            # bench loads its FMUs in seconds, so its runs book no such time.
            setup=facts.setup_minutes if physical else 0,
            teardown=facts.teardown_minutes if physical else 0,
            may_pause=facts.may_pause and physical,
            needs=run.needs,
        )
        for run in runs
    )
    return Problem(origin=origin, runs=problem_runs, benches=tuple(benches), frozen=tuple(frozen))


def new_bookings(problem: Problem, schedule: Schedule) -> list[Booking]:
    """The bookings the schedule makes for the problem's (non-frozen) runs, by start time."""
    runs = {r.run_id: r for r in problem.runs}
    frozen = {f.run_id for f in problem.frozen}
    made = [
        Booking(
            run_id=a.run_id,
            bench=a.bench_id,
            start=problem.at(a.start),
            end=problem.at(a.end),
            test_start=problem.at(a.start + runs[a.run_id].setup),
        )
        for a in schedule.assignments
        if a.run_id in runs and a.run_id not in frozen and not a.frozen
    ]
    return sorted(made, key=lambda b: (b.start, b.bench, b.run_id))


def conflicts(proposed: Iterable[Booking], existing: Iterable[Booking]) -> list[str]:
    """Each proposed booking that overlaps an existing one on the same bench, described."""
    by_bench: dict[str, list[Booking]] = {}
    for booking in existing:
        by_bench.setdefault(booking.bench, []).append(booking)
    found = []
    for booking in proposed:
        for other in by_bench.get(booking.bench, []):
            if other.run_id != booking.run_id and booking.start < other.end and other.start < booking.end:
                found.append(f"{booking.run_id} overlaps {other.run_id} on {booking.bench}")
    return found

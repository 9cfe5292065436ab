"""Pure planning: FMU parameters for the DoE, the runs document, and one request's scheduling
problem beside the other requests' bookings (checked with the scheduling package's checker)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fmpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastlims.doe import DoeError, design, resolve_factors
from fastlims.pipeline import plan
from fastlims.scheduling import Bench, Calendar, solve
from fastlims.scheduling.checker import check

NOW = datetime(2026, 11, 27, 10, 17, 42, tzinfo=UTC)
BENCHES = [Bench(bench_id=f"virtual-{i}", kind="virtual", name=f"virtual-{i}") for i in (1, 2)]


@dataclass
class Variable:
    name: str
    causality: str = "parameter"
    variability: str = "fixed"
    type: str = "Real"
    start: str | None = None
    min: str | None = None
    max: str | None = None
    unit: str | None = None
    declaredType: object = None
    description: str | None = None
    dimensions: list[object] | None = None


@dataclass
class Description:
    modelVariables: list[Variable]


@dataclass
class DeclaredType:
    min: str | None = None
    max: str | None = None
    unit: str | None = None


def test_parameters_come_from_fmi_variables_with_declared_type_fallback() -> None:
    description = Description(
        [
            Variable("R0", start="0.015", min="0", max="10", unit="Ohm", description="series resistance"),
            Variable("T0", start="298.15", declaredType=DeclaredType("250", "350", "K")),
            Variable("mode", type="Enumeration", start="1"),
            Variable("label", type="String", start="cell A"),
            Variable("I", causality="input"),
            Variable("vector", dimensions=[object()]),
            Variable("broken", min="5", max="1"),
        ]
    )
    found = {p.name: p for p in plan.parameters_from(description, "cell")}
    assert set(found) == {"R0", "T0", "mode", "label", "broken"}
    assert (found["R0"].min, found["R0"].max, found["R0"].start, found["R0"].unit) == (0.0, 10.0, 0.015, "Ohm")
    assert (found["T0"].min, found["T0"].max, found["T0"].unit) == (250.0, 350.0, "K")
    assert found["label"].start is None and not found["label"].numeric
    assert found["broken"].min is None and found["broken"].max is None
    assert all(p.fmu == "cell" for p in found.values())


@pytest.mark.parametrize("fmi_version", ["2.0", "3.0"])
def test_parameters_of_the_reference_fmus_feed_a_design(fmi_version: str, tmp_path: Path) -> None:
    from fastlims.peers.fmus import build_fmu

    path = build_fmu("battery_cell", fmi_version, tmp_path, name="battery_cell")
    parameters = plan.parameters_from(fmpy.read_model_description(str(path)), "battery_cell")
    names = {p.name for p in parameters}
    assert {"capacity_Ah", "SOC0", "T_ambient_K"} <= names
    spec = plan.doe_spec(
        {"method": "latin_hypercube", "run_budget": 5, "factors": {"SOC0": {"low": 0.2, "high": 0.9}}}, "nominal", 20
    )
    assert spec is not None
    built = design(spec, resolve_factors(parameters, spec), 3600.0)
    runs = plan.runs_from_design("u-1", built)
    assert [r.run_id for r in runs] == [f"u-1.run-{i:03d}" for i in range(1, 6)]
    assert all(0.2 <= r.parameters["SOC0"] <= 0.9 for r in runs)


def test_default_design_without_a_doe_section() -> None:
    assert plan.doe_spec(None, "nominal", 20) is None
    spec = plan.doe_spec(None, "latin_hypercube", 12)
    assert spec is not None and spec.method == "latin_hypercube" and spec.run_budget == 12
    with pytest.raises(DoeError, match="TestNames.DoeSpecJson.method"):
        plan.doe_spec({"method": "magic"}, "nominal", 20)
    [only] = plan.nominal_runs("u-2", 600.0)
    assert (only.run_id, only.parameters, only.expected_duration_s) == ("u-2.run-001", {}, 600.0)


def test_runs_document_round_trip_and_refusals() -> None:
    runs = [
        plan.PlannedRun("u.run-001", "run-001", {"a": 1.5}, 60.0),
        plan.PlannedRun("u.run-002", "run-002", {}, 90.0),
    ]
    document = plan.runs_document(test_uuid="u", request_number="TR-1", method="sobol", runs=runs)
    assert plan.runs_from_document(document) == runs
    assert plan.runs_csv(runs).splitlines() == [
        "run_id,design_run_id,a,expected_duration_s",
        "u.run-001,run-001,1.5,60.0",
        "u.run-002,run-002,,90.0",
    ]
    with pytest.raises(ValueError, match="format"):
        plan.runs_from_document({"format": "other"})
    with pytest.raises(ValueError, match="no runs"):
        plan.runs_from_document({**document, "runs": []})
    with pytest.raises(ValueError, match=r"runs\[0\]"):
        plan.runs_from_document({**document, "runs": [{"run_id": "x"}]})


def test_origin_is_the_later_of_now_and_the_preferred_start_on_a_whole_minute() -> None:
    assert plan.schedule_origin(NOW, NOW - timedelta(days=1)) == datetime(2026, 11, 27, 10, 18, tzinfo=UTC)
    later = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert plan.schedule_origin(NOW, later) == later


def facts(uuid: str, kind: plan.BenchKindName = "virtual") -> plan.RequestFacts:
    return plan.RequestFacts(uuid, kind, NOW + timedelta(hours=1), setup_minutes=10, teardown_minutes=5)


def runs_of(uuid: str, count: int, seconds: float = 3600.0) -> list[plan.PlannedRun]:
    return [plan.PlannedRun(f"{uuid}.run-{i:03d}", f"run-{i:03d}", {}, seconds) for i in range(1, count + 1)]


def test_a_second_request_never_overlaps_the_first_ones_bookings() -> None:
    first = plan.build_problem(facts("a"), runs_of("a", 3), BENCHES, [], NOW)
    first_bookings = plan.new_bookings(first, solve(first, "greedy"))
    assert len(first_bookings) == 3
    assert all(b.test_start == b.start for b in first_bookings)  # a virtual bench has no set-up time
    second = plan.build_problem(facts("b"), runs_of("b", 3), BENCHES, first_bookings, NOW)
    assert {f.run_id for f in second.frozen} == {b.run_id for b in first_bookings}
    result = solve(second, "greedy")
    assert check(second, result) == []
    made = plan.new_bookings(second, result)
    assert [b.run_id for b in made if b.run_id.startswith("a.")] == []
    assert plan.conflicts(made, first_bookings) == []


def test_only_physical_runs_book_set_up_and_tear_down() -> None:
    rig = Bench(bench_id="rig-1", kind="physical", calendar=Calendar.around_the_clock())
    physical = plan.build_problem(facts("p", "physical"), runs_of("p", 1), [rig], [], NOW)
    assert (physical.runs[0].setup, physical.runs[0].teardown) == (10, 5)
    virtual = plan.build_problem(facts("v"), runs_of("v", 1), BENCHES, [], NOW)
    assert (virtual.runs[0].setup, virtual.runs[0].teardown) == (0, 0)


def test_bookings_elsewhere_or_already_over_are_ignored() -> None:
    old = plan.Booking("z.run-001", "virtual-1", NOW - timedelta(days=2), NOW - timedelta(days=1))
    elsewhere = plan.Booking("z.run-002", "rig-9", NOW, NOW + timedelta(hours=5))
    problem = plan.build_problem(facts("a"), runs_of("a", 1), BENCHES, [old, elsewhere], NOW)
    assert problem.frozen == ()


def test_physical_runs_pause_only_when_the_test_allows_it() -> None:
    rig = Bench(bench_id="rig-1", kind="physical", calendar=Calendar.office_hours("Europe/Berlin"))
    pausable = plan.RequestFacts("p", "physical", NOW, may_pause=True)
    problem = plan.build_problem(pausable, runs_of("p", 1, 14 * 3600.0), [rig], [], NOW)
    assert problem.runs[0].may_pause and problem.runs[0].duration == 14 * 60
    virtual = plan.build_problem(
        plan.RequestFacts("v", "virtual", NOW, may_pause=True), runs_of("v", 1), BENCHES, [], NOW
    )
    assert not virtual.runs[0].may_pause


@given(st.floats(min_value=0.001, max_value=1e7))
def test_duration_minutes_rounds_up_and_is_never_zero(seconds: float) -> None:
    minutes = plan.duration_minutes(seconds)
    assert minutes >= 1 and minutes * 60 >= seconds and (minutes - 1) * 60 < max(seconds, 60)


def test_conflicts_name_the_runs_and_the_bench() -> None:
    a = plan.Booking("a.run-001", "v1", NOW, NOW + timedelta(hours=1))
    b = plan.Booking("b.run-001", "v1", NOW + timedelta(minutes=59), NOW + timedelta(hours=2))
    c = plan.Booking("c.run-001", "v1", NOW + timedelta(hours=1), NOW + timedelta(hours=2))
    d = plan.Booking("d.run-001", "v2", NOW, NOW + timedelta(hours=1))
    assert plan.conflicts([b], [a]) == ["b.run-001 overlaps a.run-001 on v1"]
    assert plan.conflicts([c, d], [a]) == []  # touching ends and other benches are fine

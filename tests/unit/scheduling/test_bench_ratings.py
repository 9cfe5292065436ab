"""A run is booked only on a bench whose ratings cover its procedure; a run no bench covers is
infeasible with a reason naming each bench's shortfall."""

from __future__ import annotations

import dataclasses

import pytest
from sched_factories import ORIGIN

from fastlims.scheduling import (
    Bench,
    BenchRatings,
    Calendar,
    InfeasibleError,
    Problem,
    Run,
    RunNeeds,
    solve,
)
from fastlims.scheduling.checker import check
from fastlims.scheduling.prepare import fits, why_not

CELL_1C = RunNeeds(uut_format="cell", current_A=50.0, min_voltage_V=2.48, max_voltage_V=4.22)
HOT = RunNeeds(uut_format="cell", current_A=5.0, min_voltage_V=2.48, max_voltage_V=4.22, temperature_chamber=True)


def _rig(name: str, *, amps: float, volts: tuple[float, float] = (0.0, 5.0), chamber: bool = False, caps=("cell",)):  # type: ignore[no-untyped-def]
    ratings = BenchRatings(
        max_current_A=amps, min_voltage_V=volts[0], max_voltage_V=volts[1], temperature_chamber=chamber
    )
    return Bench(name, "physical", frozenset(caps), Calendar.around_the_clock(), ratings=ratings)


def _run(run_id: str, needs: RunNeeds) -> Run:
    return Run(run_id=run_id, request_id="r", duration=60, bench_kind="physical", needs=needs)


@pytest.mark.parametrize(
    ("bench", "needs", "shortfall"),
    [
        (_rig("small", amps=20.0), CELL_1C, "max current 20 A < 50 A"),
        (_rig("low", amps=100.0, volts=(0.0, 4.0)), CELL_1C, "max voltage 4 V < 4.22 V"),
        (_rig("high", amps=100.0, volts=(3.0, 60.0)), CELL_1C, "min voltage 3 V > 2.48 V"),
        (_rig("modules", amps=100.0, caps=("module",)), CELL_1C, "takes module, not a cell"),
        (_rig("room", amps=100.0), HOT, "no temperature chamber"),
    ],
)
def test_each_shortfall_is_named(bench: Bench, needs: RunNeeds, shortfall: str) -> None:
    run = _run("run-1", needs)
    assert not fits(run, bench)
    assert why_not(run, bench) == shortfall


def test_a_bench_that_covers_the_run_fits_and_one_listing_no_format_takes_every_format() -> None:
    assert fits(_run("a", CELL_1C), _rig("big", amps=100.0))
    assert fits(_run("b", HOT), _rig("any", amps=100.0, chamber=True, caps=()))
    unrated = Bench("virtual-1", "virtual")  # a virtual bench without ratings takes any run
    assert fits(Run(run_id="v", request_id="r", duration=5, bench_kind="virtual", needs=CELL_1C), unrated)


def test_the_solver_books_the_run_on_the_bench_that_covers_it() -> None:
    benches = (_rig("rig-a", amps=20.0), _rig("rig-b", amps=100.0), _rig("rig-c", amps=10.0))
    runs = (_run("run-1", CELL_1C), _run("run-2", CELL_1C))
    problem = Problem(origin=ORIGIN, runs=runs, benches=benches)
    schedule = solve(problem, solver="greedy")
    assert {a.bench_id for a in schedule.assignments} == {"rig-b"}
    assert check(problem, schedule) == []


def test_the_checker_refuses_a_run_on_a_bench_that_does_not_cover_it() -> None:
    benches = (_rig("rig-a", amps=20.0), _rig("rig-b", amps=100.0))
    problem = Problem(origin=ORIGIN, runs=(_run("run-1", CELL_1C),), benches=benches)
    schedule = solve(problem, solver="greedy")
    moved = dataclasses.replace(
        schedule, assignments=tuple(dataclasses.replace(a, bench_id="rig-a") for a in schedule.assignments)
    )
    assert any("does not cover its procedure: max current 20 A < 50 A" in p for p in check(problem, moved))


def test_a_run_no_bench_covers_is_infeasible_naming_each_bench() -> None:
    benches = (_rig("rig-a", amps=20.0), _rig("rig-m", amps=200.0, caps=("module",)))
    problem = Problem(origin=ORIGIN, runs=(_run("run-1", CELL_1C),), benches=benches)
    with pytest.raises(InfeasibleError) as info:
        solve(problem, solver="greedy")
    reason = str(info.value)
    assert "no active physical bench can take it" in reason
    assert "needs a cell, 50 A, 2.48-4.22 V" in reason
    assert "rig-a: max current 20 A < 50 A" in reason and "rig-m: takes module, not a cell" in reason

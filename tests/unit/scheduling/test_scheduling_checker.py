"""The independent checker must catch every kind of violation it promises to."""

from __future__ import annotations

import dataclasses

import pytest
from sched_factories import office_lab

from fastlims.scheduling import Assignment, FrozenAssignment, Problem, Schedule, solve
from fastlims.scheduling.checker import check


@pytest.fixture(scope="module")
def solved() -> tuple[Problem, Schedule]:
    problem = office_lab(6)
    return problem, solve(problem, "greedy")


def _with(schedule: Schedule, run_id: str, **changes: object) -> Schedule:
    assignments = tuple(
        dataclasses.replace(a, **changes) if a.run_id == run_id else a  # type: ignore[arg-type]
        for a in schedule.assignments
    )
    return dataclasses.replace(schedule, assignments=assignments)


def test_greedy_schedule_is_clean(solved: tuple[Problem, Schedule]) -> None:
    problem, schedule = solved
    assert check(problem, schedule) == []


def test_overlap_on_a_bench(solved: tuple[Problem, Schedule]) -> None:
    problem, schedule = solved
    a, b = [x for x in schedule.assignments if x.bench_id == schedule.assignments[0].bench_id][:2]
    moved = _with(schedule, b.run_id, start=a.start, end=a.start + (b.end - b.start))
    assert any("overlap" in v for v in check(problem, moved))


def test_closed_hours_and_missing_setup(solved: tuple[Problem, Schedule]) -> None:
    problem, schedule = solved
    phys = next(a for a in schedule.assignments if a.bench_id.startswith("P"))
    night = 20 * 60 - problem.origin.hour * 60  # 20:00 UTC on the origin day: after hours in Berlin
    bad = _with(schedule, phys.run_id, start=night, end=night + (phys.end - phys.start))
    assert any("closed hours" in v for v in check(problem, bad))
    short = _with(schedule, phys.run_id, end=phys.end - 5)
    assert any("setup + test + teardown" in v for v in check(problem, short))


def test_wrong_bench_missing_run_deadline_and_objective(solved: tuple[Problem, Schedule]) -> None:
    problem, schedule = solved
    virt = next(a for a in schedule.assignments if a.bench_id == "V1")
    wrong = _with(schedule, virt.run_id, bench_id="P1")
    assert any("needs a virtual bench" in v for v in check(problem, wrong))
    missing = dataclasses.replace(schedule, assignments=schedule.assignments[1:])
    assert any("is not scheduled" in v for v in check(problem, missing))
    late = dataclasses.replace(problem, runs=tuple(dataclasses.replace(r, deadline=1) for r in problem.runs))
    assert any("after its deadline" in v for v in check(late, schedule))
    assert any("reported objective" in v for v in check(problem, dataclasses.replace(schedule, objective=1)))
    early = _with(schedule, virt.run_id, start=virt.start - 1000, end=virt.end - 1000)
    assert any("before" in v for v in check(problem, early))


def test_frozen_run_moved_is_reported(solved: tuple[Problem, Schedule]) -> None:
    problem, schedule = solved
    first = schedule.assignments[0]
    frozen = dataclasses.replace(
        problem, frozen=(FrozenAssignment(first.run_id, first.bench_id, first.start + 60, first.end + 60),)
    )
    violations = check(frozen, schedule)
    assert any(f"frozen run {first.run_id} moved" in v for v in violations)
    extra = dataclasses.replace(schedule, assignments=schedule.assignments + (Assignment("X", "P1", 0, 5),))
    assert any("not part of the problem" in v for v in check(problem, extra))

"""schedule.json round trip, the per-request answer of the seed's Activity 3, and the Gantt
chart in both formats."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import pytest
from sched_factories import office_lab

from fastlims.scheduling import Problem, Schedule, solve
from fastlims.scheduling.checker import check
from fastlims.scheduling.export import (
    gantt_png,
    gantt_svg,
    request_summaries,
    schedule_from_json,
    schedule_to_json,
)


@pytest.fixture(scope="module")
def solved() -> tuple[Problem, Schedule]:
    problem = office_lab(6)
    return problem, solve(problem, "greedy")


def test_json_round_trip_keeps_every_assignment(solved: tuple[Problem, Schedule]) -> None:
    problem, schedule = solved
    text = schedule_to_json(problem, schedule)
    doc = json.loads(text)
    assert {r["run_id"] for r in doc["runs"]} == {a.run_id for a in schedule.assignments}
    first = doc["runs"][0]
    assert first["start"].endswith("Z") and {"bench_id", "bench_name", "end", "request_id"} <= set(first)
    back = schedule_from_json(text)
    assert back.assignments == schedule.assignments
    assert (back.objective, back.best_bound, back.solver, back.origin) == (
        schedule.objective,
        schedule.best_bound,
        schedule.solver,
        schedule.origin,
    )
    assert check(problem, back) == []
    with pytest.raises(ValueError, match="format"):
        schedule_from_json(json.dumps({"format": "other"}))


def test_request_summary_gives_optimised_start_and_bench_name(solved: tuple[Problem, Schedule]) -> None:
    problem, schedule = solved
    plans = request_summaries(problem, schedule)
    assert set(plans) == {r.request_id for r in problem.runs}
    for request_id, plan in plans.items():
        mine = [a for a in schedule.assignments if problem.run(a.run_id).request_id == request_id]
        first = min(mine, key=lambda a: (a.start, a.bench_id))
        assert plan.optimised_start == problem.at(first.start)
        assert plan.bench_name == problem.bench(first.bench_id).display_name
        assert plan.optimised_start.tzinfo is not None
        assert plan.preferred_start is not None and plan.optimised_start >= plan.preferred_start


def test_gantt_svg_is_well_formed_and_png_is_a_png(solved: tuple[Problem, Schedule]) -> None:
    problem, schedule = solved
    svg = gantt_svg(problem, schedule)
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg")
    assert all(b.display_name in svg for b in problem.benches)
    assert svg.count("<title>R") == len(schedule.assignments)
    png = gantt_png(problem, schedule)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000

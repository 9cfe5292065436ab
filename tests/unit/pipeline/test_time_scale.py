"""Benches faster than real time (emulated ones) are booked for what they take: a physical
request's runs, set-up and tear-down scale with its slowest physical bench."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fastlims.pipeline import plan
from fastlims.scheduling import Bench

NOW = datetime(2026, 12, 3, 20, 22, 30, tzinfo=UTC)
FACTS = plan.RequestFacts("u-1", "physical", NOW, setup_minutes=60, teardown_minutes=30)
RUNS = [
    plan.PlannedRun("u-1.run-001", "run-001", {}, 12 * 3600.0),
    plan.PlannedRun("u-1.run-002", "run-002", {}, 600.0),
]


def test_emulated_benches_book_a_thousandth_of_the_test_time() -> None:
    benches = [Bench("emu-1", "physical", time_scale=1000.0), Bench("emu-2", "physical", time_scale=1000.0)]
    scale = plan.physical_time_scale(benches)
    facts, booked = plan.scaled_for_benches(FACTS, RUNS, scale)
    assert scale == 1000.0
    assert (facts.setup_minutes, facts.teardown_minutes) == (0, 0)  # 3.6 s and 1.8 s: no whole minute
    assert booked == {"u-1.run-001": pytest.approx(43.2), "u-1.run-002": pytest.approx(0.6)}
    problem = plan.build_problem(facts, RUNS, benches, [], NOW, booked_s=booked)
    assert [r.processing for r in problem.runs] == [1, 1]  # a minute each, not 13.5 hours
    assert problem.origin == datetime(2026, 12, 3, 20, 23, tzinfo=UTC)  # the next whole minute


def test_one_real_bench_books_every_physical_run_in_real_time() -> None:
    benches = [Bench("emu-1", "physical", time_scale=1000.0), Bench("rig-1", "physical"), Bench("v", "virtual")]
    assert plan.physical_time_scale(benches) == 1.0
    facts, booked = plan.scaled_for_benches(FACTS, RUNS, 1.0)
    assert facts == FACTS and booked == {}
    problem = plan.build_problem(facts, RUNS, benches, [], NOW, booked_s=booked)
    assert [r.processing for r in problem.runs] == [60 + 720 + 30, 60 + 10 + 30]


def test_a_bench_slower_than_real_time_is_refused() -> None:
    with pytest.raises(ValueError, match="time_scale must be at least 1"):
        Bench("emu-0", "physical", time_scale=0.5)

"""Every solver's schedule passes the independent checker on random instances; infeasible
instances get reasons naming the run and the constraint; re-solving keeps frozen runs."""

from __future__ import annotations

import dataclasses
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from sched_factories import ORIGIN, office_lab, problems

from fastlims.scheduling import (
    Bench,
    FrozenAssignment,
    InfeasibleError,
    Problem,
    Run,
    SolverUnavailableError,
    freeze_started,
    solve,
)
from fastlims.scheduling.bounds import lower_bound
from fastlims.scheduling.checker import check
from fastlims.scheduling.prepare import prepare
from fastlims.scheduling.synthetic import synthetic_problem


def _assert_sound(problem: Problem, schedule_solver: str) -> int | None:
    try:
        schedule = solve(problem, schedule_solver, time_limit_s=1.0, workers=1)  # type: ignore[arg-type]
    except InfeasibleError as exc:
        assert exc.reasons and all("run " in r for r in exc.reasons)
        return None
    assert check(problem, schedule) == []
    assert schedule.best_bound <= schedule.objective
    assert 0.0 <= schedule.gap <= 1.0
    assert schedule.time_used_s >= schedule.time_to_first_feasible_s >= 0
    return schedule.objective


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_random_instances_greedy_and_cpsat_are_feasible(problem: Problem) -> None:
    greedy = _assert_sound(problem, "greedy")
    cpsat = _assert_sound(problem, "cpsat")
    if greedy is not None and cpsat is not None:
        assert cpsat <= greedy


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_runs=5, max_benches=2))
def test_lower_bound_never_exceeds_a_proven_optimum(problem: Problem) -> None:
    try:
        schedule = solve(problem, "cpsat", time_limit_s=2.0, workers=1)
    except InfeasibleError:
        return
    if schedule.stats.get("cp_status_optimal"):
        assert lower_bound(prepare(problem)).objective <= schedule.objective


def test_small_instance_is_proven_optimal() -> None:
    problem = office_lab(4)
    schedule = solve(problem, "cpsat", time_limit_s=5.0)
    assert schedule.status == "optimal" and schedule.gap == 0.0
    assert schedule.objective <= solve(problem, "greedy").objective
    assert check(problem, schedule) == []


def test_no_bench_with_capability_names_run_and_capability() -> None:
    problem = office_lab(3)
    bad = dataclasses.replace(problem.runs[0], capabilities=frozenset({"cycler", "climate"}))
    with pytest.raises(InfeasibleError) as err:
        solve(dataclasses.replace(problem, runs=(bad,) + problem.runs[1:]), "cpsat", time_limit_s=1)
    assert any("R0" in r and "climate" in r for r in err.value.reasons)


def test_run_longer_than_any_working_window_and_early_deadline() -> None:
    problem = office_lab(3)
    too_long = dataclasses.replace(problem.runs[0], duration=9 * 60)  # 9 h + setup > 08:00-17:00
    too_soon = dataclasses.replace(problem.runs[1], deadline=160)  # the lab opens at minute 60
    with pytest.raises(InfeasibleError) as err:
        solve(dataclasses.replace(problem, runs=(too_long, too_soon, problem.runs[2])), "greedy")
    reasons = err.value.reasons
    assert any("R0" in r and "continuous minutes" in r for r in reasons)
    assert any("R1" in r and "deadline" in r for r in reasons)
    # allowed to pause over the night, the long run becomes feasible
    pausing = dataclasses.replace(too_long, may_pause=True)
    schedule = solve(dataclasses.replace(problem, runs=(pausing,) + problem.runs[1:]), "cpsat", time_limit_s=1)
    assert check(dataclasses.replace(problem, runs=(pausing,) + problem.runs[1:]), schedule) == []


def test_deadlines_that_cannot_hold_together_name_the_runs() -> None:
    bench = Bench("V1", "virtual")
    runs = tuple(Run(f"R{i}", "Q", 100, "virtual", deadline=150) for i in range(2))
    problem = Problem(ORIGIN, runs, (bench,))
    with pytest.raises(InfeasibleError) as err:
        solve(problem, "cpsat", time_limit_s=2)
    assert {"R0", "R1"} <= {r.split()[1] for r in err.value.reasons}
    assert all("deadline" in r for r in err.value.reasons)


def test_greedy_beaten_where_deadlines_need_a_smarter_order() -> None:
    # greedy places R0 first on the bench; R1's deadline then fails for every order except EDD,
    # which the greedy tries: both solvers must meet it
    bench = Bench("V1", "virtual")
    runs = (Run("R0", "Q", 100, "virtual"), Run("R1", "Q", 50, "virtual", deadline=60))
    problem = Problem(ORIGIN, runs, (bench,))
    for name in ("greedy", "cpsat"):
        schedule = solve(problem, name, time_limit_s=1)  # type: ignore[arg-type]
        assert check(problem, schedule) == [] and schedule.assignment("R1").end <= 60


def test_adding_a_request_resolves_without_moving_frozen_runs() -> None:
    first = office_lab(6)
    before = solve(first, "cpsat", time_limit_s=2)
    # the two earliest runs have started; a new request arrives
    started = sorted(before.assignments, key=lambda a: a.start)[:2]
    frozen = tuple(FrozenAssignment(a.run_id, a.bench_id, a.start, a.end) for a in started)
    new_runs = tuple(
        Run(
            f"N{i}",
            "Q-new",
            90,
            "physical",
            earliest_start=0,
            setup=10,
            teardown=10,
            capabilities=frozenset({"cycler"}),
            priority=3,
        )
        for i in range(3)
    )
    second = dataclasses.replace(first, runs=first.runs + new_runs, frozen=frozen)
    after = solve(second, "cpsat", time_limit_s=2, previous=before)
    assert check(second, after) == []
    for f in frozen:
        a = after.assignment(f.run_id)
        assert (a.bench_id, a.start, a.end, a.frozen) == (f.bench_id, f.start, f.end, True)
    assert after.stats["previous_runs_kept"] >= 1
    # the greedy re-solve from the previous schedule is feasible as well
    assert check(second, solve(second, "greedy", previous=before)) == []


def test_previous_schedule_with_a_later_origin_is_shifted() -> None:
    first = office_lab(4)
    before = solve(first, "greedy")
    later = dataclasses.replace(first, origin=ORIGIN.replace(hour=7))  # an hour later
    shifted = tuple(dataclasses.replace(r, earliest_start=r.earliest_start - 60) for r in first.runs)
    second = dataclasses.replace(later, runs=shifted)
    after = solve(second, "greedy", previous=before)
    assert check(second, after) == []


def test_pooled_and_unpooled_models_agree_on_feasibility() -> None:
    problem = synthetic_problem(24, 6, seed=3)
    for pool in (True, False):
        schedule = solve(problem, "cpsat", time_limit_s=2, pool=pool)
        assert check(problem, schedule) == [], pool


def test_lns_strategy_is_feasible_and_never_worse_than_greedy() -> None:
    problem = synthetic_problem(40, 6, seed=5)
    greedy = solve(problem, "greedy")
    lns = solve(problem, "cpsat", time_limit_s=3, strategy="lns")
    assert check(problem, lns) == []
    assert lns.objective <= greedy.objective


def test_gurobi_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gurobipy", None)
    with pytest.raises(SolverUnavailableError, match="gurobipy"):
        solve(office_lab(3), "gurobi", time_limit_s=1)


def test_gurobi_schedule_passes_the_checker() -> None:
    import gurobipy  # noqa: F401 - the test extra installs it (size-limited free licence), so this runs in CI

    problem = synthetic_problem(12, 4, seed=2)
    schedule = solve(problem, "gurobi", time_limit_s=3)
    assert check(problem, schedule) == []
    assert schedule.objective <= solve(problem, "greedy").objective


def test_freeze_started_keeps_runs_that_have_begun() -> None:
    first = office_lab(6)
    before = solve(first, "greedy")
    cut = sorted(a.start for a in before.assignments)[2] + 1  # the first three have started
    now = first.at(cut)
    frozen = freeze_started(before, now)
    assert {f.run_id for f in frozen} == {a.run_id for a in before.assignments if a.start < cut}
    assert all(f.start < 0 for f in frozen)
    later = dataclasses.replace(
        first,
        origin=now,
        runs=tuple(dataclasses.replace(r, earliest_start=r.earliest_start - cut) for r in first.runs),
        frozen=frozen,
    )
    after = solve(later, "cpsat", time_limit_s=1, previous=before)
    assert check(later, after) == []
    for f in frozen:
        a = after.assignment(f.run_id)
        assert (a.start, a.end, a.bench_id) == (f.start, f.end, f.bench_id)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_greedy_portfolio_is_never_worse_than_any_single_rule(problem: Problem) -> None:
    from fastlims.scheduling.greedy import _orders, best_greedy

    try:
        prep = prepare(problem)
    except InfeasibleError:
        return
    portfolio = best_greedy(prep)
    for name in _orders(prep):
        single = best_greedy(prep, orders=[name])
        if single is not None:
            assert portfolio is not None, f"rule {name} found a schedule the portfolio missed"
            assert portfolio[1] <= single[1], name


def test_groups_of_benches_that_share_no_run_follow_their_own_rule() -> None:
    from fastlims.scheduling.greedy import best_greedy
    from fastlims.scheduling.prepare import components

    problem = synthetic_problem(120, 8, seed=5, deadline_share=0)
    prep = prepare(problem)
    groups = components(prep)
    kinds = sorted({prep.benches[b].kind for b in groups[0][0]} | {prep.benches[b].kind for b in groups[-1][0]})
    assert len(groups) == 2 and kinds == ["physical", "virtual"]
    assert sum(len(runs) for _b, runs in groups) == len(prep.runs)
    for benches, runs in groups:
        assert all(set(prep.compat[r.run_id]) <= benches for r in runs)
    found = best_greedy(prep)
    assert found is not None
    schedule = solve(problem, "greedy")
    assert check(problem, schedule) == [] and schedule.objective == found[1]


def test_plain_eft_baseline_is_feasible_and_no_better_than_the_portfolio() -> None:
    problem = synthetic_problem(60, 4, seed=3)
    eft = solve(problem, "eft")
    greedy = solve(problem, "greedy")
    assert eft.solver == "eft" and check(problem, eft) == []
    assert greedy.objective <= eft.objective


def test_ruin_and_recreate_alone_keeps_schedules_feasible_and_never_worse() -> None:
    import time

    from fastlims.scheduling.greedy import best_greedy
    from fastlims.scheduling.lns import LnsTuning, improve

    problem = synthetic_problem(80, 6, seed=21)
    prep = prepare(problem)
    start = best_greedy(prep)
    assert start is not None
    out, objective, stats = improve(
        prep, start[0], time.monotonic() + 3.0, prep.horizon, 0, LnsTuning(1, 3, cp_threads=0, recreate_threads=1)
    )
    # this instance's greedy schedule is poor: the moves lowered it by a third in 1.5 s here
    assert stats.recreate_moves > 10 and stats.moves == 0
    assert stats.recreate_improving > 0 and objective < start[1]
    from fastlims.scheduling.models import objective_parts

    full = tuple(prep.frozen) + tuple(out)
    total, makespan, lateness = objective_parts(problem, full)
    assert total == objective
    schedule = solve(problem, "greedy")
    moved = dataclasses.replace(
        schedule, assignments=full, objective=total, makespan=makespan, weighted_lateness=lateness
    )
    assert check(problem, moved) == []


def test_unknown_priority_rule_is_named() -> None:
    from fastlims.scheduling.greedy import best_greedy

    with pytest.raises(ValueError, match="unknown priority rule.*lifo.*known: fifo"):
        best_greedy(prepare(synthetic_problem(10, 2, seed=1)), orders=["fifo", "lifo"])


def test_ruin_and_recreate_keeps_its_busy_lists_and_objective_true_and_stays_out_of_blocked_windows() -> None:
    """The busy lists and objective are updated move by move, not rebuilt: after many moves,
    with a window another thread is solving, they must equal a rebuild from scratch."""
    import random

    from fastlims.scheduling.greedy import best_greedy
    from fastlims.scheduling.recreate import ruin_recreate, scattered, strings
    from fastlims.scheduling.search import Search

    problem = synthetic_problem(120, 6, seed=5, pausable_share=0.4, started_share=0.3)
    prep = prepare(problem)
    start = best_greedy(prep)
    assert start is not None
    search = Search(prep, start[0], pool=True)
    ci = max(range(len(search.comps)), key=lambda c: len(search.comp_runs[c]))
    ends = sorted(search.placed[r][2] for r in search.comp_runs[ci])
    lo, hi = ends[len(ends) // 3], ends[len(ends) // 2]
    search.active[99] = (ci, lo, hi)  # as if a CP-SAT thread were solving [lo, hi) of group ci
    inside = {r: v for r, v in search.placed.items() if search.comp_of[v[0]] == ci and v[2] > lo and v[1] < hi}
    rng = random.Random(7)
    kept = 0
    for i in range(400):
        remove = strings if i % 2 else scattered
        picked = remove(search, rng, rng.choice((4, 10, 24)))
        if picked is not None:
            kept += int(ruin_recreate(search, rng, picked[0], picked[1]) is not None)
    assert kept > 100
    best = search.current
    assert best == search.objective() and best <= start[1]
    for rid, v in search.placed.items():
        if search.comp_of[v[0]] == ci and v[2] > lo and v[1] < hi:
            assert inside.get(rid) == v, f"run {rid} moved into or within the blocked window"
    cached = {pid: (c.runs, c.busy) for pid, c in search.concrete.items()}
    for pid in cached:
        search.version[pid] += 1  # force a rebuild
    fresh = search.concrete_of(search.pools)
    for pid, (runs, busy) in cached.items():
        assert {r: v[1:] for r, v in runs.items()} == {r: v[1:] for r, v in fresh[pid].runs.items()}
        # benches may be relabelled by the decode, but each bench's lists must match its runs
        for b, (starts, ends_) in busy.items():
            mine = sorted([(s, e) for bb, s, e in runs.values() if bb == b] + list(prep.frozen_busy[b]))
            assert list(zip(starts, ends_, strict=True)) == mine


def test_annealed_ruin_and_recreate_returns_the_best_schedule_it_saw() -> None:
    """Hot enough to take worse schedules, the search must still hand back its best one."""
    import random

    from fastlims.scheduling.greedy import best_greedy
    from fastlims.scheduling.models import objective_parts
    from fastlims.scheduling.recreate import ruin_recreate, scattered
    from fastlims.scheduling.search import Search, decode_all

    problem = synthetic_problem(100, 6, seed=8)
    prep = prepare(problem)
    start = best_greedy(prep)
    assert start is not None
    search = Search(prep, start[0], pool=True)
    search.temperature = 5_000.0
    rng = random.Random(3)
    seen = [search.current]
    worse_taken = 0
    for _ in range(300):
        picked = scattered(search, rng, 8)
        if picked is None:
            continue
        before = search.current
        ruin_recreate(search, rng, picked[0], picked[1])
        worse_taken += int(search.current > before)
        seen.append(search.current)
    assert worse_taken > 0, "the temperature should let some worse schedules through"
    assert search.best == min(seen) <= start[1]
    best = decode_all(prep, search.pools, search.best_placement())
    assert objective_parts(problem, list(prep.frozen) + best)[0] == search.best

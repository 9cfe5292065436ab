"""The neighbourhood search split over processes (one per share of the bench groups), the
string removals, and searches confined to some groups."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest

from fastlims.scheduling.checker import check
from fastlims.scheduling.greedy import best_greedy
from fastlims.scheduling.lns import LnsTuning, improve
from fastlims.scheduling.models import Assignment, Schedule, objective_parts
from fastlims.scheduling.prepare import Prepared, prepare
from fastlims.scheduling.recreate import strings
from fastlims.scheduling.search import Search, bench_groups
from fastlims.scheduling.split import MIN_SPLIT_S, improve_split, share_groups
from fastlims.scheduling.synthetic import synthetic_problem


def test_groups_are_dealt_heaviest_first_to_the_least_loaded_process() -> None:
    assert share_groups([500, 0, 300, 200, 100], 2) == [frozenset({0, 4}), frozenset({2, 3})]
    assert share_groups([5, 7], 4) == [frozenset({1}), frozenset({0})]
    assert share_groups([5, 7], 1) == [frozenset({0, 1})]
    assert share_groups([0, 0], 2) == []


def _start(runs: int, benches: int, seed: int) -> tuple[Prepared, list[Assignment], int]:
    prep = prepare(synthetic_problem(runs, benches, seed=seed))
    found = best_greedy(prep)
    assert found is not None
    return prep, found[0], found[1]


def _lateness(prep: Prepared, assignments: list[Assignment], benches: frozenset[str]) -> int:
    return sum(prep.weight[a.run_id] * (a.start - prep.es[a.run_id]) for a in assignments if a.bench_id in benches)


def _sound(prep: Prepared, out: list[Assignment], objective: int) -> None:
    total, makespan, lateness = objective_parts(prep.problem, list(prep.frozen) + out)
    assert total == objective
    schedule = Schedule(
        origin=prep.problem.origin,
        assignments=tuple(prep.frozen) + tuple(out),
        objective=total,
        makespan=makespan,
        weighted_lateness=lateness,
        best_bound=0,
        gap=1.0,
        solver="cpsat",
        status="feasible",
        time_to_first_feasible_s=0.0,
        time_used_s=0.0,
    )
    assert check(prep.problem, schedule) == []


def test_a_search_confined_to_some_groups_leaves_the_others_where_they_were() -> None:
    prep, start, start_obj = _start(120, 6, 21)
    groups = bench_groups(prep, True)
    assert len(groups) == 2
    out, objective, stats = improve(
        prep, start, time.monotonic() + 4.0, prep.horizon, 0, LnsTuning(1, 4, cp_threads=0), only=frozenset({0})
    )
    assert stats.recreate_moves > 10 and objective <= start_obj
    before = {a.run_id: (a.start, a.end) for a in start if a.bench_id in groups[1]}
    after = {a.run_id: (a.start, a.end) for a in out if a.bench_id in groups[1]}
    assert after == before
    assert _lateness(prep, out, groups[0]) < _lateness(prep, start, groups[0])


def test_split_search_improves_every_group_in_its_own_process() -> None:
    prep, start, start_obj = _start(200, 10, 12)
    groups = bench_groups(prep, True)
    found = improve_split(prep, start, time.monotonic() + MIN_SPLIT_S + 1.0, 2, 1, prep.horizon, 0)
    assert found is not None
    out, objective, stats = found
    assert stats.failed_parts == 0
    assert objective < start_obj
    _sound(prep, out, objective)
    assert sorted(a.run_id for a in out) == sorted(a.run_id for a in start)
    # the child process's group improved too (its work was not dropped for the start's)
    for benches in groups:
        assert _lateness(prep, out, benches) < _lateness(prep, start, benches)


def test_split_search_keeps_the_start_of_a_group_whose_process_failed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tempfile

    import fastlims.scheduling.split as split

    prep, start, start_obj = _start(200, 10, 12)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # an interpreter that exits at once: the child's groups must keep their start schedule
    failing = tmp_path / "python"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(0o700)
    monkeypatch.setattr(split.sys, "executable", str(failing))
    found = improve_split(prep, start, time.monotonic() + MIN_SPLIT_S + 0.5, 2, 1, prep.horizon, 0)
    monkeypatch.setattr(split.sys, "executable", sys.executable)
    assert found is not None
    out, objective, stats = found
    assert stats.failed_parts == 1
    groups = bench_groups(prep, True)
    child_benches = [g for g in groups if any(a.bench_id in g for a in out)]
    kept = [
        g
        for g in child_benches
        if {(a.run_id, a.bench_id, a.start, a.end) for a in out if a.bench_id in g}
        == {(a.run_id, a.bench_id, a.start, a.end) for a in start if a.bench_id in g}
    ]
    assert len(kept) == 1, "exactly the failed process's group keeps the start schedule"
    assert objective < start_obj
    _sound(prep, out, objective)
    assert list(tmp_path.glob("fastlims-split-*")) == [], "the hand-over file must be removed"


def test_split_search_declines_when_there_is_nothing_to_split() -> None:
    prep, start, _obj = _start(200, 10, 12)
    assert improve_split(prep, start, time.monotonic() + 30, 1, 1, prep.horizon, 0) is None
    assert improve_split(prep, start, time.monotonic() + MIN_SPLIT_S / 2, 2, 1, prep.horizon, 0) is None


def test_strings_take_runs_in_a_row_on_a_few_benches_of_one_group() -> None:
    prep, start, _obj = _start(200, 10, 12)
    search = Search(prep, start, pool=True)
    rng = random.Random(5)
    ci = 0
    ends = sorted(search.placed[r][2] for r in search.comp_runs[ci])
    lo, hi = ends[len(ends) // 3], ends[len(ends) // 2]
    search.active[99] = (ci, lo, hi)
    multi = 0
    for _ in range(300):
        picked = strings(search, rng, rng.choice((4, 10, 24)))
        if picked is None:  # every run of the string was inside the blocked window
            continue
        group, chosen = picked
        assert chosen and len(set(chosen)) == len(chosen)
        assert {search.comp_of[search.placed[r][0]] for r in chosen} == {group}
        cache = search.concrete_of(search.comp_pools[group])
        on = {}
        for r in chosen:
            bench, st, en = cache[search.placed[r][0]].runs[r]
            on.setdefault(bench, []).append(r)
            if group == ci:
                assert en <= lo or st >= hi, "a string must keep out of a window being solved"
        assert len(on) <= 4
        multi += int(len(on) > 1)
        for bench, mine in on.items():
            row = sorted((v[1], r) for pid in search.comps[group] for r, v in cache[pid].runs.items() if v[0] == bench)
            order = [r for _s, r in row]
            at = sorted(order.index(r) for r in mine)
            # in a row, apart from runs left out for overlapping the blocked window
            between = order[at[0] : at[-1] + 1]
            skipped = [r for r in between if r not in mine]
            assert all(
                not (cache[search.placed[r][0]].runs[r][2] <= lo or cache[search.placed[r][0]].runs[r][1] >= hi)
                for r in skipped
            ), f"string on {bench} has a gap"
    assert multi > 100, "strings should often span several benches"

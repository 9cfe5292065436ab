"""``solve``: one entry point for every solver, with the same guarantees.

Whatever the solver, the answer carries the objective, a proven lower bound (the solver's own
and :mod:`.bounds`, whichever is higher), the gap and the times. The greedy schedule (or the
previous schedule with the new runs inserted) is always computed first: it is the fallback
if a solver finds nothing better, the hint for CP-SAT and the MIP start for Gurobi.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from fastlims.scheduling.bounds import LowerBound, lower_bound
from fastlims.scheduling.cpsat import CpModel, run_cpsat
from fastlims.scheduling.greedy import best_greedy, first_failure
from fastlims.scheduling.lns import LnsTuning, improve
from fastlims.scheduling.models import (
    Assignment,
    FrozenAssignment,
    InfeasibleError,
    NoScheduleFoundError,
    Problem,
    Schedule,
    minutes_from,
    objective_parts,
)
from fastlims.scheduling.prepare import Prepared, fits, insert_busy, prepare
from fastlims.scheduling.search import LnsStats
from fastlims.scheduling.split import improve_split

SolverName = Literal["cpsat", "greedy", "gurobi", "eft"]
_HORIZON_TRIES = 3


def freeze_started(previous: Schedule, origin: datetime) -> tuple[FrozenAssignment, ...]:
    """Freeze every run of ``previous`` that starts before ``origin`` (the next problem's
    origin, usually now), in minutes from ``origin``: a re-solve must not move runs that have
    begun. Runs already frozen stay frozen."""
    shift = minutes_from(origin, previous.origin)
    return tuple(
        FrozenAssignment(a.run_id, a.bench_id, a.start + shift, a.end + shift)
        for a in previous.assignments
        if a.start + shift < 0 or a.frozen
    )


def reusable(prep: Prepared, previous: Schedule) -> list[Assignment]:
    """The previous schedule's placements of still-open runs that remain valid as they are
    (bench still fits, calendar and frozen runs still allow it), shifted to the new origin."""
    shift = minutes_from(prep.problem.origin, previous.origin)
    open_runs = {r.run_id: r for r in prep.runs}
    busy = prep.busy_lists()
    kept: list[Assignment] = []
    for a in sorted(previous.assignments, key=lambda a: a.start):
        run = open_runs.get(a.run_id)
        if run is None or a.bench_id not in prep.benches or not fits(run, prep.benches[a.bench_id]):
            continue
        start, end = a.start + shift, a.end + shift
        if start < prep.es[run.run_id] or (run.deadline is not None and end > run.deadline):
            continue
        starts, ends = busy[a.bench_id]
        fit = prep.index[a.bench_id].earliest_fit(run.processing, run.may_pause, start, starts, ends)
        if fit != (start, end):
            continue
        insert_busy(starts, ends, start, end)
        kept.append(Assignment(run.run_id, a.bench_id, start, end))
    return kept


def _schedule(
    prep: Prepared,
    assignments: Sequence[Assignment],
    bound: int,
    solver: str,
    t0: float,
    first: float,
    time_limit_s: float,
    stats: dict[str, float],
    proven_optimal: bool = False,
) -> Schedule:
    full = list(prep.frozen) + sorted(assignments, key=lambda a: (a.start, a.bench_id, a.run_id))
    objective, makespan, lateness = objective_parts(prep.problem, full)
    bound = min(bound, objective)
    optimal = proven_optimal or bound >= objective
    gap = 0.0 if objective <= 0 else (objective - bound) / objective
    return Schedule(
        origin=prep.problem.origin,
        assignments=tuple(full),
        objective=objective,
        best_bound=objective if optimal else bound,
        gap=0.0 if optimal else gap,
        solver=solver,
        status="optimal" if optimal else "feasible",
        time_to_first_feasible_s=first,
        time_used_s=time.monotonic() - t0,
        time_limit_s=time_limit_s,
        makespan=makespan,
        weighted_lateness=lateness,
        stats=stats,
    )


def _incumbent(
    problem: Problem, previous: Schedule | None, orders: Sequence[str] | None = None
) -> tuple[Prepared, list[Assignment] | None, int | None, dict[str, float]]:
    """Prepare the problem (widening the horizon if the greedy runs out of it) and find the
    best of the fresh greedy schedule and the previous schedule with new runs inserted, over
    the greedy's priority rules or only ``orders``."""
    prep = prepare(problem)
    stats: dict[str, float] = {}
    for _ in range(_HORIZON_TRIES):
        fresh = best_greedy(prep, orders=orders)
        fail = first_failure(prep) if fresh is None else None
        if fresh is not None or fail is None or fail.past_deadline:
            break
        prep = prepare(problem, horizon=prep.horizon * 4)
    best = fresh
    if fresh is not None:
        stats["greedy_objective"] = float(fresh[1])
    if previous is not None:
        kept = reusable(prep, previous)
        stats["previous_runs_kept"] = float(len(kept))
        incremental = best_greedy(prep, kept, orders=orders)
        if incremental is not None:
            stats["incremental_objective"] = float(incremental[1])
            if best is None or incremental[1] < best[1]:
                best = incremental
    if best is None:
        return prep, None, None, stats
    return prep, best[0], best[1], stats


def _greedy_reason(prep: Prepared) -> list[str]:
    fail = first_failure(prep)
    if fail is None:
        return ["the greedy scheduler found no schedule"]
    r = fail.run
    if fail.past_deadline and r.deadline is not None:
        return [
            f"run {r.run_id} (request {r.request_id}): the list scheduler could not meet its deadline "
            f"{prep.fmt(r.deadline)} together with the other runs; solver='cpsat' searches further"
        ]
    return [
        f"run {r.run_id} (request {r.request_id}): no room on benches {', '.join(prep.compat[r.run_id])} "
        f"within {prep.horizon // 1440} days"
    ]


def _bound_stats(stats: dict[str, float], lb: LowerBound) -> None:
    stats["lb_objective"] = float(lb.objective)
    stats["lb_makespan"] = float(lb.makespan)
    stats["lb_weighted_lateness"] = float(lb.weighted_lateness)
    stats["lb_trivial_weighted_lateness"] = float(lb.trivial_lateness)


def solve(
    problem: Problem,
    solver: SolverName = "cpsat",
    time_limit_s: float = 10.0,
    previous: Schedule | None = None,
    *,
    workers: int = 2,
    seed: int = 0,
    pool: bool = True,
    strategy: Literal["auto", "full", "hybrid", "lns"] = "auto",
) -> Schedule:
    """Schedule every open run of ``problem``; frozen runs stay where they are.

    ``time_limit_s`` covers the whole call. With ``previous`` (the last schedule), its
    placements that are still valid seed the search, so adding a request re-solves from there.
    ``workers`` is CP-SAT's and Gurobi's thread count; ``pool`` lets CP-SAT pool identical
    benches; ``strategy`` picks CP-SAT on the whole model ("full"), large-neighbourhood search
    around it ("lns"), the whole model for half the time then the neighbourhood search
    ("hybrid"), or by default ("auto") hybrid up to ``LNS_ABOVE_RUNS`` open runs and LNS above,
    which did best here (bench/results/scheduling.json).
    Raises :class:`InfeasibleError` with one reason per run and constraint when no schedule
    exists, :class:`NoScheduleFoundError` if time ran out before any schedule was found,
    :class:`SolverUnavailableError` for a missing Gurobi.
    """
    t0 = time.monotonic()
    # the plain earliest-finish-time scheduler is the greedy with its release-order rule only
    prep, inc, inc_obj, stats = _incumbent(problem, previous, ["fifo"] if solver == "eft" else None)
    first = time.monotonic() - t0
    lb = lower_bound(prep, inc_obj)
    _bound_stats(stats, lb)
    stats["prepare_s"] = first
    if solver in ("greedy", "eft"):
        if inc is None:
            raise InfeasibleError(_greedy_reason(prep))
        return _schedule(prep, inc, lb.objective, solver, t0, first, time_limit_s, stats)
    if solver == "gurobi":
        from fastlims.scheduling.gurobi import solve_gurobi

        res = solve_gurobi(prep, inc, lb, time_limit_s - (time.monotonic() - t0), workers, seed)
        stats.update(res.stats)
        if res.assignments is None or (
            inc_obj is not None and inc is not None and res.objective is not None and res.objective > inc_obj
        ):
            if inc is None:
                raise NoScheduleFoundError("Gurobi found no schedule within the time limit")
            res_assign = inc
        else:
            res_assign = res.assignments
        g_first = first if inc is not None else (res.first_solution_s or 0.0)
        return _schedule(
            prep,
            res_assign,
            max(lb.objective, res.bound),
            "gurobi",
            t0,
            g_first,
            time_limit_s,
            stats,
            proven_optimal=res.optimal,
        )
    if solver != "cpsat":
        raise ValueError(f"unknown solver {solver!r}: use 'cpsat', 'greedy', 'eft' or 'gurobi'")
    if strategy == "auto":
        strategy = "lns" if len(prep.runs) > LNS_ABOVE_RUNS else "hybrid"
    if strategy == "lns" and inc is not None and inc_obj is not None:
        return _solve_lns(prep, inc, inc_obj, lb, stats, t0, first, time_limit_s, workers, seed, pool)
    share = 0.5 if strategy in ("hybrid", "lns") else 1.0
    return _solve_cpsat(prep, inc, inc_obj, lb, stats, t0, first, time_limit_s, workers, seed, pool, share)


LNS_ABOVE_RUNS = 150
"""Above this many open runs, CP-SAT's whole-model search barely moved from the greedy
schedule within 30 s on two cores (see bench/results/scheduling.json), so the neighbourhood
search gets all the time; below, the whole model runs first (it can prove optimality)."""


def _lns_stats(stats: dict[str, float], lstats: LnsStats) -> None:
    stats["lns_moves"] = float(lstats.moves)
    stats["lns_improving_moves"] = float(lstats.improving)
    stats["lns_optimal_moves"] = float(lstats.optimal_moves)
    stats["lns_final_size"] = float(lstats.final_size)
    stats["recreate_moves"] = float(lstats.recreate_moves)
    stats["recreate_improving_moves"] = float(lstats.recreate_improving)
    stats["recreate_start_temperature"] = lstats.start_temperature
    stats["split_failed_parts"] = float(lstats.failed_parts)


def _solve_lns(
    prep: Prepared,
    inc: list[Assignment],
    inc_obj: int,
    lb: LowerBound,
    stats: dict[str, float],
    t0: float,
    first: float,
    time_limit_s: float,
    workers: int,
    seed: int,
    pool: bool,
) -> Schedule:
    w_m = prep.makespan_weight
    horizon = prep.horizon
    if w_m > 0:
        horizon = min(horizon, max(lb.makespan, (inc_obj - lb.weighted_lateness) // w_m))
    found = improve_split(prep, inc, t0 + time_limit_s, workers, seed, horizon, lb.makespan, pool=pool)
    if found is None:
        found = improve(prep, inc, t0 + time_limit_s, horizon, lb.makespan, LnsTuning(workers, seed, pool=pool))
    out, obj, lstats = found
    _lns_stats(stats, lstats)
    chosen = out if obj < inc_obj else inc
    return _schedule(prep, chosen, lb.objective, "cpsat", t0, first, time_limit_s, stats)


def _solve_cpsat(
    prep: Prepared,
    inc: list[Assignment] | None,
    inc_obj: int | None,
    lb: LowerBound,
    stats: dict[str, float],
    t0: float,
    first: float,
    time_limit_s: float,
    workers: int,
    seed: int,
    pool: bool,
    whole_model_share: float = 1.0,
) -> Schedule:
    w_m = prep.makespan_weight
    horizon = prep.horizon
    if inc_obj is not None and w_m > 0:
        horizon = min(horizon, max(lb.makespan, (inc_obj - lb.weighted_lateness) // w_m))
    cm = CpModel(prep, horizon, lb.makespan, pool=pool)
    stats["model_build_s"] = time.monotonic() - t0 - first
    remaining = time_limit_s - (time.monotonic() - t0)
    res = run_cpsat(cm, remaining * whole_model_share, workers, seed, hint=inc)
    stats["cp_status_" + res.status.lower()] = 1.0
    stats["cp_solutions"] = float(res.solutions)
    stats["cp_bound"] = float(res.bound)
    if res.first_solution_s is not None:
        stats["cp_first_solution_s"] = res.first_solution_s + (time.monotonic() - t0 - res.wall_s)
    proven = res.status == "OPTIMAL"
    if res.status == "INFEASIBLE" and inc is None:
        raise InfeasibleError(_deadline_core(prep, max(1.0, time_limit_s / 4), workers, seed))
    if res.assignments is None or (inc_obj is not None and res.objective is not None and res.objective >= inc_obj):
        if inc is None:
            raise NoScheduleFoundError(
                f"CP-SAT found no schedule within {time_limit_s:.0f} s and the greedy scheduler could not meet "
                "every deadline; allow more time or relax deadlines"
            )
        chosen = inc
    else:
        chosen = res.assignments
    if res.first_solution_s is not None and inc is None:
        first = stats["cp_first_solution_s"]
    if not proven and whole_model_share < 1.0 and time.monotonic() < t0 + time_limit_s - 0.2:
        chosen_obj = objective_parts(prep.problem, list(chosen) + prep.frozen)[0]
        # no string removals here: on a few benches a string takes most of a group out at
        # once, and on 42 runs x 4 benches they made the result 1-2 % worse (two seeds each)
        tuning = LnsTuning(workers, seed, pool=pool, string_share=0.0)
        out, obj, lstats = improve(prep, chosen, t0 + time_limit_s, horizon, lb.makespan, tuning)
        _lns_stats(stats, lstats)
        if obj < chosen_obj:
            chosen = out
    return _schedule(
        prep,
        chosen,
        max(lb.objective, res.bound),
        "cpsat",
        t0,
        first,
        time_limit_s,
        stats,
        proven_optimal=proven and inc_obj is not None,
    )


def _deadline_core(prep: Prepared, time_limit_s: float, workers: int, seed: int) -> list[str]:
    """Name runs whose deadlines cannot all hold together (an infeasible core of CP-SAT)."""
    cm = CpModel(prep, prep.horizon, 0, deadline_assumptions=True)
    res = run_cpsat(cm, time_limit_s, workers, seed, assumptions=list(cm.deadline_lits.values()))
    runs = {r.run_id: r for r in prep.runs}
    core = res.core or sorted(cm.deadline_lits)
    names = ", ".join(core)
    return [
        f"run {rid} (request {runs[rid].request_id}): deadline {prep.fmt(runs[rid].deadline or 0)} cannot be met "
        f"together with the deadlines of runs {names} on their benches' calendars"
        for rid in core
    ]

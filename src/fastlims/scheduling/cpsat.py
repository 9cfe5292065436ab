"""OR-Tools CP-SAT model: one optional interval per run and bench pool, calendar gaps as start
domains, identical benches pooled into cumulative resources (see :mod:`.pools`).

Why this shape:
* A strict run must lie inside one working window, so its start domain is the union of the
  windows shortened by its length; no extra constraint is needed for closed hours.
* A pausable run's span depends on where it starts (how many nights it waits over). Its starts
  are grouped by span: one literal per distinct span (a handful: none, a night, a weekend ...)
  whatever the horizon.
* The makespan is bounded by what the incumbent (greedy) schedule allows together with the
  lateness lower bound, which keeps domains small.
* The incumbent is given as a hint; presolve would otherwise silently drop it on large models,
  so ``keep_all_feasible_solutions_in_presolve`` is set (FINDINGS).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from fastlims.scheduling.models import Assignment, Run
from fastlims.scheduling.pools import BenchPool, decode, make_pools
from fastlims.scheduling.prepare import Prepared


@dataclass
class _Alt:
    pool: BenchPool
    lit: cp_model.IntVar | None  # None: the run's only alternative
    spans: dict[int, list[tuple[int, int]]]  # span -> start ranges
    span_lits: dict[int, cp_model.IntVar] = field(default_factory=dict)
    span: cp_model.IntVar | None = None
    end: cp_model.IntVar | None = None


@dataclass
class _RunVars:
    run: Run
    start: cp_model.IntVar
    alts: list[_Alt]


@dataclass
class CpResult:
    """What a CP-SAT call returns to :func:`fastlims.scheduling.solve`."""

    assignments: list[Assignment] | None
    objective: int | None
    bound: int
    status: str
    first_solution_s: float | None
    solutions: int
    wall_s: float
    core: list[str] = field(default_factory=list)


class _Progress(cp_model.CpSolverSolutionCallback):
    def __init__(self, t0: float) -> None:
        super().__init__()
        self.t0 = t0
        self.first: float | None = None
        self.count = 0

    def on_solution_callback(self) -> None:
        if self.first is None:
            self.first = time.monotonic() - self.t0
        self.count += 1


class CpModel:
    """The CP-SAT model of one prepared problem."""

    def __init__(
        self,
        prep: Prepared,
        horizon: int,
        makespan_lb: int,
        pool: bool = True,
        deadline_assumptions: bool = False,
        only_runs: Sequence[Run] | None = None,
        fixed: Sequence[Assignment] = (),
        window: tuple[int, int] | None = None,
    ) -> None:
        self.prep = prep
        self.model = cp_model.CpModel()
        self.pools = make_pools(prep, pool)
        self.horizon = horizon
        self.deadline_lits: dict[str, cp_model.IntVar] = {}
        m = self.model
        runs = list(prep.runs if only_runs is None else only_runs)
        pool_of_bench = {b: p for p in self.pools for b in p.bench_ids}
        intervals: dict[int, list[cp_model.IntervalVar]] = {p.pool_id: [] for p in self.pools}
        for p in self.pools:
            for b in p.bench_ids:
                for s, e in prep.frozen_busy[b]:
                    if e > 0:
                        intervals[p.pool_id].append(m.new_fixed_size_interval_var(s, e - s, f"frozen_{b}_{s}"))
        for a in fixed:
            p = pool_of_bench[a.bench_id]
            intervals[p.pool_id].append(m.new_fixed_size_interval_var(a.start, a.end - a.start, f"fix_{a.run_id}"))
        max_end = max([prep.frozen_makespan] + [a.end for a in fixed])
        self.makespan = m.new_int_var(max(makespan_lb, max_end), max(horizon, makespan_lb, max_end), "makespan")
        self.vars: list[_RunVars] = []
        for run in runs:
            rid = run.run_id
            limit = horizon if window is None else min(horizon, window[1])
            first = prep.es[rid] if window is None else max(prep.es[rid], window[0])
            if run.deadline is not None and not deadline_assumptions:
                limit = min(limit, run.deadline)
            pools_seen: set[int] = set()
            alts: list[_Alt] = []
            for b in prep.compat[rid]:
                p = pool_of_bench[b]
                if p.pool_id in pools_seen:
                    continue
                pools_seen.add(p.pool_id)
                pieces = prep.index[p.representative].pieces(run.processing, run.may_pause, first, limit)
                if not pieces:
                    continue
                spans: dict[int, list[tuple[int, int]]] = {}
                for lo, hi, d in pieces:
                    spans.setdefault(d, []).append((lo, hi))
                alts.append(_Alt(p, None, spans))
            if not alts:
                raise ValueError(f"run {rid} has no start within the model horizon")
            all_ranges = sorted(r for alt in alts for rs in alt.spans.values() for r in rs)
            start = m.new_int_var_from_domain(cp_model.Domain.from_intervals([list(r) for r in all_ranges]), f"s_{rid}")
            rv = _RunVars(run, start, alts)
            single = len(alts) == 1
            if not single:
                lits = []
                for alt in alts:
                    alt.lit = m.new_bool_var(f"on_{rid}_{alt.pool.pool_id}")
                    lits.append(alt.lit)
                m.add_exactly_one(lits)
            for alt in alts:
                presence = alt.lit
                span_values = sorted(alt.spans)
                if len(span_values) == 1 and not run.may_pause:
                    d = span_values[0]
                    if not single:
                        assert presence is not None
                        dom = cp_model.Domain.from_intervals([list(r) for r in alt.spans[d]])
                        m.add_linear_expression_in_domain(start, dom).only_enforce_if(presence)
                        iv = m.new_optional_fixed_size_interval_var(start, d, presence, f"iv_{rid}_{alt.pool.pool_id}")
                        m.add(self.makespan >= start + d).only_enforce_if(presence)
                    else:
                        iv = m.new_fixed_size_interval_var(start, d, f"iv_{rid}")
                        m.add(self.makespan >= start + d)
                    intervals[alt.pool.pool_id].append(iv)
                    continue
                # pausable: one literal per distinct span
                span_var = m.new_int_var_from_domain(
                    cp_model.Domain.from_values(span_values), f"d_{rid}_{alt.pool.pool_id}"
                )
                end = m.new_int_var(0, horizon + span_values[-1], f"e_{rid}_{alt.pool.pool_id}")
                alt.end = end
                alt.span = span_var
                span_lits = []
                for d in span_values:
                    lit = m.new_bool_var(f"span_{rid}_{alt.pool.pool_id}_{d}")
                    alt.span_lits[d] = lit
                    span_lits.append(lit)
                    dom = cp_model.Domain.from_intervals([list(r) for r in alt.spans[d]])
                    m.add_linear_expression_in_domain(start, dom).only_enforce_if(lit)
                    m.add(span_var == d).only_enforce_if(lit)
                if presence is None:
                    m.add_exactly_one(span_lits)
                    iv = m.new_interval_var(start, span_var, end, f"iv_{rid}")
                    m.add(self.makespan >= end)
                else:
                    m.add(sum(span_lits) == presence)
                    iv = m.new_optional_interval_var(start, span_var, end, presence, f"iv_{rid}_{alt.pool.pool_id}")
                    m.add(self.makespan >= end).only_enforce_if(presence)
                intervals[alt.pool.pool_id].append(iv)
            if run.deadline is not None and deadline_assumptions:
                dl = m.new_bool_var(f"deadline_{rid}")
                self.deadline_lits[rid] = dl
                for alt in alts:
                    conds = [dl] + ([alt.lit] if alt.lit is not None else [])
                    if alt.end is not None:
                        m.add(alt.end <= run.deadline).only_enforce_if(conds)
                    else:
                        m.add(start + run.processing <= run.deadline).only_enforce_if(conds)
            self.vars.append(rv)
        for p in self.pools:
            ivs = intervals[p.pool_id]
            if len(ivs) < 2:
                continue
            if p.capacity == 1:
                m.add_no_overlap(ivs)
            else:
                m.add_cumulative(ivs, [1] * len(ivs), p.capacity)
        pref = sum(prep.weight[r.run_id] * r.earliest_start for r in runs)
        fixed_late = 0
        by_id = {r.run_id: r for r in prep.problem.runs}
        for a in fixed:
            fixed_late += prep.weight[a.run_id] * max(0, a.start - by_id[a.run_id].earliest_start)
        self.offset = prep.frozen_lateness + fixed_late - pref
        obj = prep.makespan_weight * self.makespan + sum(prep.weight[rv.run.run_id] * rv.start for rv in self.vars)
        m.minimize(obj + self.offset)

    def chronological_strategy(self) -> None:
        """Branch on the run with the lowest possible start, at its lowest value: schedules are
        built left to right, which finds improving solutions of small neighbourhoods quickly."""
        self.model.add_decision_strategy(
            [rv.start for rv in self.vars], cp_model.CHOOSE_LOWEST_MIN, cp_model.SELECT_MIN_VALUE
        )

    def hint(self, assignments: Sequence[Assignment]) -> None:
        """Give a complete solution as a hint (every model variable gets a value)."""
        by_run = {a.run_id: a for a in assignments}
        pool_of_bench = {b: p.pool_id for p in self.pools for b in p.bench_ids}
        makespan = max([self.prep.frozen_makespan] + [a.end for a in assignments])
        m = self.model
        m.clear_hints()  # type: ignore[no-untyped-call]
        m.add_hint(self.makespan, makespan)
        for rv in self.vars:
            a = by_run[rv.run.run_id]
            m.add_hint(rv.start, a.start)
            chosen = pool_of_bench[a.bench_id]
            for alt in rv.alts:
                on = alt.pool.pool_id == chosen
                if alt.lit is not None:
                    m.add_hint(alt.lit, on)
                if alt.span_lits:
                    span = a.end - a.start
                    for d, lit in alt.span_lits.items():
                        m.add_hint(lit, on and d == span)
                    assert alt.end is not None and alt.span is not None
                    # an absent alternative's span and end are free: hint consistent values
                    d = span if on else min(alt.span_lits)
                    m.add_hint(alt.span, d)
                    m.add_hint(alt.end, a.start + d)

    def decode(self, solver: cp_model.CpSolver) -> list[Assignment]:
        """Concrete bench assignments of the solver's current solution."""
        placed: dict[int, list[tuple[str, int, int]]] = {p.pool_id: [] for p in self.pools}
        for rv in self.vars:
            s = solver.value(rv.start)
            for alt in rv.alts:
                if alt.lit is not None and not solver.boolean_value(alt.lit):
                    continue
                e = solver.value(alt.end) if alt.end is not None else s + rv.run.processing
                placed[alt.pool.pool_id].append((rv.run.run_id, s, e))
                break
        out: list[Assignment] = []
        for p in self.pools:
            out.extend(decode(p, placed[p.pool_id], self.prep))
        return out


def run_cpsat(
    cm: CpModel,
    time_limit_s: float,
    workers: int,
    seed: int,
    hint: Sequence[Assignment] | None = None,
    assumptions: Sequence[cp_model.IntVar] = (),
    log: bool = False,
    extra: dict[str, object] | None = None,
) -> CpResult:
    """Solve the model within the time limit and decode the best solution found."""
    t0 = time.monotonic()
    if hint is not None:
        cm.hint(hint)
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.max_time_in_seconds = max(0.05, time_limit_s)
    params.num_workers = max(1, workers)
    params.random_seed = seed
    params.log_search_progress = log
    if hint is not None:
        params.keep_all_feasible_solutions_in_presolve = True
    for key, value in (extra or {}).items():
        setattr(params, key, value)
    if assumptions:
        cm.model.add_assumptions(list(assumptions))
    cb = _Progress(t0)
    status = solver.solve(cm.model, cb)
    wall = time.monotonic() - t0
    name = solver.status_name(status)
    bound = int(solver.best_objective_bound) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else 0
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return CpResult(cm.decode(solver), int(round(solver.objective_value)), bound, name, cb.first, cb.count, wall)
    core: list[str] = []
    if status == cp_model.INFEASIBLE and assumptions:
        lit_to_run = {lit.index: rid for rid, lit in cm.deadline_lits.items()}
        core = [lit_to_run[i] for i in solver.sufficient_assumptions_for_infeasibility() if i in lit_to_run]
    return CpResult(None, None, bound, name, None, 0, wall, core)

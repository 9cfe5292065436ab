"""Gurobi MILP (the seed's choice) for sites with a licence: ``pip install fastlims[gurobi]``.

Imported lazily, so the package works without gurobipy. The formulation is the classic
big-M disjunctive one the seed describes, on concrete benches: a bench literal per run and
compatible bench, a calendar piece literal per run and start window (the same pieces CP-SAT
uses), an order literal per pair of runs that could meet on a bench, and one per run and
frozen run it could meet. It grows quadratically: the free pip licence (2,000 variables and
2,000 constraints, for non-production use) takes about 40 runs on 4 benches. The greedy
schedule is given as a MIP start, as CP-SAT gets it as a hint, so both start level.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastlims.scheduling.bounds import LowerBound
from fastlims.scheduling.models import Assignment, SolverUnavailableError
from fastlims.scheduling.pools import make_pools
from fastlims.scheduling.prepare import Prepared


@dataclass
class GurobiResult:
    assignments: list[Assignment] | None
    objective: int | None
    bound: int
    optimal: bool
    first_solution_s: float | None
    stats: dict[str, float] = field(default_factory=dict)


def _import_gurobi() -> Any:
    try:
        import gurobipy
    except ImportError as exc:
        raise SolverUnavailableError(
            "solver='gurobi' needs gurobipy: pip install 'fastlims[gurobi]' (and a Gurobi licence for "
            "production use); solver='cpsat' needs nothing more"
        ) from exc
    return gurobipy


def model_size(prep: Prepared, horizon: int) -> tuple[int, int]:
    """``(variables, constraints)`` the MILP would have, to check a size-limited licence first."""
    spec = _Spec(prep, horizon)
    return spec.n_vars, spec.n_cons


class _Spec:
    """Index sets of the MILP, computed without gurobipy."""

    def __init__(self, prep: Prepared, horizon: int) -> None:
        self.prep = prep
        pools = make_pools(prep, True)
        pool_of = {b: p for p in pools for b in p.bench_ids}
        self.pieces: dict[str, list[tuple[int, int, int, int]]] = {}  # run -> (pool, lo, hi, span)
        self.benches: dict[str, list[str]] = {}
        self.range: dict[str, tuple[int, int]] = {}
        for r in prep.runs:
            limit = horizon if r.deadline is None else min(horizon, r.deadline)
            seen: set[int] = set()
            items: list[tuple[int, int, int, int]] = []
            for b in prep.compat[r.run_id]:
                p = pool_of[b]
                if p.pool_id in seen:
                    continue
                seen.add(p.pool_id)
                for lo, hi, d in prep.index[b].pieces(r.processing, r.may_pause, prep.es[r.run_id], limit):
                    items.append((p.pool_id, lo, hi, d))
            self.pieces[r.run_id] = items
            self.benches[r.run_id] = [
                b for b in prep.compat[r.run_id] if any(pool_of[b].pool_id == it[0] for it in items)
            ]
            if items:
                self.range[r.run_id] = (min(i[1] for i in items), max(i[2] + i[3] for i in items))
            else:
                self.range[r.run_id] = (0, 0)
        self.pool_of = pool_of
        runs = prep.runs
        self.pairs: list[tuple[str, str, list[str]]] = []
        for i, a in enumerate(runs):
            ba = set(self.benches[a.run_id])
            ra = self.range[a.run_id]
            for other in runs[i + 1 :]:
                common = [x for x in self.benches[other.run_id] if x in ba]
                rb = self.range[other.run_id]
                if common and ra[0] < rb[1] and rb[0] < ra[1]:
                    self.pairs.append((a.run_id, other.run_id, common))
        self.frozen_pairs: list[tuple[str, str, int, int]] = []  # run, bench, fs, fe
        for r in runs:
            ra = self.range[r.run_id]
            for bench in self.benches[r.run_id]:
                for fs, fe in prep.frozen_busy[bench]:
                    if fs < ra[1] and ra[0] < fe:
                        self.frozen_pairs.append((r.run_id, bench, fs, fe))
        n_vars = 1  # makespan
        n_cons = 0
        for r in runs:
            n_vars += 1  # start
            nb = len(self.benches[r.run_id])
            npc = len(self.pieces[r.run_id])
            n_vars += (nb if nb > 1 else 0) + (npc if npc > 1 else 0)
            n_cons += 1  # makespan
            if npc > 1:
                n_cons += 3  # one piece, start >= lo, start <= hi
            if nb > 1:
                n_cons += len({p[0] for p in self.pieces[r.run_id]})  # bench literals follow the pool
        for _a, _b, common in self.pairs:
            n_vars += 1
            n_cons += 2 * len(common)
        n_vars += len(self.frozen_pairs)
        n_cons += 2 * len(self.frozen_pairs)
        self.n_vars = n_vars
        self.n_cons = n_cons


def solve_gurobi(
    prep: Prepared,
    incumbent: Sequence[Assignment] | None,
    lb: LowerBound,
    time_limit_s: float,
    workers: int,
    seed: int,
) -> GurobiResult:
    """Solve the big-M MILP with gurobipy; raises SolverUnavailableError without it or when the
    licence refuses the model's size."""
    gp = _import_gurobi()
    t0 = time.monotonic()
    w_m = prep.makespan_weight
    horizon = prep.horizon
    if incumbent is not None and w_m > 0:
        from fastlims.scheduling.models import objective_parts

        inc_obj = objective_parts(prep.problem, list(incumbent) + prep.frozen)[0]
        horizon = min(horizon, max(lb.makespan, (inc_obj - lb.weighted_lateness) // w_m))
    spec = _Spec(prep, horizon)
    big_m = horizon + max([1] + [p[3] for items in spec.pieces.values() for p in items])
    env = gp.Env(empty=True)
    env.setParam("OutputFlag", 0)
    try:
        env.start()
    except gp.GurobiError as exc:
        raise SolverUnavailableError(f"Gurobi licence or environment problem: {exc}") from exc
    m = gp.Model("fastlims", env=env)
    try:
        return _build_and_solve(gp, m, prep, spec, incumbent, lb, horizon, big_m, time_limit_s, workers, seed, t0)
    finally:
        m.dispose()
        env.dispose()


def _build_and_solve(
    gp: Any,
    m: Any,
    prep: Prepared,
    spec: _Spec,
    incumbent: Sequence[Assignment] | None,
    lb: LowerBound,
    horizon: int,
    big_m: int,
    time_limit_s: float,
    workers: int,
    seed: int,
    t0: float,
) -> GurobiResult:
    grb = gp.GRB
    w_m = prep.makespan_weight
    makespan = m.addVar(
        lb=max(lb.makespan, prep.frozen_makespan),
        ub=max(horizon, lb.makespan) + big_m,
        vtype=grb.INTEGER,
        name="makespan",
    )
    start: dict[str, Any] = {}
    end_expr: dict[str, Any] = {}
    x: dict[tuple[str, str], Any] = {}
    z: dict[str, list[Any]] = {}
    for r in prep.runs:
        rid = r.run_id
        items = spec.pieces[rid]
        lo = min(p[1] for p in items)
        hi = max(p[2] for p in items)
        s = m.addVar(lb=lo, ub=hi, vtype=grb.INTEGER, name=f"s[{rid}]")
        start[rid] = s
        if len(items) > 1:
            zs = [m.addVar(vtype=grb.BINARY, name=f"z[{rid},{k}]") for k in range(len(items))]
            m.addConstr(gp.quicksum(zs) == 1)
            m.addConstr(s >= gp.quicksum(p[1] * v for p, v in zip(items, zs, strict=True)))
            m.addConstr(s <= gp.quicksum(p[2] * v for p, v in zip(items, zs, strict=True)))
            end_expr[rid] = s + gp.quicksum(p[3] * v for p, v in zip(items, zs, strict=True))
        else:
            zs = [1]
            end_expr[rid] = s + items[0][3]
        z[rid] = zs
        benches = spec.benches[rid]
        if len(benches) > 1:
            for b in benches:
                x[rid, b] = m.addVar(vtype=grb.BINARY, name=f"x[{rid},{b}]")
            for pool_id in {p[0] for p in items}:
                m.addConstr(
                    gp.quicksum(x[rid, b] for b in benches if spec.pool_of[b].pool_id == pool_id)
                    == gp.quicksum(v for p, v in zip(items, zs, strict=True) if p[0] == pool_id)
                )
        else:
            x[rid, benches[0]] = 1
        m.addConstr(makespan >= end_expr[rid])
    order: dict[tuple[str, str], Any] = {}
    for a, b, common in spec.pairs:
        y = m.addVar(vtype=grb.BINARY, name=f"y[{a},{b}]")
        order[a, b] = y
        for bench in common:
            both = 2 - x[a, bench] - x[b, bench]
            m.addConstr(start[b] >= end_expr[a] - big_m * (1 - y) - big_m * both)
            m.addConstr(start[a] >= end_expr[b] - big_m * y - big_m * both)
    before_frozen: dict[tuple[str, str, int], Any] = {}
    for rid, bench, fs, fe in spec.frozen_pairs:
        v = m.addVar(vtype=grb.BINARY, name=f"f[{rid},{bench},{fs}]")
        before_frozen[rid, bench, fs] = v
        off = 1 - x[rid, bench]
        m.addConstr(end_expr[rid] <= fs + big_m * (1 - v) + big_m * off)
        m.addConstr(start[rid] >= fe - big_m * v - big_m * off)
    pref = sum(prep.weight[r.run_id] * r.earliest_start for r in prep.runs)
    m.setObjective(
        w_m * makespan
        + gp.quicksum(prep.weight[r.run_id] * start[r.run_id] for r in prep.runs)
        + (prep.frozen_lateness - pref),
        grb.MINIMIZE,
    )
    m.update()
    stats = {"gurobi_vars": float(m.NumVars), "gurobi_constraints": float(m.NumConstrs)}
    if incumbent is not None:
        _mip_start(prep, spec, incumbent, makespan, start, x, z, order, before_frozen)
    m.Params.TimeLimit = max(0.1, time_limit_s - (time.monotonic() - t0))
    m.Params.Threads = max(1, workers)
    m.Params.Seed = seed
    first: list[float] = []

    def callback(model: Any, where: int) -> None:
        if where == grb.Callback.MIPSOL and not first:
            first.append(time.monotonic() - t0)

    try:
        m.optimize(callback)
    except gp.GurobiError as exc:
        raise SolverUnavailableError(
            f"Gurobi refused the model ({int(stats['gurobi_vars'])} variables, "
            f"{int(stats['gurobi_constraints'])} constraints): {exc}; the free pip licence stops at 2,000 of "
            "each, about 40 runs on 4 benches"
        ) from exc
    bound = int(-(-(m.ObjBound - 1e-6) // 1)) if m.SolCount or m.Status == grb.OPTIMAL else 0
    stats["gurobi_runtime_s"] = float(m.Runtime)
    stats["gurobi_bound"] = float(bound)
    if m.SolCount == 0:
        return GurobiResult(None, None, bound, False, None, stats)
    out: list[Assignment] = []
    for r in prep.runs:
        rid = r.run_id
        s_val = int(round(start[rid].X))
        items = spec.pieces[rid]
        k = 0 if len(items) == 1 else max(range(len(items)), key=lambda i: z[rid][i].X)
        benches = spec.benches[rid]
        bench = benches[0] if len(benches) == 1 else max(benches, key=lambda b: x[rid, b].X)
        out.append(Assignment(rid, bench, s_val, s_val + items[k][3]))
    from fastlims.scheduling.models import objective_parts

    obj = objective_parts(prep.problem, out + prep.frozen)[0]
    return GurobiResult(out, obj, bound, m.Status == grb.OPTIMAL, first[0] if first else None, stats)


def _mip_start(
    prep: Prepared,
    spec: _Spec,
    incumbent: Sequence[Assignment],
    makespan: Any,
    start: dict[str, Any],
    x: dict[tuple[str, str], Any],
    z: dict[str, list[Any]],
    order: dict[tuple[str, str], Any],
    before_frozen: dict[tuple[str, str, int], Any],
) -> None:
    by_run = {a.run_id: a for a in incumbent}
    makespan.Start = max([prep.frozen_makespan] + [a.end for a in incumbent])
    for r in prep.runs:
        a = by_run[r.run_id]
        start[r.run_id].Start = a.start
        pool_id = spec.pool_of[a.bench_id].pool_id
        items = spec.pieces[r.run_id]
        if len(items) > 1:
            for p, v in zip(items, z[r.run_id], strict=True):
                v.Start = 1 if (p[0] == pool_id and p[1] <= a.start <= p[2] and p[3] == a.end - a.start) else 0
        for (rid, b), v in x.items():
            if rid == r.run_id and not isinstance(v, int):
                v.Start = 1 if b == a.bench_id else 0
    for (a_id, b_id), y in order.items():
        y.Start = 1 if by_run[a_id].start <= by_run[b_id].start else 0
    for (rid, _bench, fs), v in before_frozen.items():
        v.Start = 1 if by_run[rid].start < fs else 0

"""Lower bounds on the objective, independent of any solver.

Makespan and weighted lateness are bounded separately (the minimum of a sum is at least the
sum of the minima) and both come from one relaxation per group of runs:

* Take a set of runs and the union B of the benches they may use. Replace B by a single
  machine whose speed at time t is the number of benches of B open at t (calendars,
  maintenance and frozen runs taken out). Any real schedule of these runs can be simulated on
  it by time sharing, so every bound of the fast machine holds for the real schedule.
* Releases are the earliest starts the calendars allow (``Prepared.est``), not just the
  preferred dates, so closed nights and weekends already count.
* Makespan: the fast machine processing all work as early as possible finishes no later than
  the real schedule; also no run ends before its own earliest end.
* Lateness: on the fast machine, preemptive highest-``weight/processing``-first minimises the
  weighted sum of *mean busy times* ``M_j`` (Goemans' LP relaxation; the exchange argument
  holds for any speed profile). A strict run has ``S_j = M_j - p_j / 2``; a pausable run
  ``S_j >= M_j - (D_j - p_j / 2)`` with ``D_j`` its longest possible span. Together with
  ``S_j >= est_j``: ``sum w S >= max(sum w est, LP - sum w delta)``.
* Groups: runs with the same set of compatible benches, and (separately) connected
  components of the run-bench compatibility graph; a partition gives a bound on the sum,
  the best of the partitions is kept; any single group bounds the makespan.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass

from fastlims.scheduling.models import Run
from fastlims.scheduling.prepare import Prepared, components


@dataclass(frozen=True)
class LowerBound:
    """A proven lower bound on the objective and its parts."""

    objective: int
    makespan: int
    weighted_lateness: int
    trivial_lateness: int


def _capacity_profile(prep: Prepared, benches: Iterable[str]) -> list[tuple[int, int]]:
    """``(time, capacity from then on)`` breakpoints: benches open and not held by frozen runs."""
    delta: dict[int, int] = {}
    for b in benches:
        busy = prep.frozen_busy[b]
        for a, e in prep.index[b].tl.windows:
            pieces = [(a, e)]
            for fs, fe in busy:
                nxt = []
                for x, y in pieces:
                    if fe <= x or fs >= y:
                        nxt.append((x, y))
                        continue
                    if fs > x:
                        nxt.append((x, fs))
                    if fe < y:
                        nxt.append((fe, y))
                pieces = nxt
            for x, y in pieces:
                delta[x] = delta.get(x, 0) + 1
                delta[y] = delta.get(y, 0) - 1
    out: list[tuple[int, int]] = []
    level = 0
    for t in sorted(delta):
        level += delta[t]
        out.append((t, level))
    return out


def _fast_machine(
    jobs: list[tuple[int, int, float]], profile: list[tuple[int, int]], after_capacity: int
) -> tuple[float, float]:
    """Preemptive highest-ratio-first on the fast machine.

    ``jobs`` are ``(release, processing, weight)``. Returns ``(sum of weight * mean busy time,
    time the last work completes)``.
    """
    jobs = sorted(jobs)
    heap: list[tuple[float, int, float]] = []  # (-ratio, idx, remaining)
    i = 0
    n = len(jobs)
    t = float(jobs[0][0]) if jobs else 0.0
    pi = 0  # profile index: capacity in force is profile[pi - 1]
    total = 0.0
    done_at = 0.0
    integral = [0.0] * n
    while i < n or heap:
        while i < n and jobs[i][0] <= t:
            r, p, w = jobs[i]
            heapq.heappush(heap, (-(w / p), i, float(p)))
            i += 1
        while pi < len(profile) and profile[pi][0] <= t:
            pi += 1
        cap = profile[pi - 1][1] if pi > 0 else 0
        if pi >= len(profile):
            cap = after_capacity
        next_change = float(profile[pi][0]) if pi < len(profile) else math.inf
        next_release = float(jobs[i][0]) if i < n else math.inf
        if not heap:
            t = next_release
            continue
        if cap <= 0:
            t = min(next_change, next_release)
            if math.isinf(t):  # nothing can ever run: no finite bound from this group
                return total, math.inf
            continue
        neg, idx, rem = heap[0]
        finish = t + rem / cap
        t_end = min(finish, next_change, next_release)
        integral[idx] += cap * (t_end * t_end - t * t) / 2.0
        rem -= cap * (t_end - t)
        if t_end >= finish or rem <= 1e-9:
            heapq.heappop(heap)
            p = jobs[idx][1]
            total += jobs[idx][2] * integral[idx] / p
            done_at = max(done_at, t_end)
        else:
            heapq.heapreplace(heap, (neg, idx, rem))
        t = t_end
    return total, done_at


def _max_span(prep: Prepared, run: Run, horizon: int) -> int:
    """Longest bench occupation of a pausable run starting before ``horizon``."""
    span = run.processing
    seen: set[tuple[object, ...]] = set()
    for b in prep.compat[run.run_id]:
        key = (prep.benches[b].kind, prep.benches[b].calendar)
        if key in seen:  # identical calendars give identical spans
            continue
        seen.add(key)
        for _lo, _hi, d in prep.index[b].pieces(run.processing, True, prep.es[run.run_id], horizon):
            span = max(span, d)
    return span


def _partitions(prep: Prepared) -> list[list[list[Run]]]:
    by_set: dict[frozenset[str], list[Run]] = {}
    for r in prep.runs:
        by_set.setdefault(frozenset(prep.compat[r.run_id]), []).append(r)
    return [list(by_set.values()), [runs for _benches, runs in components(prep)]]


def lower_bound(prep: Prepared, upper_bound: int | None = None) -> LowerBound:
    """The strongest bound this module can prove (see the module docstring for how).

    ``upper_bound``, the objective of a known schedule, limits how late an optimal schedule
    can start a run, which keeps the longest pause spans (and the work) small.
    """
    makespan_lb = max([prep.frozen_makespan] + list(prep.eet.values()))
    trivial = sum(prep.weight[r.run_id] * prep.est[r.run_id] for r in prep.runs)
    pref = sum(prep.weight[r.run_id] * r.earliest_start for r in prep.runs)
    horizon = prep.horizon
    if upper_bound is not None and prep.makespan_weight > 0:
        trivial_late = max(0, trivial - pref) + prep.frozen_lateness
        horizon = min(horizon, max(makespan_lb, (upper_bound - trivial_late) // prep.makespan_weight) + 1)
    spans = {r.run_id: _max_span(prep, r, horizon) for r in prep.runs if r.may_pause}
    best_sum_ws = float(trivial)
    for partition in _partitions(prep):
        part_sum = 0.0
        for group in partition:
            benches = sorted({b for r in group for b in prep.compat[r.run_id]})
            profile = _capacity_profile(prep, benches)
            g_trivial = sum(prep.weight[r.run_id] * prep.est[r.run_id] for r in group)
            variants = [
                # pausable runs' own terms bounded loosely through their longest span
                (
                    [(prep.est[r.run_id], r.processing, float(prep.weight[r.run_id])) for r in group],
                    sum(
                        prep.weight[r.run_id]
                        * ((spans[r.run_id] - r.processing / 2) if r.may_pause else r.processing / 2)
                        for r in group
                    ),
                    0.0,
                ),
                # or left out of the LP objective (still taking capacity) and bounded by est
                (
                    [
                        (
                            prep.est[r.run_id],
                            r.processing,
                            0.0 if r.may_pause else float(prep.weight[r.run_id]),
                        )
                        for r in group
                    ],
                    sum(prep.weight[r.run_id] * r.processing / 2 for r in group if not r.may_pause),
                    float(sum(prep.weight[r.run_id] * prep.est[r.run_id] for r in group if r.may_pause)),
                ),
            ]
            g_best = float(g_trivial)
            for jobs, delta, extra in variants:
                lp, done = _fast_machine(jobs, profile, len(benches))
                if not math.isinf(done):
                    makespan_lb = max(makespan_lb, math.ceil(done - 1e-6))
                g_best = max(g_best, lp - delta + extra)
            part_sum += g_best
        best_sum_ws = max(best_sum_ws, part_sum)
    lateness_lb = max(0, math.ceil(best_sum_ws - 1e-6 * max(1.0, abs(best_sum_ws))) - pref)
    trivial_lateness = max(0, trivial - pref)
    makespan_lb = max(makespan_lb, 0)
    objective = prep.makespan_weight * makespan_lb + lateness_lb + prep.frozen_lateness
    return LowerBound(
        objective=objective,
        makespan=makespan_lb,
        weighted_lateness=lateness_lb + prep.frozen_lateness,
        trivial_lateness=trivial_lateness + prep.frozen_lateness,
    )

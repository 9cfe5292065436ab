"""Large-neighbourhood search around CP-SAT for big instances.

With two cores, CP-SAT on the whole model runs one full search thread and interleaves its own
LNS on the other, each move of which rebuilds the whole model: on 200 and 1,000 runs it barely
improved the greedy schedule in 30 s (measured, see bench/results/scheduling.json). Here each
move frees a dozen or so runs of one group of compatible benches (a time slice, or two slices
far apart so runs can trade places across weeks), fixes every other run and solves that small
model with CP-SAT for a fraction of a second. Only fixed runs that overlap the move's time
window enter the sub-model, so a move costs milliseconds to build whatever the instance size.

Moves run in ``workers`` threads at once, one CP-SAT worker each (CP-SAT releases the GIL
while it solves). Two moves never share a bench group *and* overlap in time, so each one's
fixed runs stay fixed while it solves; a result is applied only if the whole schedule's
objective does not get worse. The neighbourhood size adapts per thread: it grows while moves
are solved to optimality and shrinks while they find nothing.

Runs are kept per bench *pool* (see :mod:`.pools`) and decoded to concrete benches at the end,
so identical benches never need to be told apart.

Beside the CP-SAT threads, a ruin-and-recreate thread takes runs out and puts them back one by
one where they cost least, in a randomised order: a move costs about half a millisecond of
Python instead of a CP-SAT call, so it covers far more of a large schedule in the same time.
Runs scattered over the whole horizon are what paid: on 1,000 runs, 28 s went from 81.9 M to
78.6-78.9 M (windowed removals alone gained 0.4 %; measured, one run each). Keeping each
bench's busy lists between moves and drawing the scattered runs in O(k) tripled the moves
(77.8-78.0 M), and one CP-SAT thread instead of two left the GIL to them (about 65,000 moves in
30 s; 77.4-77.8 M). The moves are annealed: worse schedules are taken with a probability
that cools to nothing by the deadline, starting from the first worsening moves seen
(77.4-77.5 M), and the best schedule seen is what is returned. Offering each run its own bench
first (10 % faster) and scattering 90 % of the removals instead of 80 % gave 77.1-77.4 M
(three seeds; removals of similar lengths, larger or smaller removals, no CP-SAT thread and
randomly skipped benches did no better). String removals (runs in a row on a few benches,
:func:`.recreate.strings`) then lowered the physical benches' lateness by about 5 %: on 1,000 runs
with the bench groups in processes of their own (:mod:`.split`), 76.5-76.8 M over four
seeds against 77.1-77.2 M without them (20-50 % of removals did equally well, 80 % worse).
It keeps out of the time windows the CP-SAT threads are solving.

The search's shared state is :mod:`.search`, the ruin-and-recreate moves :mod:`.recreate`; this
module runs the threads (:func:`improve`, tuned by :class:`LnsTuning`) and the CP-SAT moves.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from fastlims.scheduling.cpsat import CpModel, run_cpsat
from fastlims.scheduling.models import Assignment, objective_parts
from fastlims.scheduling.prepare import Prepared
from fastlims.scheduling.recreate import recreate_loop
from fastlims.scheduling.search import LnsStats, Search, decode_all

# quick restarts alternating the chronological strategy with CP-SAT's default search found
# more improvements per move than either alone (measured on 20- and 40-run neighbourhoods)
_MOVE_PARAMS: dict[str, object] = {"search_branching": cp_model.PORTFOLIO_WITH_QUICK_RESTART_SEARCH}


@dataclass(frozen=True)
class LnsTuning:
    """How :func:`improve` searches (the defaults are what measured best, see the module doc).

    ``workers`` threads in all: ``cp_threads`` (default: the workers left beside
    ``recreate_threads``, at least one) solve neighbourhoods with CP-SAT, each move freeing about
    ``size`` runs (adapted per thread) for at most ``sub_limit`` seconds; ``recreate_threads`` run
    ruin-and-recreate moves in Python beside them, annealed if ``anneal`` (else they never accept
    a worse schedule). Of their removals, ``string_share`` are strings; of the rest,
    ``scattered_share`` are scattered and the others time windows, of which ``two_window_share``
    are two slices far apart. ``pool``: identical benches are one pool. ``seed`` makes a search
    repeatable (as far as threads allow)."""

    workers: int
    seed: int
    pool: bool = True
    sub_limit: float = 0.15
    size: float = 12.0
    two_window_share: float = 0.4
    cp_threads: int | None = None
    recreate_threads: int = 1
    string_share: float = 0.4
    scattered_share: float = 0.9
    anneal: bool = True


def improve(
    prep: Prepared,
    start: Sequence[Assignment],
    stop_at: float,
    horizon: int,
    makespan_lb: int,
    tuning: LnsTuning,
    *,
    only: frozenset[int] | None = None,
) -> tuple[list[Assignment], int, LnsStats]:
    """Improve ``start`` (open runs only) until the monotonic clock reaches ``stop_at``, as
    ``tuning`` says. ``only`` names the bench groups (indices into :func:`.search.bench_groups`)
    the search may change; the others' runs stay where ``start`` has them. Returns the best
    schedule seen, its objective and what the search did."""
    search = Search(prep, start, tuning.pool, only)
    n_cp = max(1, tuning.workers - tuning.recreate_threads) if tuning.cp_threads is None else tuning.cp_threads
    threads = [
        threading.Thread(target=_cp_loop, args=(search, tuning, stop_at, horizon, makespan_lb, i), daemon=True)
        for i in range(n_cp)
    ]
    recreate_options = {
        "anneal": tuning.anneal,
        "string_share": tuning.string_share,
        "scattered_share": tuning.scattered_share,
        "two_window_share": tuning.two_window_share,
    }
    threads += [
        threading.Thread(
            target=recreate_loop, args=(search, stop_at, tuning.seed, n_cp + i), kwargs=recreate_options, daemon=True
        )
        for i in range(tuning.recreate_threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = decode_all(prep, search.pools, search.best_placement())
    return out, objective_parts(prep.problem, out + prep.frozen)[0], search.stats


def _cp_loop(search: Search, tuning: LnsTuning, stop_at: float, horizon: int, makespan_lb: int, tid: int) -> None:
    """One CP-SAT thread until ``stop_at``: pick a neighbourhood, solve it, apply it if no worse;
    the neighbourhood grows while moves are solved to optimality and shrinks while they find
    nothing."""
    rng = random.Random(tuning.seed * 7919 + tid)
    k_size = tuning.size
    while time.monotonic() < stop_at - 0.05:
        with search.held():
            picked = search.pick(rng, max(6, int(k_size)), tuning.two_window_share)
            if picked is None:
                wait = True
            else:
                wait = False
                ci, chosen, lo, hi = picked
                search.active[tid] = (ci, lo, hi)
                chosen_set = set(chosen)
                placed = dict(search.placed)
        if wait:
            time.sleep(0.005)
            continue
        try:
            improved, optimal = _move(
                search, placed, chosen_set, lo, hi, horizon, makespan_lb, stop_at, tuning.sub_limit, rng
            )
        finally:
            with search.held():
                search.active.pop(tid, None)
        if optimal:
            k_size = min(200.0, k_size * 1.1)
        elif not improved:
            k_size = max(8.0, k_size * 0.95)
    with search.held():
        search.stats.final_size = max(search.stats.final_size, int(k_size))


def _move(
    search: Search,
    placed: dict[str, tuple[int, int, int]],
    chosen: set[str],
    lo: int,
    hi: int,
    horizon: int,
    makespan_lb: int,
    stop_at: float,
    sub_limit: float,
    rng: random.Random,
) -> tuple[bool, bool]:
    """Solve one neighbourhood and apply it if the schedule gets no worse: (improved, optimal)."""
    prep, rep = search.prep, search.rep
    free = [search.runs[r] for r in chosen]
    fixed = [Assignment(rid, rep[pid], s, e) for rid, (pid, s, e) in placed.items() if rid not in chosen]
    cur_makespan = max([prep.frozen_makespan] + [e for _p, _s, e in placed.values()])
    try:
        cm = CpModel(
            prep,
            max(horizon, cur_makespan),
            makespan_lb,
            pool=search.pool,
            only_runs=free,
            fixed=fixed,
            window=(lo, max(hi, lo + 1)),
        )
    except ValueError:
        return False, False
    hint = [Assignment(r.run_id, rep[placed[r.run_id][0]], placed[r.run_id][1], placed[r.run_id][2]) for r in free]
    limit = min(sub_limit, stop_at - time.monotonic())
    if limit <= 0.02:
        return False, False
    cm.chronological_strategy()
    res = run_cpsat(cm, limit, 1, rng.randrange(1 << 30), hint=hint, extra=_MOVE_PARAMS)
    optimal = res.status == "OPTIMAL"
    with search.held():
        search.stats.moves += 1
        search.stats.optimal_moves += int(optimal)
        if res.assignments is None:
            return False, optimal
        before = {a.run_id: search.placed[a.run_id] for a in res.assignments}
        old_makespan = search.makespan
        for a in res.assignments:
            search.placed[a.run_id] = (search.pool_of[a.bench_id].pool_id, a.start, a.end)
        new_obj = search.objective()
        if new_obj > search.current:
            search.placed.update(before)
            search.makespan = old_makespan
            return False, optimal
        for rid, (pid, _s, _e) in before.items():
            search.version[pid] += 1
            search.version[search.placed[rid][0]] += 1
        improved = new_obj < search.current
        search.moved(new_obj)
        search.stats.improving += int(improved)
        return improved, optimal

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
:func:`_strings`) then lowered the physical benches' lateness by about 5 %: on 1,000 runs
with the bench groups in processes of their own (:mod:`.split`), 76.5-76.8 M over four
seeds against 77.1-77.2 M without them (20-50 % of removals did equally well, 80 % worse).
It keeps out of the time windows the CP-SAT threads are solving.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from ortools.sat.python import cp_model

from fastlims.scheduling.cpsat import CpModel, run_cpsat
from fastlims.scheduling.models import Assignment, objective_parts
from fastlims.scheduling.pools import BenchPool, decode, make_pools
from fastlims.scheduling.prepare import Prepared, components, insert_busy

# quick restarts alternating the chronological strategy with CP-SAT's default search found
# more improvements per move than either alone (measured on 20- and 40-run neighbourhoods)
_MOVE_PARAMS: dict[str, object] = {"search_branching": cp_model.PORTFOLIO_WITH_QUICK_RESTART_SEARCH}


RECREATE_SIZES = (4, 6, 10, 16, 24)
"""How many runs one ruin-and-recreate move takes out (one size drawn per move)."""


@dataclass
class LnsStats:
    moves: int = 0
    improving: int = 0
    optimal_moves: int = 0
    final_size: int = 0
    recreate_moves: int = 0
    recreate_improving: int = 0
    start_temperature: float = 0.0
    failed_parts: int = 0
    """Processes of a split search (:mod:`.split`) whose groups kept the start schedule."""


@dataclass
class _Concrete:
    """One pool's runs on concrete benches, as ruin-and-recreate sees them."""

    version: int
    runs: dict[str, tuple[str, int, int]]
    """``run_id -> (bench, start, end)``"""
    busy: dict[str, tuple[list[int], list[int]]]
    """``bench -> (starts, ends)``, sorted, frozen runs included (runs may touch, never overlap)"""


def _components(prep: Prepared, pools: list[BenchPool]) -> list[set[int]]:
    """Pools grouped as their benches are by :func:`.prepare.components`; a pool no run can
    use is a group of its own."""
    group_of = {b: i for i, (benches, _runs) in enumerate(components(prep)) for b in benches}
    comps: dict[object, set[int]] = {}
    for p in pools:
        comps.setdefault(group_of.get(p.representative, ("alone", p.pool_id)), set()).add(p.pool_id)
    return list(comps.values())


def bench_groups(prep: Prepared, pool: bool) -> list[frozenset[str]]:
    """The benches of each group a search moves runs within, indexed as ``only`` is."""
    pools = make_pools(prep, pool)
    by_id = {p.pool_id: p for p in pools}
    return [frozenset(b for pid in comp for b in by_id[pid].bench_ids) for comp in _components(prep, pools)]


def decode_all(prep: Prepared, pools: list[BenchPool], placed: dict[str, tuple[int, int, int]]) -> list[Assignment]:
    """Concrete benches for runs placed as ``run_id -> (pool_id, start, end)``."""
    per_pool: dict[int, list[tuple[str, int, int]]] = {p.pool_id: [] for p in pools}
    for rid, (pid, s, e) in placed.items():
        per_pool[pid].append((rid, s, e))
    out: list[Assignment] = []
    for p in pools:
        out.extend(decode(p, per_pool[p.pool_id], prep))
    return out


class _Search:
    """Shared state of the threads: the current placement and the moves being solved."""

    def __init__(
        self, prep: Prepared, start: Sequence[Assignment], pool: bool, only: frozenset[int] | None = None
    ) -> None:
        self.prep = prep
        self.pool = pool
        self.pools = make_pools(prep, pool)
        self.pool_of = {b: p for p in self.pools for b in p.bench_ids}
        self.rep = {p.pool_id: p.representative for p in self.pools}
        self.comps = _components(prep, self.pools)
        self.comp_of = {pid: i for i, comp in enumerate(self.comps) for pid in comp}
        self.runs = {r.run_id: r for r in prep.runs}
        self.placed = {a.run_id: (self.pool_of[a.bench_id].pool_id, a.start, a.end) for a in start}
        counts: dict[int, int] = {}
        for pid, _s, _e in self.placed.values():
            counts[pid] = counts.get(pid, 0) + 1
        # groups this search may change (the others stay as they are: another process has them)
        self.movable = frozenset(range(len(self.comps))) if only is None else only
        self.comp_weight = [
            sum(counts.get(pid, 0) for pid in comp) + 1 if i in self.movable else 0 for i, comp in enumerate(self.comps)
        ]
        self.comp_pools = [[p for p in self.pools if p.pool_id in comp] for comp in self.comps]
        # a run stays in its group of benches whatever moves it, so this is fixed
        self.comp_runs: list[list[str]] = [[] for _ in self.comps]
        for rid, (pid, _s, _e) in self.placed.items():
            self.comp_runs[self.comp_of[pid]].append(rid)
        self.lock = threading.Lock()
        # CP-SAT threads waiting for the lock: the ruin-and-recreate loop, which would
        # otherwise take it again at once, steps aside only then
        self.waiting = 0
        self._waiting_lock = threading.Lock()
        self.active: dict[int, tuple[int, int, int]] = {}  # thread -> (component, lo, hi)
        # concrete benches of each pool's runs and each bench's busy lists, kept between
        # ruin-and-recreate moves and rebuilt when a CP-SAT move changes the pool (its
        # version goes up)
        self.version = {p.pool_id: 0 for p in self.pools}
        self.concrete: dict[int, _Concrete] = {}
        self.makespan = 0
        self.current = self.objective()
        # the best placement seen: the current one while ``best_placed`` is None, else a copy
        # taken when an annealing move accepted something worse
        self.best = self.current
        self.best_placed: dict[str, tuple[int, int, int]] | None = None
        self.temperature = 0.0
        self.worse_seen: list[int] = []
        self.stats = LnsStats()
        self.critical_share = 0.3  # tail moves on the makespan-deciding bench group (0.1 did worse)

    def objective(self) -> int:
        """Objective of the current placement (the makespan counts every run, frozen included)."""
        prep = self.prep
        self.makespan = max([prep.frozen_makespan] + [e for _p, _s, e in self.placed.values()])
        late = sum(prep.weight[rid] * (s - self.runs[rid].earliest_start) for rid, (_p, s, _e) in self.placed.items())
        return prep.makespan_weight * self.makespan + late + prep.frozen_lateness

    def concrete_of(self, pools: list[BenchPool]) -> dict[int, _Concrete]:
        """Concrete benches and busy lists of ``pools``, decoding stale ones."""
        stale = {
            p.pool_id
            for p in pools
            if p.pool_id not in self.concrete or self.concrete[p.pool_id].version != self.version[p.pool_id]
        }
        if stale:
            per_pool: dict[int, list[tuple[str, int, int]]] = {pid: [] for pid in stale}
            for rid, (pid, st, en) in self.placed.items():
                if pid in stale:
                    per_pool[pid].append((rid, st, en))
            for p in pools:
                if p.pool_id in stale:
                    runs = {a.run_id: (a.bench_id, a.start, a.end) for a in decode(p, per_pool[p.pool_id], self.prep)}
                    ivs = {b: list(self.prep.frozen_busy[b]) for b in p.bench_ids}
                    for b, st, en in runs.values():
                        ivs[b].append((st, en))
                    busy: dict[str, tuple[list[int], list[int]]] = {}
                    for b, iv in ivs.items():
                        iv.sort()
                        busy[b] = ([st for st, _en in iv], [en for _st, en in iv])
                    self.concrete[p.pool_id] = _Concrete(self.version[p.pool_id], runs, busy)
        return {p.pool_id: self.concrete[p.pool_id] for p in pools}

    @contextmanager
    def held(self) -> Iterator[None]:
        """The lock, for the CP-SAT threads: announced, so ruin-and-recreate lets them in."""
        with self._waiting_lock:
            self.waiting += 1
        try:
            self.lock.acquire()
        finally:
            with self._waiting_lock:
                self.waiting -= 1
        try:
            yield
        finally:
            self.lock.release()

    def accept(self, obj: int, rng: random.Random) -> bool:
        """Whether a ruin-and-recreate move to objective ``obj`` is taken: never worse at
        temperature 0, else worse by d with probability exp(-d / temperature). The first
        worsening moves seen set the starting temperature. Caller holds the lock."""
        d = obj - self.current
        if d > 0 and len(self.worse_seen) < _CALIBRATION_MOVES:
            self.worse_seen.append(d)
        if d <= 0:
            return True
        if self.temperature <= 0 or rng.random() >= math.exp(-d / self.temperature):
            return False
        if self.best_placed is None and self.current == self.best:
            self.best_placed = dict(self.placed)
        return True

    def moved(self, obj: int) -> None:
        """Record the objective after an accepted move. Caller holds the lock."""
        self.current = obj
        if obj < self.best:
            self.best = obj
            self.best_placed = None

    def best_placement(self) -> dict[str, tuple[int, int, int]]:
        return self.placed if self.best_placed is None else self.best_placed

    def blocked(self, ci: int) -> list[tuple[int, int]]:
        """Time windows of group ``ci`` that other threads are solving (caller holds the lock)."""
        return [(a, b) for c, a, b in self.active.values() if c == ci]

    def pick(self, rng: random.Random, k: int, two_window_share: float) -> tuple[int, list[str], int, int] | None:
        """Choose runs to free (caller holds the lock); None if every choice clashes."""
        for _ in range(6):
            critical = rng.random() < self.critical_share
            if critical:
                # the group of benches where the makespan is decided, at its tail
                last = max(self.placed.values(), key=lambda v: v[2])
                ci = self.comp_of[last[0]]
                critical = ci in self.movable
            if not critical:
                ci = rng.choices(range(len(self.comps)), weights=self.comp_weight)[0]
            # at the tail, runs are taken by end: a long run started earlier may be the one
            # that sets the makespan
            at = 2 if critical else 1
            cands = sorted(self.comp_runs[ci], key=lambda r: self.placed[r][at])
            n_c = len(cands)
            if n_c == 0:
                continue
            move = 0.99 if critical else rng.random()
            if move < two_window_share and n_c >= 2 * k:
                # two slices far apart, so runs can trade places across days or weeks: the
                # tail (where the makespan is decided) or a random slice, with an earlier one
                half = max(3, k // 2)
                a_i = n_c - half if rng.random() < 0.5 else rng.randrange(half, n_c - half + 1)
                b_i = rng.randrange(0, max(1, a_i - half + 1))
                chosen = cands[b_i : b_i + half] + cands[a_i : a_i + half]
            else:
                centre = n_c - 1 - rng.randrange(max(1, min(n_c, k))) if move > 0.85 else rng.randrange(n_c)
                lo_i = max(0, min(centre - k // 2, n_c - k))
                chosen = cands[lo_i : lo_i + k]
            lo = min(self.placed[r][1] for r in chosen)
            hi = max(self.placed[r][2] for r in chosen)
            if all(hi <= a or lo >= b for a, b in self.blocked(ci)):
                return ci, chosen, lo, hi
        return None


def _scattered(search: _Search, rng: random.Random, k: int) -> tuple[int, list[str]] | None:
    """``k`` runs of one bench group taken anywhere in time (outside the windows other threads
    are solving), so a run can move far from where it is. Drawn in O(k), not by listing the
    group. Caller holds the lock."""
    ci = rng.choices(range(len(search.comps)), weights=search.comp_weight)[0]
    runs = search.comp_runs[ci]
    if not runs:
        return None
    blocked = search.blocked(ci)
    placed = search.placed
    k = min(k, len(runs))
    chosen: list[str] = []
    seen: set[str] = set()
    for _ in range(3 * k):
        rid = runs[rng.randrange(len(runs))]
        if rid in seen:
            continue
        seen.add(rid)
        _pid, st, en = placed[rid]
        if all(en <= a or st >= b for a, b in blocked):
            chosen.append(rid)
            if len(chosen) == k:
                break
    return (ci, chosen) if chosen else None


def _strings(search: _Search, rng: random.Random, k: int) -> tuple[int, list[str]] | None:
    """About ``k`` runs in a row on one to four benches of one group, around the time of a
    run drawn at random (outside the windows other threads are solving): a string removal.

    Scattered runs come back one by one into the gaps they left; a string frees a stretch of
    a bench, so its runs (and the long pausable runs that otherwise collect at the tail) can
    be packed into the day differently. Caller holds the lock."""
    ci = rng.choices(range(len(search.comps)), weights=search.comp_weight)[0]
    runs = search.comp_runs[ci]
    if not runs:
        return None
    cache = search.concrete_of(search.comp_pools[ci])
    seed_run = runs[rng.randrange(len(runs))]
    first_bench, t_seed, _end = cache[search.placed[seed_run][0]].runs[seed_run]
    others = [b for p in search.comp_pools[ci] for b in p.bench_ids if b != first_bench]
    rng.shuffle(others)
    benches = [first_bench, *others[: rng.randrange(4)]]
    on_bench: dict[str, list[tuple[int, int, str]]] = {b: [] for b in benches}
    for pid in search.comps[ci]:
        for rid, (b, st, en) in cache[pid].runs.items():
            if b in on_bench:
                on_bench[b].append((st, en, rid))
    blocked = search.blocked(ci)
    per = max(2, k // len(benches))
    chosen: list[str] = []
    for b in benches:
        row = sorted(on_bench[b])
        i = bisect.bisect_left(row, (t_seed,))
        i = max(0, min(i - rng.randrange(per), len(row) - per))
        chosen.extend(rid for st, en, rid in row[i : i + per] if all(en <= lo or st >= hi for lo, hi in blocked))
    return (ci, chosen) if chosen else None


def _recreate_order(search: _Search, rng: random.Random, runs: list[str]) -> list[str]:
    """An insertion order: heaviest per minute first (Smith's rule), longest first (packs a
    tail), the current order, or random; each with noise so repeated moves differ."""
    by_id, w, placed = search.runs, search.prep.weight, search.placed
    rule = rng.random()
    if rule < 0.4:
        return sorted(runs, key=lambda r: -w[r] / by_id[r].processing * rng.uniform(0.7, 1.3))
    if rule < 0.6:
        return sorted(runs, key=lambda r: -by_id[r].processing * rng.uniform(0.8, 1.2))
    if rule < 0.85:
        return sorted(runs, key=lambda r: placed[r][1] + rng.uniform(-240, 240))
    out = list(runs)
    rng.shuffle(out)
    return out


def _ruin_recreate(search: _Search, rng: random.Random, ci: int, chosen: list[str]) -> bool | None:
    """Take ``chosen`` out and put them back one by one where they cost least (start weight
    plus any makespan growth), on concrete benches of group ``ci``; keep the result if
    :meth:`_Search.accept` takes it. Regions other threads are solving stay untouched. Caller
    holds the lock. Returns None if a run found no place (past its deadline or the horizon),
    else whether the objective went down.

    The benches' busy lists persist between moves; a move edits copies of the lists it
    touches and swaps them in only if it is kept."""
    prep = search.prep
    cache = search.concrete_of(search.comp_pools[ci])
    pool_of = search.pool_of
    blocked = search.blocked(ci)
    work: dict[str, tuple[list[int], list[int]]] = {}

    def edited(bench: str) -> tuple[list[int], list[int]]:
        got = work.get(bench)
        if got is None:
            starts, ends = cache[pool_of[bench].pool_id].busy[bench]
            got = work[bench] = (starts.copy(), ends.copy())
        return got

    was_on: dict[str, str] = {}
    for rid in chosen:
        bench, st, en = cache[search.placed[rid][0]].runs[rid]
        was_on[rid] = bench
        starts, ends = edited(bench)
        i = bisect.bisect_left(starts, st)
        while ends[i] != en:  # an empty frozen interval may share the start
            i += 1
        del starts[i], ends[i]
    chosen_set = set(chosen)
    old_makespan = search.makespan
    if any(search.placed[rid][2] >= old_makespan for rid in chosen):
        makespan = max(
            [prep.frozen_makespan] + [e for rid, (_p, _s, e) in search.placed.items() if rid not in chosen_set]
        )
    else:
        makespan = old_makespan
    w_m = prep.makespan_weight
    new: dict[str, tuple[str, int, int]] = {}
    for rid in _recreate_order(search, rng, chosen):
        run = search.runs[rid]
        w = prep.weight[rid]
        best: tuple[int, int, str, int] | None = None
        # its own bench first: the gap it left there usually makes a good first offer, and
        # every later bench's walk stops at that offer's cost
        for b in (was_on[rid], *prep.compat[rid]):
            if b == was_on[rid] and best is not None:
                continue
            starts, ends = work[b] if b in work else cache[pool_of[b].pool_id].busy[b]
            # a start later than this costs more than the best place found so far
            latest = best[0] // w if best is not None and w > 0 else None
            fit = prep.index[b].earliest_fit_outside(
                run.processing, run.may_pause, prep.es[rid], starts, ends, latest, blocked
            )
            if fit is None or (run.deadline is not None and fit[1] > run.deadline):
                continue
            cost = w * fit[0] + w_m * max(0, fit[1] - makespan)
            if best is None or (cost, fit[1]) < (best[0], best[1]):
                best = (cost, fit[1], b, fit[0])
        if best is None:
            return None
        _cost, end, bench, start = best
        insert_busy(*edited(bench), start, end)
        makespan = max(makespan, end)
        new[rid] = (bench, start, end)
    # the objective changes by the moved runs' start weights and the makespan
    weight = prep.weight
    delta = sum(weight[rid] * (new[rid][1] - search.placed[rid][1]) for rid in chosen)
    obj = search.current + delta + w_m * (makespan - old_makespan)
    improved = obj < search.current
    if not search.accept(obj, rng):
        return False
    for rid in chosen:
        del cache[search.placed[rid][0]].runs[rid]
    for bench, lists in work.items():
        cache[pool_of[bench].pool_id].busy[bench] = lists
    for rid, (bench, start, end) in new.items():
        pid = pool_of[bench].pool_id
        search.placed[rid] = (pid, start, end)
        cache[pid].runs[rid] = (bench, start, end)
    search.moved(obj)
    search.makespan = makespan
    return improved


_CALIBRATION_MOVES = 300
"""Worsening ruin-and-recreate moves looked at (all refused) before annealing starts."""


def _start_temperature(worse: list[int]) -> float:
    """The 5th percentile of the worsening moves seen: such a move is first taken with
    probability 1/e. Of the quantiles tried on 1,000 runs (0 = plain descent, about the
    1st, 5th and 10th), 5th-10th did best (30 s: 77.3-77.5 M against 77.4-77.8 M)."""
    ranked = sorted(worse)
    return float(ranked[len(ranked) // 20])


def improve(
    prep: Prepared,
    start: Sequence[Assignment],
    stop_at: float,
    workers: int,
    seed: int,
    horizon: int,
    makespan_lb: int,
    pool: bool = True,
    sub_limit: float = 0.15,
    size: float = 12.0,
    two_window_share: float = 0.4,
    cp_threads: int | None = None,
    recreate_threads: int = 1,
    string_share: float = 0.4,
    scattered_share: float = 0.9,
    anneal: bool = True,
    only: frozenset[int] | None = None,
) -> tuple[list[Assignment], int, LnsStats]:
    """Improve ``start`` (open runs only) until the monotonic clock reaches ``stop_at``.

    ``cp_threads`` threads (default: the workers left beside ``recreate_threads``, at least
    one) solve neighbourhoods with CP-SAT; ``recreate_threads`` run ruin-and-recreate moves
    in Python beside them, annealed if ``anneal`` (else they never accept a worse schedule).
    Of their removals, ``string_share`` are strings (:func:`_strings`); of the rest,
    ``scattered_share`` are scattered (:func:`_scattered`) and the others time windows.
    ``only`` names the bench groups (indices into :func:`bench_groups`) the search may change;
    the others' runs stay where ``start`` has them. Returns the best schedule seen."""
    search = _Search(prep, start, pool, only)

    def recreate_loop(tid: int) -> None:
        rng = random.Random(seed * 104729 + tid)
        t_start, began = 0.0, 0.0
        while (now := time.monotonic()) < stop_at - 0.02:
            with search.lock:
                if anneal and not t_start and len(search.worse_seen) >= _CALIBRATION_MOVES:
                    t_start, began = _start_temperature(search.worse_seen), now
                    search.stats.start_temperature = t_start
                if t_start:
                    # cools geometrically to a hundredth by the deadline
                    search.temperature = t_start * 0.01 ** ((now - began) / max(1e-9, stop_at - began))
                k = rng.choice(RECREATE_SIZES)
                u = rng.random()
                picked: tuple[int, list[str]] | None
                if u < string_share:
                    picked = _strings(search, rng, k)
                elif u < string_share + (1 - string_share) * scattered_share:
                    picked = _scattered(search, rng, k)
                else:
                    window = search.pick(rng, k, two_window_share)
                    picked = None if window is None else (window[0], window[1])
                if picked is not None:
                    outcome = _ruin_recreate(search, rng, picked[0], picked[1])
                    search.stats.recreate_moves += 1
                    search.stats.recreate_improving += int(bool(outcome))
            if picked is None:
                time.sleep(0.005)
            elif search.waiting:
                # let the CP-SAT threads take the lock to pick or apply their moves
                time.sleep(0.0005)

    def loop(tid: int) -> None:
        rng = random.Random(seed * 7919 + tid)
        k_size = size
        while time.monotonic() < stop_at - 0.05:
            with search.held():
                picked = search.pick(rng, max(6, int(k_size)), two_window_share)
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
                    search, placed, chosen_set, lo, hi, horizon, makespan_lb, stop_at, sub_limit, rng
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

    n_cp = max(1, workers - recreate_threads) if cp_threads is None else cp_threads
    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(n_cp)]
    threads += [threading.Thread(target=recreate_loop, args=(n_cp + i,), daemon=True) for i in range(recreate_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = decode_all(prep, search.pools, search.best_placement())
    return out, objective_parts(prep.problem, out + prep.frozen)[0], search.stats


def _move(
    search: _Search,
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

"""The shared state of a neighbourhood search (:class:`Search`): the current placement of the
open runs, per bench *pool* (see :mod:`.pools`), the moves being solved, the objective and the
best placement seen. The CP-SAT threads (:mod:`.lns`) and the ruin-and-recreate thread
(:mod:`.recreate`) change it holding its lock.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from fastlims.scheduling.models import Assignment
from fastlims.scheduling.pools import BenchPool, decode, make_pools
from fastlims.scheduling.prepare import Prepared, components

CALIBRATION_MOVES = 300
"""Worsening ruin-and-recreate moves looked at (all refused) before annealing starts."""


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
class Concrete:
    """One pool's runs on concrete benches, as ruin-and-recreate sees them."""

    version: int
    runs: dict[str, tuple[str, int, int]]
    """``run_id -> (bench, start, end)``"""
    busy: dict[str, tuple[list[int], list[int]]]
    """``bench -> (starts, ends)``, sorted, frozen runs included (runs may touch, never overlap)"""


def components_of(prep: Prepared, pools: list[BenchPool]) -> list[set[int]]:
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
    return [frozenset(b for pid in comp for b in by_id[pid].bench_ids) for comp in components_of(prep, pools)]


def decode_all(prep: Prepared, pools: list[BenchPool], placed: dict[str, tuple[int, int, int]]) -> list[Assignment]:
    """Concrete benches for runs placed as ``run_id -> (pool_id, start, end)``."""
    per_pool: dict[int, list[tuple[str, int, int]]] = {p.pool_id: [] for p in pools}
    for rid, (pid, s, e) in placed.items():
        per_pool[pid].append((rid, s, e))
    out: list[Assignment] = []
    for p in pools:
        out.extend(decode(p, per_pool[p.pool_id], prep))
    return out


class Search:
    """Shared state of the threads: the current placement and the moves being solved."""

    def __init__(
        self, prep: Prepared, start: Sequence[Assignment], pool: bool, only: frozenset[int] | None = None
    ) -> None:
        self.prep = prep
        self.pool = pool
        self.pools = make_pools(prep, pool)
        self.pool_of = {b: p for p in self.pools for b in p.bench_ids}
        self.rep = {p.pool_id: p.representative for p in self.pools}
        self.comps = components_of(prep, self.pools)
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
        self.concrete: dict[int, Concrete] = {}
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

    def concrete_of(self, pools: list[BenchPool]) -> dict[int, Concrete]:
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
                    self.concrete[p.pool_id] = Concrete(self.version[p.pool_id], runs, busy)
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
        if d > 0 and len(self.worse_seen) < CALIBRATION_MOVES:
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

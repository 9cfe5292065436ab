"""Pooling identical benches, and turning a pooled schedule back into concrete benches.

Benches of the same kind, capabilities, calendar and ratings are interchangeable, so a solver may treat
them as one resource of capacity c (a cumulative constraint) instead of c separate machines
with a bench choice per run: far fewer variables and no symmetry between benches. Decoding is
exact: intervals whose load never exceeds c can always be spread over c benches by taking
them in start order and giving each a free bench (interval graphs are perfect).

Frozen runs tie a run to one bench. That stays exact when every frozen run of the pool
covers minute 0 (runs already going): they form one clique at the start and any bench
permutation of it is the real one. A bench with a frozen run starting later is taken out of
its pool and kept on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastlims.scheduling.models import Assignment
from fastlims.scheduling.prepare import Prepared


@dataclass(frozen=True)
class BenchPool:
    """Identical benches treated as one resource."""

    pool_id: int
    bench_ids: tuple[str, ...]

    @property
    def capacity(self) -> int:
        return len(self.bench_ids)

    @property
    def representative(self) -> str:
        return self.bench_ids[0]


def make_pools(prep: Prepared, pool: bool = True) -> list[BenchPool]:
    """Group interchangeable benches (or one pool per bench when ``pool`` is False)."""
    groups: dict[object, list[str]] = {}
    for b in prep.problem.benches:
        later_frozen = any(s > 0 and e > 0 for s, e in prep.frozen_busy[b.bench_id])
        key: object = (
            (b.kind, b.capabilities, b.calendar, b.ratings) if pool and not later_frozen else ("own", b.bench_id)
        )
        groups.setdefault(key, []).append(b.bench_id)
    return [BenchPool(i, tuple(ids)) for i, ids in enumerate(groups.values())]


def decode(pool: BenchPool, placed: Iterable[tuple[str, int, int]], prep: Prepared) -> list[Assignment]:
    """Give each ``(run_id, start, end)`` placed on the pool a concrete bench."""
    free_at = {b: -(1 << 62) for b in pool.bench_ids}
    events: list[tuple[int, int, int, str, str | None]] = []
    for b in pool.bench_ids:
        for s, e in prep.frozen_busy[b]:
            events.append((s, 0, e, "", b))
    for run_id, s, e in placed:
        events.append((s, 1, e, run_id, None))
    events.sort()
    out: list[Assignment] = []
    for s, _kind, e, run_id, bench in events:
        if bench is not None:
            free_at[bench] = max(free_at[bench], e)
            continue
        ready = [b for b in pool.bench_ids if free_at[b] <= s]
        if not ready:
            raise RuntimeError(f"pool {pool.bench_ids} over capacity at minute {s} (run {run_id})")
        chosen = max(ready, key=lambda b: (free_at[b], -pool.bench_ids.index(b)))
        free_at[chosen] = e
        out.append(Assignment(run_id, chosen, s, e))
    return out

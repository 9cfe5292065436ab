"""Earliest-finish-time list scheduling: the fallback and the baseline.

Runs are taken one by one in a priority order; each goes to the compatible bench where it
would finish first, into the earliest gap that its calendar allows (gaps left by earlier
placements are filled). A few orders are tried and the best schedule that meets every
deadline is kept, so the baseline is a fair one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from fastlims.scheduling.models import Assignment, Run, objective_parts
from fastlims.scheduling.prepare import Prepared, insert_busy

_INF = 1 << 62
_REPAIR_ROUNDS = 6


class GreedyFailure(Exception):
    """The list scheduler could not place a run (beyond the horizon or past its deadline)."""

    def __init__(self, run: Run, past_deadline: bool) -> None:
        self.run = run
        self.past_deadline = past_deadline
        super().__init__(run.run_id)


def list_schedule(
    prep: Prepared,
    order: Iterable[Run],
    kept: Sequence[Assignment] = (),
    late: list[Run] | None = None,
) -> list[Assignment]:
    """Place ``kept`` assignments as they are, then the runs of ``order`` by earliest finish.

    A run that would end past its deadline raises GreedyFailure, or, when a ``late`` list is
    given, is placed anyway and recorded there."""
    busy = prep.busy_lists()
    out: list[Assignment] = []
    for a in kept:
        insert_busy(*busy[a.bench_id], a.start, a.end)
        out.append(a)
    for run in order:
        best: tuple[int, int, int, str] | None = None
        for rank, bench_id in enumerate(prep.compat[run.run_id]):
            starts, ends = busy[bench_id]
            fit = prep.index[bench_id].earliest_fit(run.processing, run.may_pause, prep.es[run.run_id], starts, ends)
            if fit is None:
                continue
            key = (fit[1], fit[0], rank, bench_id)
            if best is None or key < best:
                best = key
        if best is None:
            raise GreedyFailure(run, past_deadline=False)
        end, start, _rank, bench_id = best
        if run.deadline is not None and end > run.deadline:
            if late is None:
                raise GreedyFailure(run, past_deadline=True)
            late.append(run)
        insert_busy(*busy[bench_id], start, end)
        out.append(Assignment(run.run_id, bench_id, start, end))
    return out


def _orders(prep: Prepared) -> list[Callable[[Run], tuple[float, ...]]]:
    """Priority rules: release order (FIFO), earliest deadline, shortest first, priority first,
    and weighted-shortest-processing-time (Smith's rule, which minimises weighted start times
    on one machine) alone and within each day of preferred dates."""
    es, w = prep.es, prep.weight
    return [
        lambda r: (es[r.run_id], -w[r.run_id], -r.processing),
        lambda r: (r.deadline if r.deadline is not None else _INF, es[r.run_id], -w[r.run_id]),
        lambda r: (es[r.run_id], r.processing),
        lambda r: (-w[r.run_id], es[r.run_id], r.processing),
        lambda r: (-w[r.run_id] / r.processing, es[r.run_id]),
        lambda r: (es[r.run_id] // 1440, -w[r.run_id] / r.processing),
    ]


def _with_deadline_repair(prep: Prepared, order: list[Run], kept: Sequence[Assignment]) -> list[Assignment] | None:
    """List-schedule ``order``; runs that miss their deadline move to the front (earliest
    deadline first, after those moved before) and the pass is redone, a few times at most."""
    promoted: list[Run] = []
    for _ in range(_REPAIR_ROUNDS):
        late: list[Run] = []
        moved = {r.run_id for r in promoted}
        try:
            placed = list_schedule(prep, promoted + [r for r in order if r.run_id not in moved], kept, late)
        except GreedyFailure:
            return None
        if not late:
            return placed
        if all(r.run_id in moved for r in late):
            return None
        promoted.extend(r for r in late if r.run_id not in moved)
        promoted.sort(key=lambda r: r.deadline if r.deadline is not None else _INF)
    return None


def best_greedy(prep: Prepared, kept: Sequence[Assignment] = ()) -> tuple[list[Assignment], int] | None:
    """The best list schedule over a few priority orders, with its objective; None if every
    order missed a deadline or ran past the horizon."""
    kept_ids = {a.run_id for a in kept}
    todo = [r for r in prep.runs if r.run_id not in kept_ids]
    best: tuple[list[Assignment], int] | None = None
    for key in _orders(prep):
        placed = _with_deadline_repair(prep, sorted(todo, key=key), kept)
        if placed is None:
            continue
        obj = objective_parts(prep.problem, placed + prep.frozen)[0]
        if best is None or obj < best[1]:
            best = (placed, obj)
    return best


def first_failure(prep: Prepared) -> GreedyFailure | None:
    """Why the default order failed (for error messages), or None if it succeeded."""
    try:
        list_schedule(prep, sorted(prep.runs, key=_orders(prep)[1]))
    except GreedyFailure as exc:
        return exc
    return None

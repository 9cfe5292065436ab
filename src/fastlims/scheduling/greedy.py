"""Earliest-finish-time list scheduling: the fallback and the baseline.

Runs are taken one by one in a priority order; each goes to the compatible bench where it
would finish first, into the earliest gap that its calendar allows (gaps left by earlier
placements are filled). The plain scheduler takes runs in release order (the "fifo" rule,
``solve(..., "eft")``, the baseline the solvers are measured against). The fallback and the solvers' starting point,
:func:`best_greedy`, tries a portfolio of priority rules per group of benches and keeps the
combination that meets every deadline at the lowest objective.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from fastlims.scheduling.models import Assignment, Run, objective_parts
from fastlims.scheduling.prepare import Prepared, components, insert_busy

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


Order = Callable[[list[Run]], list[Run]]


def _with_longest_tail(order: Order, share: float) -> Order:
    """``order``, then the runs making up its last ``share`` of the work re-sorted longest
    first: short runs left for the end fill the benches evenly, so the makespan is not set by
    one long run started late on one bench (the classic LPT rule for the tail)."""

    def ordered(runs: list[Run]) -> list[Run]:
        head = order(runs)
        total = sum(r.processing for r in head)
        done = 0
        for i, r in enumerate(head):
            done += r.processing
            if done > total * (1 - share):
                return head[:i] + sorted(head[i:], key=lambda r: -r.processing)
        return head

    return ordered


def _orders(prep: Prepared) -> dict[str, Order]:
    """Priority rules: release order (FIFO, the plain baseline), earliest deadline, shortest
    first, priority first, weighted-shortest-processing-time (Smith's rule, which minimises
    weighted start times on one machine) alone, damped by the square root of the length, and
    within each day or week of preferred dates; and some of them with a longest-first tail.

    Measured on the synthetic labs (bench/scheduling.py): no rule wins everywhere. Plain WSPT
    leaves only long runs for the end, which cannot fill the rest of a working day, so on
    physical benches it lost 15 % of makespan; weekly WSPT or priority first, each with a
    longest-first tail, did best there, WSPT damped by the square root on virtual benches."""
    es, w = prep.es, prep.weight

    def by(key: Callable[[Run], tuple[float, ...]]) -> Order:
        return lambda runs: sorted(runs, key=key)

    orders: dict[str, Order] = {
        "fifo": by(lambda r: (es[r.run_id], -w[r.run_id], -r.processing)),
        "edd": by(lambda r: (r.deadline if r.deadline is not None else _INF, es[r.run_id], -w[r.run_id])),
        "spt": by(lambda r: (es[r.run_id], r.processing)),
        "priority": by(lambda r: (-w[r.run_id], es[r.run_id], r.processing)),
        "wspt": by(lambda r: (-w[r.run_id] / r.processing, es[r.run_id])),
        "wspt_sqrt": by(lambda r: (-w[r.run_id] / r.processing**0.5, es[r.run_id])),
        "wspt_daily": by(lambda r: (es[r.run_id] // 1440, -w[r.run_id] / r.processing)),
        "wspt_weekly": by(lambda r: (es[r.run_id] // (7 * 1440), -w[r.run_id] / r.processing)),
    }
    for share in (0.2, 0.35):
        orders[f"priority_lpt{int(share * 100)}"] = _with_longest_tail(orders["priority"], share)
    orders["wspt_sqrt_lpt20"] = _with_longest_tail(orders["wspt_sqrt"], 0.2)
    orders["wspt_weekly_lpt20"] = _with_longest_tail(orders["wspt_weekly"], 0.2)
    return orders


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


def _parts(prep: Prepared, preferred: dict[str, int], placed: Sequence[Assignment]) -> tuple[int, int]:
    """(latest end, weighted lateness) of one group's placements."""
    end = max((a.end for a in placed), default=0)
    return end, sum(prep.weight[a.run_id] * max(0, a.start - preferred[a.run_id]) for a in placed)


def best_greedy(
    prep: Prepared, kept: Sequence[Assignment] = (), orders: Sequence[str] | None = None
) -> tuple[list[Assignment], int] | None:
    """The best list schedule over the priority rules (or only ``orders``), with its
    objective; None if every rule missed a deadline or ran past the horizon.

    Each group of benches (:func:`.prepare.components`) gets the rule that suits it; the choice is made
    for the whole objective, since the makespan is shared (coordinate descent over groups)."""
    kept_ids = {a.run_id for a in kept}
    rules = _orders(prep)
    names = list(rules) if orders is None else list(orders)
    unknown = [name for name in names if name not in rules]
    if unknown:
        raise ValueError(f"unknown priority rule(s) {', '.join(unknown)}; known: {', '.join(rules)}")
    preferred = {r.run_id: r.earliest_start for r in prep.runs}
    options: list[dict[str, tuple[list[Assignment], int, int]]] = []
    for benches, runs in components(prep):
        todo = [r for r in runs if r.run_id not in kept_ids]
        kept_here = [a for a in kept if a.bench_id in benches]
        found = {}
        for name in names:
            placed = _with_deadline_repair(prep, rules[name](todo), kept_here)
            if placed is not None:
                found[name] = (placed, *_parts(prep, preferred, placed))
        if not found:
            return None
        options.append(found)
    # kept runs of groups without open runs
    grouped = {a.run_id for group in options for a in next(iter(group.values()))[0]}
    rest = [a for a in kept if a.run_id not in grouped]
    w_m = prep.makespan_weight
    floor = max([prep.frozen_makespan] + [a.end for a in rest])

    def total(choice: list[str]) -> int:
        ends = [options[g][c][1] for g, c in enumerate(choice)]
        return w_m * max([floor] + ends) + sum(options[g][c][2] for g, c in enumerate(choice))

    # start from the best of: each group's own best rule, or one rule for all groups (so the
    # result is never worse than any single rule), then improve one group at a time
    starts = [[min(opts, key=lambda c, o=opts: w_m * o[c][1] + o[c][2]) for opts in options]]  # type: ignore[misc]
    starts += [[name] * len(options) for name in names if all(name in opts for opts in options)]
    choice = min(starts, key=total)
    for _ in range(len(options) + 1):
        changed = False
        for g, opts in enumerate(options):
            best_c = min(opts, key=lambda c, g=g: total(choice[:g] + [c] + choice[g + 1 :]))  # type: ignore[misc]
            if total(choice[:g] + [best_c] + choice[g + 1 :]) < total(choice):
                choice[g] = best_c
                changed = True
        if not changed:
            break
    placed_all = rest + [a for g, c in enumerate(choice) for a in options[g][c][0]]
    return placed_all, objective_parts(prep.problem, placed_all + prep.frozen)[0]


def first_failure(prep: Prepared) -> GreedyFailure | None:
    """Why the default order failed (for error messages), or None if it succeeded."""
    try:
        list_schedule(prep, _orders(prep)["edd"](list(prep.runs)))
    except GreedyFailure as exc:
        return exc
    return None

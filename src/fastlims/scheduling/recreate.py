"""Ruin-and-recreate moves: take runs out of a schedule and put them back one by one where they
cost least, in a randomised order (a move costs about half a millisecond of Python instead of a
CP-SAT call, so it covers far more of a large schedule in the same time). The runs taken out are
a string (:func:`strings`), scattered (:func:`scattered`) or a time window (``Search.pick``);
worse schedules are taken with a probability that cools to nothing by the deadline (simulated
annealing, :func:`recreate_loop`). See :mod:`.lns` for what each of these measured.
"""

from __future__ import annotations

import bisect
import random
import time

from fastlims.scheduling.prepare import insert_busy
from fastlims.scheduling.search import CALIBRATION_MOVES, Search

RECREATE_SIZES = (4, 6, 10, 16, 24)
"""How many runs one ruin-and-recreate move takes out (one size drawn per move)."""


def scattered(search: Search, rng: random.Random, k: int) -> tuple[int, list[str]] | None:
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


def strings(search: Search, rng: random.Random, k: int) -> tuple[int, list[str]] | None:
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


def recreate_order(search: Search, rng: random.Random, runs: list[str]) -> list[str]:
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


def ruin_recreate(search: Search, rng: random.Random, ci: int, chosen: list[str]) -> bool | None:
    """Take ``chosen`` out and put them back one by one where they cost least (start weight
    plus any makespan growth), on concrete benches of group ``ci``; keep the result if
    :meth:`Search.accept` takes it. Regions other threads are solving stay untouched. Caller
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
    for rid in recreate_order(search, rng, chosen):
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


def start_temperature(worse: list[int]) -> float:
    """The 5th percentile of the worsening moves seen: such a move is first taken with
    probability 1/e. Of the quantiles tried on 1,000 runs (0 = plain descent, about the
    1st, 5th and 10th), 5th-10th did best (30 s: 77.3-77.5 M against 77.4-77.8 M)."""
    ranked = sorted(worse)
    return float(ranked[len(ranked) // 20])


def recreate_loop(
    search: Search,
    stop_at: float,
    seed: int,
    tid: int,
    *,
    anneal: bool,
    string_share: float,
    scattered_share: float,
    two_window_share: float,
) -> None:
    """One ruin-and-recreate thread until ``stop_at`` (monotonic clock): of its removals,
    ``string_share`` are strings, of the rest ``scattered_share`` scattered and the others time
    windows; annealed if ``anneal`` (else it never accepts a worse schedule)."""
    rng = random.Random(seed * 104729 + tid)
    t_start, began = 0.0, 0.0
    while (now := time.monotonic()) < stop_at - 0.02:
        with search.lock:
            if anneal and not t_start and len(search.worse_seen) >= CALIBRATION_MOVES:
                t_start, began = start_temperature(search.worse_seen), now
                search.stats.start_temperature = t_start
            if t_start:
                # cools geometrically to a hundredth by the deadline
                search.temperature = t_start * 0.01 ** ((now - began) / max(1e-9, stop_at - began))
            k = rng.choice(RECREATE_SIZES)
            u = rng.random()
            picked: tuple[int, list[str]] | None
            if u < string_share:
                picked = strings(search, rng, k)
            elif u < string_share + (1 - string_share) * scattered_share:
                picked = scattered(search, rng, k)
            else:
                window = search.pick(rng, k, two_window_share)
                picked = None if window is None else (window[0], window[1])
            if picked is not None:
                outcome = ruin_recreate(search, rng, picked[0], picked[1])
                search.stats.recreate_moves += 1
                search.stats.recreate_improving += int(bool(outcome))
        if picked is None:
            time.sleep(0.005)
        elif search.waiting:
            # let the CP-SAT threads take the lock to pick or apply their moves
            time.sleep(0.0005)

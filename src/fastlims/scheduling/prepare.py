"""What every solver needs first: calendars expanded, compatible benches, and the reasons a
problem cannot be solved at all (each naming the run and the constraint)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from fastlims.scheduling.models import Assignment, Bench, InfeasibleError, Problem, Run
from fastlims.scheduling.timeline import TimelineIndex, build_timeline

_DAY = 24 * 60
_MAX_HORIZON = 5 * 366 * _DAY  # calendars are never expanded further than five years


@dataclass
class Prepared:
    """A problem with its calendars expanded to ``horizon`` minutes."""

    problem: Problem
    horizon: int
    benches: dict[str, Bench]
    index: dict[str, TimelineIndex]
    runs: list[Run]
    """Runs to place (the frozen ones excluded)."""
    compat: dict[str, list[str]]
    weight: dict[str, int]
    es: dict[str, int]
    """Earliest allowed start: the preferred date, never before minute 0."""
    est: dict[str, int]
    """Earliest start the calendars and frozen runs allow, other open runs ignored."""
    eet: dict[str, int]
    """Earliest end likewise."""
    frozen: list[Assignment]
    frozen_busy: dict[str, list[tuple[int, int]]]
    frozen_lateness: int
    frozen_makespan: int

    @property
    def makespan_weight(self) -> int:
        return self.problem.effective_makespan_weight

    def busy_lists(self) -> dict[str, tuple[list[int], list[int]]]:
        """Fresh per-bench sorted busy lists holding the frozen runs."""
        return {b: ([s for s, _ in iv], [e for _, e in iv]) for b, iv in self.frozen_busy.items()}

    def fmt(self, minute: int) -> str:
        return self.problem.at(minute).strftime("%Y-%m-%d %H:%M UTC")


def fits(run: Run, bench: Bench) -> bool:
    """Whether a bench can take a run: same kind, every capability it needs, ratings that cover
    its procedure."""
    return (
        bench.kind == run.bench_kind
        and run.capabilities <= bench.capabilities
        and not bench.ratings.shortfalls(run.needs, bench.capabilities)
    )


def why_not(run: Run, bench: Bench) -> str:
    """Why ``bench`` cannot take ``run`` (for a bench of the run's kind), or '' when it can."""
    missing = sorted(run.capabilities - bench.capabilities)
    found = [f"lacks capabilities {missing}"] if missing else []
    found += bench.ratings.shortfalls(run.needs, bench.capabilities)
    return "; ".join(found)


def _needs_text(run: Run) -> str:
    needs = run.needs
    parts = []
    if needs.uut_format:
        parts.append(f"a {needs.uut_format}")
    if needs.current_A:
        parts.append(f"{needs.current_A:g} A")
    if needs.min_voltage_V is not None and needs.max_voltage_V is not None:
        parts.append(f"{needs.min_voltage_V:g}-{needs.max_voltage_V:g} V")
    if needs.temperature_chamber:
        parts.append("a temperature chamber")
    return f", needs {', '.join(parts)}" if parts else ""


def _frozen_reasons(problem: Problem) -> list[str]:
    reasons = []
    by_bench: dict[str, list[tuple[int, int, str]]] = {}
    for f in problem.frozen:
        by_bench.setdefault(f.bench_id, []).append((f.start, f.end, f.run_id))
    for bench_id, items in by_bench.items():
        items.sort()
        for (_s1, e1, r1), (s2, _e2, r2) in zip(items, items[1:], strict=False):
            if s2 < e1:
                reasons.append(f"frozen runs {r1} and {r2} overlap on bench {bench_id}")
    return reasons


def prepare(problem: Problem, horizon: int | None = None) -> Prepared:
    """Expand calendars and check every run can be placed alone; raise InfeasibleError if not."""
    reasons = _frozen_reasons(problem)
    frozen_ids = {f.run_id for f in problem.frozen}
    runs = [r for r in problem.runs if r.run_id not in frozen_ids]
    benches = {b.bench_id: b for b in problem.benches}
    compat: dict[str, list[str]] = {}
    for r in runs:
        compat[r.run_id] = [b.bench_id for b in problem.benches if fits(r, b)]
        if not compat[r.run_id]:
            same_kind = [b for b in problem.benches if b.kind == r.bench_kind]
            offer = "; ".join(f"{b.bench_id}: {why_not(r, b)}" for b in same_kind) or "none"
            reasons.append(
                f"run {r.run_id} (request {r.request_id}): no active {r.bench_kind} bench can take it "
                f"(capabilities {sorted(r.capabilities)}{_needs_text(r)}; bench registry: {offer})"
            )
        if r.deadline is not None and r.deadline < max(0, r.earliest_start) + r.processing:
            reasons.append(
                f"run {r.run_id} (request {r.request_id}): deadline {r.deadline} min is before its preferred "
                f"start plus {r.processing} min of setup, test and teardown"
            )
    if reasons:
        raise InfeasibleError(reasons)

    base = max([0] + [r.earliest_start for r in runs] + [f.end for f in problem.frozen])
    work = sum(r.processing for r in runs)
    if horizon is None:
        horizon = min(_MAX_HORIZON, base + 2 * work + 28 * _DAY)
    horizon = max([horizon, base + 1] + [r.deadline for r in runs if r.deadline is not None])

    frozen_busy: dict[str, list[tuple[int, int]]] = {b: [] for b in benches}
    for f in problem.frozen:
        frozen_busy[f.bench_id].append((f.start, f.end))
    for iv in frozen_busy.values():
        iv.sort()
    index = {b.bench_id: TimelineIndex(build_timeline(b, problem.origin, horizon)) for b in problem.benches}

    es: dict[str, int] = {}
    est: dict[str, int] = {}
    eet: dict[str, int] = {}
    for r in runs:
        es[r.run_id] = max(0, r.earliest_start)
        best: tuple[int, int] | None = None
        for b in compat[r.run_id]:
            starts = [s for s, _ in frozen_busy[b]]
            ends = [e for _, e in frozen_busy[b]]
            fit = index[b].earliest_fit(r.processing, r.may_pause, es[r.run_id], starts, ends)
            if fit is not None and (best is None or (fit[1], fit[0]) < (best[1], best[0])):
                best = fit
            if fit is not None:
                est[r.run_id] = min(est.get(r.run_id, fit[0]), fit[0])
        if best is None:
            longest = max(index[b].tl.longest_window() for b in compat[r.run_id])
            names = ", ".join(compat[r.run_id])
            if r.may_pause:
                reasons.append(
                    f"run {r.run_id} (request {r.request_id}): needs {r.processing} working minutes between "
                    f"maintenance windows of benches {names} after its preferred date; none is that long"
                )
            else:
                reasons.append(
                    f"run {r.run_id} (request {r.request_id}): needs {r.processing} continuous minutes "
                    f"(setup {r.setup} + test {r.duration} + teardown {r.teardown}) but the longest working "
                    f"window of benches {names} is {longest} min (calendar); allow pausing or widen the hours"
                )
            continue
        eet[r.run_id] = best[1]
        if r.deadline is not None and best[1] > r.deadline:
            reasons.append(
                f"run {r.run_id} (request {r.request_id}): deadline {problem.at(r.deadline):%Y-%m-%d %H:%M} UTC "
                f"is before the earliest end the calendars of benches {', '.join(compat[r.run_id])} allow "
                f"({problem.at(best[1]):%Y-%m-%d %H:%M} UTC)"
            )
    if reasons:
        raise InfeasibleError(reasons)

    runs_by_id = {r.run_id: r for r in problem.runs}
    frozen = [Assignment(f.run_id, f.bench_id, f.start, f.end, frozen=True) for f in problem.frozen]
    frozen_lateness = problem.lateness_weight * sum(
        runs_by_id[f.run_id].priority * max(0, f.start - runs_by_id[f.run_id].earliest_start)
        for f in problem.frozen
        if f.run_id in runs_by_id
    )
    return Prepared(
        problem=problem,
        horizon=horizon,
        benches=benches,
        index=index,
        runs=runs,
        compat=compat,
        weight={r.run_id: problem.lateness_weight * r.priority for r in runs},
        es=es,
        est=est,
        eet=eet,
        frozen=frozen,
        frozen_busy=frozen_busy,
        frozen_lateness=frozen_lateness,
        frozen_makespan=max([0] + [f.end for f in problem.frozen]),
    )


def components(prep: Prepared) -> list[tuple[set[str], list[Run]]]:
    """Groups of benches that share runs (a run's compatible benches are in one group), with
    their runs. Groups never interact except through the makespan, so each may follow its own
    priority rule."""
    parent = {b: b for b in prep.benches}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in prep.runs:
        first = prep.compat[r.run_id][0]
        for b in prep.compat[r.run_id][1:]:
            parent[find(b)] = find(first)
    groups: dict[str, tuple[set[str], list[Run]]] = {}
    for b in prep.benches:
        groups.setdefault(find(b), (set(), []))[0].add(b)
    for r in prep.runs:
        groups[find(prep.compat[r.run_id][0])][1].append(r)
    return [g for g in groups.values() if g[1]]


def insert_busy(starts: list[int], ends: list[int], s: int, e: int) -> None:
    """Book ``[s, e)`` in a bench's sorted busy lists."""
    i = bisect.bisect_left(starts, s)
    starts.insert(i, s)
    ends.insert(i, e)

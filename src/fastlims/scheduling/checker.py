"""Independent feasibility checker for any schedule.

Written apart from the solvers on purpose: it does not use the timeline expansion the solvers
share, but asks the calendar directly, one local day at a time, so a bug in the solvers'
calendar code cannot hide itself. It returns every violation it finds, not just the first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastlims.scheduling.models import Assignment, Bench, Calendar, Problem, Schedule


def _utc_minute(origin: datetime, minute: int) -> datetime:
    return origin + timedelta(minutes=minute)


def _working_spans(calendar: Calendar, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """Working spans (UTC datetimes) that meet [lo, hi), from weekly hours and closed dates."""
    zone = ZoneInfo(calendar.timezone)
    day = lo.astimezone(zone).date() - timedelta(days=1)
    last = hi.astimezone(zone).date() + timedelta(days=1)
    spans = []
    while day <= last:
        if day not in calendar.closed_dates:
            for t1, t2 in calendar.weekly_hours[day.weekday()]:
                start = datetime.combine(day, t1, tzinfo=zone).astimezone(UTC)
                end_day = day + timedelta(days=1) if (t2.hour, t2.minute) == (0, 0) else day
                end = datetime.combine(end_day, t2, tzinfo=zone).astimezone(UTC)
                if end > lo and start < hi:
                    spans.append((start, end))
        day += timedelta(days=1)
    return sorted(spans)


def _covered(spans: list[tuple[datetime, datetime]], lo: datetime, hi: datetime) -> timedelta:
    """Length of [lo, hi) covered by the union of spans."""
    total = timedelta(0)
    cur = lo
    for s, e in spans:
        s, e = max(s, cur), min(e, hi)
        if e > s:
            total += e - s
            cur = e
    return total


def _open_spans(bench: Bench, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    if bench.kind == "virtual":
        return [(lo, hi)]
    return _working_spans(bench.calendar, lo, hi)


def _is_open_at(bench: Bench, moment: datetime) -> bool:
    spans = _open_spans(bench, moment, moment + timedelta(minutes=1))
    in_hours = _covered(spans, moment, moment + timedelta(minutes=1)) == timedelta(minutes=1)
    in_maintenance = any(s < moment + timedelta(minutes=1) and e > moment for s, e in bench.calendar.maintenance)
    return in_hours and not in_maintenance


def _check_calendar(problem: Problem, bench: Bench, a: Assignment, processing: int, pausable: bool) -> list[str]:
    lo, hi = _utc_minute(problem.origin, a.start), _utc_minute(problem.origin, a.end)
    out = []
    for ms, me in bench.calendar.maintenance:
        if ms < hi and me > lo:
            out.append(f"run {a.run_id} on bench {a.bench_id} overlaps maintenance {ms.isoformat()}..{me.isoformat()}")
    spans = _open_spans(bench, lo, hi)
    open_minutes = _covered(spans, lo, hi)
    if not pausable:
        if a.end - a.start != processing:
            out.append(
                f"run {a.run_id}: occupies {a.end - a.start} min but setup + test + teardown is {processing} min"
            )
        if open_minutes != hi - lo:
            out.append(
                f"run {a.run_id} on bench {a.bench_id} runs into closed hours between "
                f"{lo.isoformat()} and {hi.isoformat()}"
            )
    else:
        if open_minutes != timedelta(minutes=processing):
            out.append(
                f"run {a.run_id} (pausable) on bench {a.bench_id}: {open_minutes.total_seconds() / 60:.0f} working "
                f"minutes in its span but setup + test + teardown is {processing} min"
            )
        if not _is_open_at(bench, lo):
            out.append(f"run {a.run_id} (pausable) starts in closed hours at {lo.isoformat()}")
        if not _is_open_at(bench, hi - timedelta(minutes=1)):
            out.append(f"run {a.run_id} (pausable) ends after closed hours (holds the bench idle) at {hi.isoformat()}")
    return out


def check(problem: Problem, schedule: Schedule) -> list[str]:
    """Every way ``schedule`` breaks ``problem``; an empty list means it is feasible.

    Checks: each run placed exactly once on an existing bench of its kind with its
    capabilities; occupation equals setup + test + teardown (working minutes for pausable
    runs); no run before minute 0 or its preferred date, none past its deadline; physical
    runs inside working hours and off closed dates, no run over maintenance; no two runs on
    one bench at once; frozen runs exactly where they were frozen; the reported objective
    matches the assignments.
    """
    out: list[str] = []
    if schedule.origin != problem.origin:
        out.append(
            f"schedule origin {schedule.origin.isoformat()} differs from problem origin {problem.origin.isoformat()}"
        )
    runs = {r.run_id: r for r in problem.runs}
    benches = {b.bench_id: b for b in problem.benches}
    frozen = {f.run_id: f for f in problem.frozen}
    seen: dict[str, int] = {}
    for a in schedule.assignments:
        seen[a.run_id] = seen.get(a.run_id, 0) + 1
    for rid, count in seen.items():
        if count > 1:
            out.append(f"run {rid} is assigned {count} times")
        if rid not in runs and rid not in frozen:
            out.append(f"run {rid} is not part of the problem")
    for rid in list(runs) + list(frozen):
        if rid not in seen:
            out.append(f"run {rid} is not scheduled")

    for a in schedule.assignments:
        if a.end <= a.start:
            out.append(f"run {a.run_id}: end {a.end} is not after start {a.start}")
        bench = benches.get(a.bench_id)
        if bench is None:
            out.append(f"run {a.run_id} is on unknown bench {a.bench_id}")
            continue
        if a.run_id in frozen:
            f = frozen[a.run_id]
            if (a.bench_id, a.start, a.end) != (f.bench_id, f.start, f.end):
                out.append(
                    f"frozen run {a.run_id} moved from {f.bench_id} [{f.start}, {f.end}) to "
                    f"{a.bench_id} [{a.start}, {a.end})"
                )
            continue
        run = runs.get(a.run_id)
        if run is None:
            continue
        if bench.kind != run.bench_kind:
            out.append(f"run {a.run_id} needs a {run.bench_kind} bench, {a.bench_id} is {bench.kind}")
        missing = run.capabilities - bench.capabilities
        if missing:
            out.append(f"run {a.run_id}: bench {a.bench_id} lacks capabilities {sorted(missing)}")
        for shortfall in bench.ratings.shortfalls(run.needs, bench.capabilities):
            out.append(f"run {a.run_id}: bench {a.bench_id} does not cover its procedure: {shortfall}")
        if a.start < 0:
            out.append(f"run {a.run_id} starts before the schedule origin (minute {a.start})")
        if a.start < run.earliest_start:
            out.append(f"run {a.run_id} starts at minute {a.start}, before its preferred date {run.earliest_start}")
        if run.deadline is not None and a.end > run.deadline:
            out.append(f"run {a.run_id} ends at minute {a.end}, after its deadline {run.deadline}")
        pausable = run.may_pause and bench.kind == "physical"
        out.extend(_check_calendar(problem, bench, a, run.processing, pausable))

    by_bench: dict[str, list[Assignment]] = {}
    for a in schedule.assignments:
        by_bench.setdefault(a.bench_id, []).append(a)
    listed = {a.run_id for a in schedule.assignments}
    for f in problem.frozen:
        if f.run_id not in listed:
            by_bench.setdefault(f.bench_id, []).append(Assignment(f.run_id, f.bench_id, f.start, f.end, True))
    for bench_id, items in by_bench.items():
        items.sort(key=lambda x: (x.start, x.end))
        latest: Assignment | None = None
        for a in items:
            if latest is not None and a.start < latest.end:
                out.append(
                    f"runs {latest.run_id} and {a.run_id} overlap on bench {bench_id} "
                    f"([{latest.start}, {latest.end}) and [{a.start}, {a.end}))"
                )
            if latest is None or a.end > latest.end:
                latest = a

    # the objective, recomputed here rather than trusted from the solver's helper
    ends = [a.end for a in schedule.assignments] + [f.end for f in problem.frozen]
    makespan = max([0] + ends)
    lateness = problem.lateness_weight * sum(
        runs[a.run_id].priority * max(0, a.start - runs[a.run_id].earliest_start)
        for a in schedule.assignments
        if a.run_id in runs
    )
    weight = len(problem.runs) if problem.makespan_weight is None else problem.makespan_weight
    objective = weight * makespan + lateness
    if schedule.objective != objective:
        out.append(f"reported objective {schedule.objective} but the assignments give {objective}")
    if schedule.makespan != makespan or schedule.weighted_lateness != lateness:
        out.append(
            f"reported makespan/lateness {schedule.makespan}/{schedule.weighted_lateness} but the "
            f"assignments give {makespan}/{lateness}"
        )
    if schedule.best_bound > schedule.objective:
        out.append(f"best bound {schedule.best_bound} exceeds the objective {schedule.objective}")
    return out

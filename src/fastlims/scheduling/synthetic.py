"""Reproducible synthetic labs for benchmarks, demos and tests.

The same ``(n_runs, n_benches, seed)`` always gives the same problem. Half the benches are
physical, on office or two-shift hours in Europe/Berlin (across the March daylight-saving
change and the Easter holidays) with maintenance windows; the others are virtual and run
around the clock apart from weekly patching. Benches come in groups of identical ones (same
capabilities and calendar) as real labs buy them, runs come in requests of 3-15 runs (a design of experiments) sharing
a preferred date and a priority, some physical runs may pause overnight, a few benches hold a
run already going at the origin, and some runs get a deadline that a greedy schedule meets.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, time, timedelta

from fastlims.scheduling.models import Bench, BenchKind, Calendar, FrozenAssignment, Problem, Run

ORIGIN = datetime(2027, 3, 15, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Berlin
LAB_TZ = "Europe/Berlin"
_HOLIDAYS = frozenset({date(2027, 3, 26), date(2027, 3, 29), date(2027, 5, 1), date(2027, 5, 6)})


def _split(n: int, shares: list[float]) -> list[int]:
    if n <= 0:
        return [0] * len(shares)
    counts = [max(1, math.floor(n * s)) if n >= len(shares) else 0 for s in shares]
    if n < len(shares):
        counts[0] = n
    while sum(counts) > n:
        counts[counts.index(max(counts))] -= 1
    counts[0] += n - sum(counts)
    return counts


def _maintenance(day: int, start_hour: int, hours: int) -> tuple[datetime, datetime]:
    s = ORIGIN.replace(hour=0) + timedelta(days=day, hours=start_hour)
    return (s, s + timedelta(hours=hours))


def _benches(n_benches: int) -> list[Bench]:
    n_phys = n_benches // 2
    n_virt = n_benches - n_phys
    office = Calendar.office_hours(
        LAB_TZ,
        time(7),
        time(19),
        closed_dates=_HOLIDAYS,
        maintenance=[_maintenance(2, 11, 4), _maintenance(30, 11, 4)],
    )
    two_shift = Calendar(
        timezone=LAB_TZ,
        weekly_hours=(((time(6), time(22)),),) * 5 + (((time(8), time(14)),), ()),
        closed_dates=_HOLIDAYS,
        maintenance=(_maintenance(9, 5, 6),),
    )
    office_b = Calendar.office_hours(
        LAB_TZ, time(7), time(19), closed_dates=_HOLIDAYS, maintenance=[_maintenance(17, 11, 4)]
    )
    patch_a = Calendar.around_the_clock([_maintenance(6 + 7 * w, 1, 3) for w in range(12)])
    patch_b = Calendar.around_the_clock([_maintenance(5 + 7 * w, 23, 2) for w in range(12)])
    phys_groups = [
        (frozenset({"cycler"}), office),
        (frozenset({"cycler", "thermal"}), two_shift),
        (frozenset({"cycler", "hil"}), office_b),
    ]
    virt_groups = [
        (frozenset({"fmi2", "fmi3"}), patch_a),
        (frozenset({"fmi2", "fmi3", "realtime"}), patch_b),
    ]
    if n_phys <= 2:
        phys_counts = [n_phys, 0, 0]
    elif n_phys <= 6:
        phys_counts = _split(n_phys, [0.6, 0.4]) + [0]
    else:
        phys_counts = _split(n_phys, [0.4, 0.3, 0.3])
    virt_counts = [n_virt, 0] if n_virt <= 2 else _split(n_virt, [0.6, 0.4])
    benches: list[Bench] = []
    for kind, groups, counts, prefix in (
        ("physical", phys_groups, phys_counts, "PB"),
        ("virtual", virt_groups, virt_counts, "VB"),
    ):
        for (caps, cal), count in zip(groups, counts, strict=True):
            for _ in range(count):
                idx = sum(1 for b in benches if b.kind == kind) + 1
                bench_kind: BenchKind = "physical" if kind == "physical" else "virtual"
                benches.append(Bench(f"{prefix}{idx:02d}", bench_kind, caps, cal, name=f"{prefix}-{idx:02d}"))
    return benches


def synthetic_problem(
    n_runs: int,
    n_benches: int,
    seed: int,
    *,
    physical_share: float = 0.5,
    pausable_share: float = 0.15,
    deadline_share: float = 0.1,
    started_share: float = 0.2,
    arrival_share: float = 0.25,
) -> Problem:
    """A reproducible lab of ``n_benches`` benches and ``n_runs`` runs (see the module doc)."""
    rng = random.Random(seed)
    benches = _benches(n_benches)
    phys = [b for b in benches if b.kind == "physical"]
    virt = [b for b in benches if b.kind == "virtual"]
    phys_caps = sorted({b.capabilities for b in phys}, key=len)
    virt_caps = sorted({b.capabilities for b in virt}, key=len)
    runs: list[Run] = []
    frozen: list[FrozenAssignment] = []
    for b in benches:
        if rng.random() < started_share:
            rid = f"RUN-{b.bench_id}-going"
            back = rng.randint(30, 120)
            length = rng.randint(120, 400)
            runs.append(
                Run(
                    rid,
                    "REQ-running",
                    length - 20,
                    b.kind,
                    earliest_start=-back,
                    setup=10,
                    teardown=10,
                    capabilities=b.capabilities,
                )
            )
            frozen.append(FrozenAssignment(rid, b.bench_id, -back, length - back))
    n_new = max(0, n_runs - len(runs))
    kinds = [
        "physical" if (i < round(n_new * physical_share) and phys) or not virt else "virtual" for i in range(n_new)
    ]
    rng.shuffle(kinds)
    specs = []
    for kind in kinds:
        pausable = False
        if kind == "physical":
            need = rng.choices(["cycler", "thermal", "hil"], weights=[55, 25, 20])[0]
            caps = (
                frozenset({"cycler"})
                if need == "cycler"
                else next((c for c in phys_caps if need in c), frozenset({"cycler"}))
            )
            pausable = rng.random() < pausable_share
            duration = rng.randint(600, 2400) if pausable else int(math.exp(rng.uniform(math.log(60), math.log(540))))
            setup, teardown = rng.randint(15, 60), rng.randint(10, 30)
        else:
            caps = frozenset({"fmi2"}) if rng.random() < 0.7 or len(virt_caps) == 1 else frozenset({"fmi3", "realtime"})
            duration = int(math.exp(rng.uniform(math.log(60), math.log(2880))))
            setup, teardown = rng.randint(0, 5), rng.randint(0, 5)
        specs.append((kind, caps, duration, setup, teardown, pausable))
    # requests arrive over the first ``arrival_share`` of the time the busier bench kind needs
    # for all its work: a backlog builds up, the case where scheduling matters
    open_per_day = {"physical": 0.0, "virtual": 0.0}
    for b in phys:
        open_per_day["physical"] += 720 * 5 / 7 if b.calendar.weekly_hours[5] == () else (960 * 5 + 360) / 7
    open_per_day["virtual"] = 1440.0 * len(virt)
    load_days = (
        max(
            sum(s[2] + s[3] + s[4] for s in specs if s[0] == k) / open_per_day[k]
            for k in open_per_day
            if open_per_day[k]
        )
        if specs
        else 1.0
    )
    spread = max(1.0, arrival_share * load_days) * 1440
    i = 0
    req = 0
    while i < len(specs):
        size = rng.randint(3, 15)
        req += 1
        preferred = int(rng.uniform(0, spread)) // 30 * 30
        priority = rng.choice([1, 1, 2, 3])
        for kind, caps, duration, setup, teardown, pausable in specs[i : i + size]:
            runs.append(
                Run(
                    f"RUN-{len(runs) + 1:04d}",
                    f"REQ-{req:04d}",
                    duration,
                    kind,  # type: ignore[arg-type]
                    earliest_start=preferred,
                    setup=setup,
                    teardown=teardown,
                    capabilities=caps,
                    priority=priority,
                    may_pause=pausable,
                )
            )
        i += size
    problem = Problem(origin=ORIGIN, runs=tuple(runs), benches=tuple(benches), frozen=tuple(frozen))
    if deadline_share <= 0 or not runs:
        return problem
    from fastlims.scheduling.greedy import best_greedy
    from fastlims.scheduling.prepare import prepare

    found = best_greedy(prepare(problem))
    if found is None:
        return problem
    ends = {a.run_id: a.end for a in found[0]}
    frozen_ids = {f.run_id for f in frozen}
    with_deadline = {r.run_id for r in runs if r.run_id not in frozen_ids and rng.random() < deadline_share}
    runs = [
        Run(
            r.run_id,
            r.request_id,
            r.duration,
            r.bench_kind,
            r.earliest_start,
            r.setup,
            r.teardown,
            r.capabilities,
            r.priority,
            ends[r.run_id] + rng.randint(7 * 1440, 21 * 1440),
            r.may_pause,
        )
        if r.run_id in with_deadline
        else r
        for r in runs
    ]
    return Problem(origin=ORIGIN, runs=tuple(runs), benches=tuple(benches), frozen=tuple(frozen))

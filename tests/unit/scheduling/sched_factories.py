"""Shared builders and the hypothesis strategy for random small scheduling instances."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import strategies as st

from fastlims.scheduling import Bench, Calendar, FrozenAssignment, Problem, Run

# the Friday before Europe's spring daylight-saving change (and two weeks after the US one)
ORIGIN = datetime(2027, 3, 26, 6, 0, tzinfo=UTC)
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    zone = draw(st.sampled_from(ZONES))
    hours = []
    for _day in range(7):
        if draw(st.integers(0, 4)) == 0:
            hours.append(())
            continue
        h1 = draw(st.integers(0, 12))
        h2 = draw(st.integers(h1 + 4, 24))
        end = time(0) if h2 == 24 else time(h2, draw(st.sampled_from([0, 30])) if h2 < 23 else 0)
        hours.append(((time(h1, draw(st.sampled_from([0, 15]))), end),))
    closed = frozenset(ORIGIN.date() + timedelta(days=d) for d in draw(st.lists(st.integers(0, 10), max_size=2)))
    maintenance = tuple(
        (ORIGIN + timedelta(minutes=m), ORIGIN + timedelta(minutes=m + length))
        for m, length in draw(st.lists(st.tuples(st.integers(0, 8000), st.integers(30, 600)), max_size=2))
    )
    return Calendar(zone, tuple(hours), closed, maintenance)


@st.composite
def problems(draw: st.DrawFn, max_runs: int = 6, max_benches: int = 3, frozen: bool = True) -> Problem:
    n_benches = draw(st.integers(1, max_benches))
    benches = []
    for i in range(n_benches):
        kind = draw(st.sampled_from(["physical", "virtual"]))
        caps = frozenset(draw(st.lists(st.sampled_from(["a", "b"]), max_size=2)))
        cal = draw(calendars()) if kind == "physical" else Calendar.around_the_clock(draw(calendars()).maintenance)
        benches.append(Bench(f"B{i}", kind, caps, cal))  # type: ignore[arg-type]
    runs = []
    frozen_list = []
    for i in range(draw(st.integers(1, max_runs))):
        bench = draw(st.sampled_from(benches))
        caps = frozenset(c for c in bench.capabilities if draw(st.booleans()))
        duration = draw(st.integers(5, 400))
        runs.append(
            Run(
                run_id=f"R{i}",
                request_id=f"Q{draw(st.integers(0, 2))}",
                duration=duration,
                bench_kind=bench.kind,
                earliest_start=draw(st.integers(-100, 4000)),
                setup=draw(st.integers(0, 40)),
                teardown=draw(st.integers(0, 30)),
                capabilities=caps,
                priority=draw(st.integers(0, 3)),
                deadline=draw(st.none() | st.integers(3000, 40000)),
                may_pause=draw(st.booleans()),
            )
        )
    if frozen and draw(st.booleans()):
        bench = draw(st.sampled_from(benches))
        start = draw(st.integers(-200, 500))
        frozen_list.append(FrozenAssignment("F0", bench.bench_id, start, start + draw(st.integers(30, 600))))
    return Problem(
        ORIGIN,
        tuple(runs),
        tuple(benches),
        tuple(frozen_list),
        makespan_weight=draw(st.none() | st.integers(0, 5)),
        lateness_weight=draw(st.integers(0, 2)),
    )


def office_lab(n_runs: int = 6, deadline: int | None = None) -> Problem:
    """A small fixed lab: two office-hours physical benches in Berlin, one virtual bench."""
    cal = Calendar.office_hours("Europe/Berlin", time(8), time(17), closed_dates=[date(2027, 3, 29)])
    benches = (
        Bench("P1", "physical", frozenset({"cycler"}), cal, name="Cycler 1"),
        Bench("P2", "physical", frozenset({"cycler", "thermal"}), cal, name="Cycler 2"),
        Bench("V1", "virtual", frozenset({"fmi2"}), name="vm-01"),
    )
    runs = []
    for i in range(n_runs):
        kind = "virtual" if i % 3 == 2 else "physical"
        runs.append(
            Run(
                f"R{i}",
                f"Q{i // 3}",
                60 + 37 * i,
                kind,  # type: ignore[arg-type]
                earliest_start=30 * i,
                setup=15 if kind == "physical" else 0,
                teardown=10 if kind == "physical" else 0,
                capabilities=frozenset({"cycler"} if kind == "physical" else {"fmi2"}),
                priority=1 + i % 2,
                deadline=deadline,
            )
        )
    return Problem(ORIGIN, tuple(runs), benches)

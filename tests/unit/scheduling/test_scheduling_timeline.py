"""Calendar expansion: local working hours across daylight saving, closed dates, maintenance,
and the pausable-run arithmetic checked minute by minute."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from hypothesis import given, settings
from hypothesis import strategies as st
from sched_factories import ORIGIN, calendars

from fastlims.scheduling import Bench, Calendar
from fastlims.scheduling.timeline import TimelineIndex, build_timeline


def _minute(dt: datetime) -> int:
    return int((dt - ORIGIN).total_seconds() // 60)


def test_office_hours_follow_daylight_saving_in_berlin() -> None:
    bench = Bench("P", "physical", calendar=Calendar.office_hours("Europe/Berlin", time(8), time(17)))
    tl = build_timeline(bench, ORIGIN, 5 * 1440)
    # Friday 26 March 2027 is CET (UTC+1); Monday 29 March is CEST (UTC+2)
    assert (_minute(datetime(2027, 3, 26, 7, tzinfo=UTC)), _minute(datetime(2027, 3, 26, 16, tzinfo=UTC))) in tl.windows
    assert (_minute(datetime(2027, 3, 29, 6, tzinfo=UTC)), _minute(datetime(2027, 3, 29, 15, tzinfo=UTC))) in tl.windows
    assert len(tl.windows) == 3  # Fri, Mon, Tue; the weekend is closed


def test_closed_dates_and_maintenance_cut_windows_and_break_chains() -> None:
    maint = (datetime(2027, 3, 30, 10, tzinfo=UTC), datetime(2027, 3, 30, 11, tzinfo=UTC))
    cal = Calendar.office_hours("UTC", time(8), time(17), closed_dates=[date(2027, 3, 29)], maintenance=[maint])
    tl = build_timeline(Bench("P", "physical", calendar=cal), ORIGIN, 6 * 1440)
    days = [
        datetime(2027, 3, 26, 8, tzinfo=UTC),
        datetime(2027, 3, 30, 8, tzinfo=UTC),
        datetime(2027, 3, 30, 11, tzinfo=UTC),
    ]
    assert [w[0] for w in tl.windows[:3]] == [_minute(d) for d in days]
    # Friday and Tuesday morning are one chain (a paused run may wait over the weekend and the
    # closed Monday), the maintenance hour on Tuesday starts a new one
    assert tl.chain[0] == tl.chain[1] != tl.chain[2]


def test_virtual_bench_ignores_hours_but_not_maintenance() -> None:
    maint = (datetime(2027, 3, 26, 12, tzinfo=UTC), datetime(2027, 3, 26, 13, tzinfo=UTC))
    cal = Calendar.office_hours("UTC", maintenance=[maint])
    tl = build_timeline(Bench("V", "virtual", calendar=cal), ORIGIN, 1440)
    assert tl.windows == ((0, 360), (420, 1440))


def _brute_pause_end(open_set: set[int], chain_break: set[int], s: int, p: int, horizon: int) -> int | None:
    """End of a pausable run by walking minute by minute."""
    done, t = 0, s
    while t < horizon:
        if t in chain_break and done:
            return None
        if t in open_set:
            done += 1
            if done == p:
                return t + 1
        t += 1
    return None


@settings(max_examples=25, deadline=None)
@given(calendars(), st.integers(1, 900), st.booleans())
def test_pieces_match_minute_by_minute_walk(cal: Calendar, p: int, pausable: bool) -> None:
    horizon = 4 * 1440
    tl = build_timeline(Bench("P", "physical", calendar=cal), ORIGIN, horizon)
    idx = TimelineIndex(tl)
    open_set = {m for a, b in tl.windows for m in range(a, b)}
    # minutes where a maintenance gap lies between windows of different chains
    chain_break = set()
    for i in range(1, len(tl.windows)):
        if tl.chain[i] != tl.chain[i - 1]:
            chain_break.update(range(tl.windows[i - 1][1], tl.windows[i][0]))
    allowed: dict[int, int] = {}
    for lo, hi, span in idx.pieces(p, pausable, 0, horizon):
        for s in range(lo, hi + 1):
            assert s not in allowed, "pieces overlap"
            allowed[s] = span
    for s in range(0, horizon, 7):
        if s not in open_set:
            assert s not in allowed
            continue
        if pausable:
            end = _brute_pause_end(open_set, chain_break, s, p, horizon)
        else:
            end = s + p if all(m in open_set for m in range(s, s + p)) and s + p <= horizon else None
        if end is None or end > horizon:
            assert s not in allowed, f"start {s} allowed but the run cannot finish"
        else:
            assert allowed.get(s) == end - s, f"start {s}: span {allowed.get(s)} vs {end - s}"


@st.composite
def _busy_and_blocked(draw: st.DrawFn) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Disjoint busy intervals (touching allowed, as runs booked back to back) and blocked
    windows that may overlap them and each other."""
    busy: list[tuple[int, int]] = []
    t = draw(st.integers(0, 600))
    for _ in range(draw(st.integers(0, 12))):
        a = t + draw(st.integers(0, 400))
        b = a + draw(st.integers(1, 500))
        busy.append((a, b))
        t = b
    blocked = []
    for _ in range(draw(st.integers(0, 3))):
        a = draw(st.integers(0, 5000))
        blocked.append((a, a + draw(st.integers(1, 900))))
    return busy, blocked


@settings(max_examples=60, deadline=None)
@given(
    calendars(),
    st.integers(1, 700),
    st.booleans(),
    st.integers(0, 3000),
    _busy_and_blocked(),
    st.one_of(st.none(), st.integers(0, 5760)),
)
def test_earliest_fit_outside_is_the_first_free_start_minute_by_minute(
    cal: Calendar,
    p: int,
    pausable: bool,
    t0: int,
    intervals: tuple[list[tuple[int, int]], list[tuple[int, int]]],
    latest: int | None,
) -> None:
    horizon = 4 * 1440
    busy, blocked = intervals
    idx = TimelineIndex(build_timeline(Bench("P", "physical", calendar=cal), ORIGIN, horizon))
    span_at = {s: span for lo, hi, span in idx.pieces(p, pausable, 0, horizon) for s in range(lo, hi + 1)}
    taken = busy + blocked
    expected = None
    for s in range(t0, horizon if latest is None else min(horizon, latest + 1)):
        span = span_at.get(s)
        if span is not None and all(s + span <= a or s >= b for a, b in taken):
            expected = (s, s + span)
            break
    starts, ends = [a for a, _ in busy], [b for _, b in busy]
    assert idx.earliest_fit_outside(p, pausable, t0, starts, ends, latest, blocked) == expected

"""Calendars turned into open windows in model minutes, and the questions solvers ask of them.

A bench's timeline is a sorted list of disjoint, non-touching open windows ``[a, b)`` within
``[0, horizon)``. Consecutive windows form a *chain* when the gap between them is only closed
hours or closed dates: a pausable run may wait over such gaps, never over maintenance (which
needs the bench empty) nor past the horizon.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastlims.scheduling.models import Bench, Calendar, minutes_from

Piece = tuple[int, int, int]
"""``(first_start, last_start, span)``: a run may start anywhere in the closed range and then
occupies the bench for ``span`` minutes."""


def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint intervals covering the same minutes (empty ones dropped)."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _subtract(base: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    j = 0
    for a, b in base:
        cur = a
        while j < len(holes) and holes[j][1] <= cur:
            j += 1
        k = j
        while k < len(holes) and holes[k][0] < b:
            ha, hb = holes[k]
            if ha > cur:
                out.append((cur, ha))
            cur = max(cur, hb)
            k += 1
        if cur < b:
            out.append((cur, b))
    return out


def working_windows(calendar: Calendar, origin: datetime, start: int, end: int) -> list[tuple[int, int]]:
    """Open spans of the weekly hours minus closed dates, in minutes, clipped to [start, end)."""
    zone = ZoneInfo(calendar.timezone)
    first = (origin + timedelta(minutes=start)).astimezone(zone).date() - timedelta(days=1)
    last = (origin + timedelta(minutes=end)).astimezone(zone).date() + timedelta(days=1)
    spans: list[tuple[int, int]] = []
    day = first
    while day <= last:
        if day not in calendar.closed_dates:
            for t1, t2 in calendar.weekly_hours[day.weekday()]:
                d1 = datetime.combine(day, t1, tzinfo=zone)
                d2 = datetime.combine(
                    day + timedelta(days=1) if t2.hour == 0 and t2.minute == 0 else day, t2, tzinfo=zone
                )
                spans.append((minutes_from(origin, d1), minutes_from(origin, d2)))
        day += timedelta(days=1)
    return [(max(a, start), min(b, end)) for a, b in merge_intervals(spans) if b > start and a < end]


def maintenance_windows(calendar: Calendar, origin: datetime) -> list[tuple[int, int]]:
    """Maintenance windows in minutes (merged), rounded outwards to whole minutes."""
    out = []
    for s, e in calendar.maintenance:
        a = minutes_from(origin, s)
        secs = (e - origin).total_seconds()
        b = int(-(-secs // 60))
        out.append((a, b))
    return merge_intervals(out)


@dataclass(frozen=True)
class BenchTimeline:
    """Open windows of one bench over ``[0, horizon)`` and the chains pausable runs may use."""

    windows: tuple[tuple[int, int], ...]
    chain: tuple[int, ...]
    horizon: int

    @property
    def starts(self) -> list[int]:
        return [a for a, _ in self.windows]

    def open_minutes(self, a: int, b: int) -> int:
        """Open minutes within ``[a, b)``."""
        total = 0
        i = max(0, bisect.bisect_right(self._ends, a))
        while i < len(self.windows) and self.windows[i][0] < b:
            wa, wb = self.windows[i]
            total += max(0, min(b, wb) - max(a, wa))
            i += 1
        return total

    @property
    def _ends(self) -> list[int]:
        return [b for _, b in self.windows]

    def longest_window(self) -> int:
        return max((b - a for a, b in self.windows), default=0)


def build_timeline(bench: Bench, origin: datetime, horizon: int) -> BenchTimeline:
    """Expand a bench's calendar over ``[0, horizon)`` minutes."""
    maintenance = maintenance_windows(bench.calendar, origin)
    base = [(0, horizon)] if bench.kind == "virtual" else working_windows(bench.calendar, origin, 0, horizon)
    windows = _subtract(base, maintenance)
    chain: list[int] = []
    cid = 0
    for i, (a, _b) in enumerate(windows):
        if i > 0:
            gap_start = windows[i - 1][1]
            hit = any(ma < a and mb > gap_start for ma, mb in maintenance)
            if hit:
                cid += 1
        chain.append(cid)
    return BenchTimeline(windows=tuple(windows), chain=tuple(chain), horizon=horizon)


class TimelineIndex:
    """Fast queries on one timeline (prefix sums of open time per window)."""

    def __init__(self, timeline: BenchTimeline) -> None:
        self.tl = timeline
        self.a = [w[0] for w in timeline.windows]
        self.b = [w[1] for w in timeline.windows]
        self.chain = list(timeline.chain)
        cum = [0]
        for a, b in timeline.windows:
            cum.append(cum[-1] + b - a)
        self.cum = cum
        # index of the last window of each window's chain
        last = [0] * len(self.a)
        for i in range(len(self.a) - 1, -1, -1):
            last[i] = i if i == len(self.a) - 1 or self.chain[i + 1] != self.chain[i] else last[i + 1]
        self.chain_last = last

    def window_at_or_after(self, t: int) -> int:
        """Index of the first window whose end is after ``t`` (len if none)."""
        return bisect.bisect_right(self.b, t)

    def pause_end(self, s: int, k: int, p: int) -> int | None:
        """End of a pausable run started at ``s`` inside window ``k`` needing ``p`` open minutes,
        or None if its chain (or the horizon) ends first."""
        target = self.cum[k] + (s - self.a[k]) + p
        last = self.chain_last[k]
        if target > self.cum[last + 1]:
            return None
        m = bisect.bisect_left(self.cum, target, lo=k + 1, hi=last + 2) - 1
        return self.a[m] + (target - self.cum[m])

    def pieces(self, p: int, pausable: bool, lo: int, hi_end: int) -> list[Piece]:
        """All ways to start a run of ``p`` minutes at or after ``lo`` that end by ``hi_end``.

        A strict run gets one piece per window long enough; a pausable one gets, per start
        window, one piece per window it may end in (its span is constant within a piece).
        """
        out: list[Piece] = []
        k0 = self.window_at_or_after(lo)
        for k in range(k0, len(self.a)):
            a, b = self.a[k], self.b[k]
            if a >= hi_end:
                break
            first = max(a, lo)
            if not pausable:
                last = min(b - p, hi_end - p)
                if last >= first:
                    out.append((first, last, p))
                continue
            g_k = a - self.cum[k]
            last_w = self.chain_last[k]
            for m in range(k, last_w + 1):
                # the run ends in window m when cum[m] < C(s) + p <= cum[m+1]
                off_lo = self.cum[m] - self.cum[k] - p + 1
                off_hi = self.cum[m + 1] - self.cum[k] - p
                s_lo = max(first, a + off_lo)
                s_hi = min(b - 1, a + off_hi)
                if s_lo > s_hi:
                    if a + off_lo > b - 1:
                        break
                    continue
                span = (self.a[m] - self.cum[m]) - g_k + p
                s_hi = min(s_hi, hi_end - span)
                if s_lo <= s_hi:
                    out.append((s_lo, s_hi, span))
        return out

    def earliest_fit(
        self,
        p: int,
        pausable: bool,
        t0: int,
        busy_starts: list[int],
        busy_ends: list[int],
        latest: int | None = None,
    ) -> tuple[int, int] | None:
        """Earliest ``(start, end)`` at or after ``t0`` that fits the calendar and avoids the
        busy intervals (sorted, disjoint, given by parallel start and end lists); None if
        there is none, or none starting by ``latest`` (a caller that already has a cheaper
        place elsewhere need not walk the rest of a full bench)."""
        # the hot loop of every list scheduler here: plain locals, and both indices only
        # ever move forward (bisect from where they are)
        win_a, win_b = self.a, self.b
        n = len(win_a)
        n_busy = len(busy_starts)
        cut = (1 << 62) if latest is None else latest
        t = t0
        k = bisect.bisect_right(win_b, t)
        j = bisect.bisect_right(busy_ends, t)  # first busy interval ending after t
        while k < n:
            a, b = win_a[k], win_b[k]
            s = t if t > a else a
            if s >= b:
                k += 1
                continue
            if s > cut:
                return None
            if pausable:
                end = self.pause_end(s, k, p)
                if end is None:
                    # every later start in this chain is cut short too: jump to the next chain
                    k = self.chain_last[k] + 1
                    continue
            else:
                end = s + p
                if end > b:
                    k += 1
                    continue
            if j < n_busy and busy_ends[j] <= s:
                j = bisect.bisect_right(busy_ends, s, j)
            if j < n_busy and busy_starts[j] < end:
                # a run needs at least p free minutes in a row: skip the busy intervals whose
                # gap to the next one is shorter (on a full bench most are)
                last = n_busy - 1
                while j < last and busy_starts[j + 1] - busy_ends[j] < p:
                    j += 1
                t = busy_ends[j]
                j += 1
                k = bisect.bisect_right(win_b, t, k)
                continue
            return s, end
        return None

    def earliest_fit_outside(
        self,
        p: int,
        pausable: bool,
        t0: int,
        busy_starts: list[int],
        busy_ends: list[int],
        latest: int | None,
        blocked: list[tuple[int, int]],
    ) -> tuple[int, int] | None:
        """:meth:`earliest_fit` that also keeps out of the ``blocked`` windows (any number, may
        overlap the busy ones). A later start never ends earlier, so a fit that meets a
        blocked window can only move past that window's end."""
        while True:
            fit = self.earliest_fit(p, pausable, t0, busy_starts, busy_ends, latest)
            if fit is None:
                return None
            clash = [hi for lo, hi in blocked if lo < fit[1] and fit[0] < hi]
            if not clash:
                return fit
            t0 = max(clash)

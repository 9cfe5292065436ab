"""Schedules out of the model: schedule.json for ``schedule-output/``, a Gantt chart (SVG text
or PNG bytes) and the per-request answer the seed's Activity 3 returns (optimised start date
and bench name). Pure: these build strings and bytes; the caller writes them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from fastlims.scheduling.models import Assignment, Bench, Problem, Schedule, datetime_at, minutes_from
from fastlims.scheduling.timeline import build_timeline

SCHEDULE_FORMAT = "fastlims.schedule/1"


@dataclass(frozen=True)
class RequestPlan:
    """What a request gets back: when its first run starts (setup included) and on which bench,
    when its last run ends, and every bench it uses."""

    request_id: str
    optimised_start: datetime
    bench_name: str
    end: datetime
    bench_names: tuple[str, ...]
    preferred_start: datetime | None


def request_summaries(problem: Problem, schedule: Schedule) -> dict[str, RequestPlan]:
    """Per request id: the optimised start datetime and bench name (the seed's answer)."""
    runs = {r.run_id: r for r in problem.runs}
    names = {b.bench_id: b.display_name for b in problem.benches}
    grouped: dict[str, list[Assignment]] = {}
    for a in schedule.assignments:
        run = runs.get(a.run_id)
        if run is not None:
            grouped.setdefault(run.request_id, []).append(a)
    out: dict[str, RequestPlan] = {}
    for request_id, items in sorted(grouped.items()):
        items.sort(key=lambda a: (a.start, a.bench_id))
        first = items[0]
        benches: list[str] = []
        for a in items:
            if names[a.bench_id] not in benches:
                benches.append(names[a.bench_id])
        preferred = min(runs[a.run_id].earliest_start for a in items)
        out[request_id] = RequestPlan(
            request_id=request_id,
            optimised_start=datetime_at(schedule.origin, first.start),
            bench_name=names[first.bench_id],
            end=datetime_at(schedule.origin, max(a.end for a in items)),
            bench_names=tuple(benches),
            preferred_start=datetime_at(problem.origin, preferred),
        )
    return out


def _iso(origin: datetime, minute: int) -> str:
    return datetime_at(origin, minute).isoformat().replace("+00:00", "Z")


def schedule_to_dict(problem: Problem, schedule: Schedule) -> dict[str, Any]:
    """The schedule.json document as a dict (times ISO 8601 UTC and model minutes)."""
    runs = {r.run_id: r for r in problem.runs}
    names = {b.bench_id: b.display_name for b in problem.benches}
    return {
        "format": SCHEDULE_FORMAT,
        "origin": _iso(schedule.origin, 0),
        "solver": schedule.solver,
        "status": schedule.status,
        "objective": schedule.objective,
        "best_bound": schedule.best_bound,
        "gap": schedule.gap,
        "makespan_min": schedule.makespan,
        "weighted_lateness": schedule.weighted_lateness,
        "time_to_first_feasible_s": schedule.time_to_first_feasible_s,
        "time_used_s": schedule.time_used_s,
        "time_limit_s": schedule.time_limit_s,
        "runs": [
            {
                "run_id": a.run_id,
                "request_id": runs[a.run_id].request_id if a.run_id in runs else None,
                "bench_id": a.bench_id,
                "bench_name": names.get(a.bench_id, a.bench_id),
                "start": _iso(schedule.origin, a.start),
                "end": _iso(schedule.origin, a.end),
                "test_start": _iso(schedule.origin, a.start + (runs[a.run_id].setup if a.run_id in runs else 0)),
                "start_min": a.start,
                "end_min": a.end,
                "frozen": a.frozen,
            }
            for a in schedule.assignments
        ],
        "requests": [
            {
                "request_id": plan.request_id,
                "optimised_start": plan.optimised_start.isoformat().replace("+00:00", "Z"),
                "bench_name": plan.bench_name,
                "end": plan.end.isoformat().replace("+00:00", "Z"),
                "bench_names": list(plan.bench_names),
            }
            for plan in request_summaries(problem, schedule).values()
        ],
    }


def schedule_to_json(problem: Problem, schedule: Schedule) -> str:
    """schedule.json text (per run: bench, start, end; per request: optimised start, bench)."""
    return json.dumps(schedule_to_dict(problem, schedule), indent=2)


def schedule_from_json(text: str) -> Schedule:
    """Read back a schedule written by :func:`schedule_to_json` (e.g. as ``previous``)."""
    doc = json.loads(text)
    if doc.get("format") != SCHEDULE_FORMAT:
        raise ValueError(f"not a {SCHEDULE_FORMAT} document (format={doc.get('format')!r})")
    origin = datetime.fromisoformat(doc["origin"].replace("Z", "+00:00"))
    assignments = []
    for item in doc["runs"]:
        start = item.get("start_min")
        end = item.get("end_min")
        if start is None or end is None:
            start = minutes_from(origin, datetime.fromisoformat(item["start"].replace("Z", "+00:00")))
            end = minutes_from(origin, datetime.fromisoformat(item["end"].replace("Z", "+00:00")))
        assignments.append(Assignment(item["run_id"], item["bench_id"], int(start), int(end), bool(item["frozen"])))
    return Schedule(
        origin=origin,
        assignments=tuple(assignments),
        objective=int(doc["objective"]),
        best_bound=int(doc["best_bound"]),
        gap=float(doc["gap"]),
        solver=str(doc["solver"]),
        status="optimal" if doc["status"] == "optimal" else "feasible",
        time_to_first_feasible_s=float(doc["time_to_first_feasible_s"]),
        time_used_s=float(doc["time_used_s"]),
        time_limit_s=float(doc.get("time_limit_s", 0.0)),
        makespan=int(doc.get("makespan_min", 0)),
        weighted_lateness=int(doc.get("weighted_lateness", 0)),
    )


_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def _request_colours(problem: Problem) -> Mapping[str, str]:
    ids = sorted({r.request_id for r in problem.runs})
    return {rid: _PALETTE[i % len(_PALETTE)] for i, rid in enumerate(ids)}


def _span(problem: Problem, schedule: Schedule) -> tuple[int, int]:
    lo = min([0] + [a.start for a in schedule.assignments])
    hi = max([60] + [a.end for a in schedule.assignments])
    return lo, hi


def _closed_spans(problem: Problem, bench: Bench, lo: int, horizon: int) -> list[tuple[int, int]]:
    """Closed stretches of a bench between ``max(lo, 0)`` and ``horizon`` (model minutes)."""
    tl = build_timeline(bench, problem.origin, horizon)
    cursor = max(lo, 0)
    out = []
    for a, b in list(tl.windows) + [(horizon, horizon)]:
        if a > cursor:
            out.append((cursor, a))
        cursor = max(cursor, b)
    return out


def gantt_svg(problem: Problem, schedule: Schedule, width: int = 1400) -> str:
    """An SVG Gantt chart: one lane per bench, runs coloured by request, setup and teardown
    darker, frozen runs outlined, closed hours grey and maintenance hatched."""
    lo, hi = _span(problem, schedule)
    label_w, lane_h, top = 110, 22, 30
    plot_w = width - label_w - 10
    benches = list(problem.benches)
    height = top + lane_h * len(benches) + 30
    scale = plot_w / max(1, hi - lo)

    def x(minute: int) -> float:
        return label_w + (minute - lo) * scale

    runs = {r.run_id: r for r in problem.runs}
    colours = _request_colours(problem)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        '<defs><pattern id="maint" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="3" height="6" fill="#c44"/></pattern></defs>',
        f'<text x="{label_w}" y="16">{escape(schedule.solver)} · objective {schedule.objective} · '
        f"gap {schedule.gap:.1%} · from {escape(_iso(schedule.origin, lo))} "
        f"to {escape(_iso(schedule.origin, hi))}</text>",
    ]
    horizon = max(hi, 1)
    closed_rects: list[str] = []  # drawn over the runs, so a paused run shows its pauses
    for i, bench in enumerate(benches):
        y = top + i * lane_h
        parts.append(f'<text x="4" y="{y + 15}">{escape(bench.display_name)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{plot_w}" height="{lane_h - 4}" fill="#eee"/>')
        for a, b in _closed_spans(problem, bench, lo, horizon):
            closed_rects.append(
                f'<rect x="{x(a):.1f}" y="{y}" width="{(b - a) * scale:.1f}" height="{lane_h - 4}" '
                f'fill="#bbb" fill-opacity="0.55"><title>closed</title></rect>'
            )
        for ms, me in bench.calendar.maintenance:
            a, b = minutes_from(problem.origin, ms), minutes_from(problem.origin, me)
            if b > lo and a < hi:
                a, b = max(a, lo), min(b, hi)
                parts.append(
                    f'<rect x="{x(a):.1f}" y="{y}" width="{(b - a) * scale:.1f}" height="{lane_h - 4}" '
                    f'fill="url(#maint)"><title>maintenance</title></rect>'
                )
    lane = {b.bench_id: i for i, b in enumerate(benches)}
    for asg in schedule.assignments:
        if asg.bench_id not in lane:
            continue
        y = top + lane[asg.bench_id] * lane_h + 2
        run = runs.get(asg.run_id)
        colour = colours.get(run.request_id, "#888") if run is not None else "#888"
        title = escape(
            f"{asg.run_id} ({run.request_id if run else 'frozen'}) {_iso(schedule.origin, asg.start)} – "
            f"{_iso(schedule.origin, asg.end)}"
        )
        stroke = ' stroke="#000" stroke-width="1.5"' if asg.frozen else ""
        parts.append(
            f'<rect x="{x(asg.start):.2f}" y="{y}" width="{max(0.5, (asg.end - asg.start) * scale):.2f}" '
            f'height="{lane_h - 8}" fill="{colour}"{stroke}><title>{title}</title></rect>'
        )
        if run is not None and run.setup:
            parts.append(
                f'<rect x="{x(asg.start):.2f}" y="{y}" width="{run.setup * scale:.2f}" '
                f'height="{lane_h - 8}" fill="#000" fill-opacity="0.3"/>'
            )
        if run is not None and run.teardown:
            parts.append(
                f'<rect x="{x(asg.end - run.teardown):.2f}" y="{y}" width="{run.teardown * scale:.2f}" '
                f'height="{lane_h - 8}" fill="#000" fill-opacity="0.3"/>'
            )
    parts.extend(closed_rects)
    # day ticks
    first_day = datetime_at(problem.origin, lo).replace(hour=0, minute=0)
    day = first_day
    y_axis = top + lane_h * len(benches) + 12
    step = max(1, int((hi - lo) / 1440 / 20) + 1)
    while minutes_from(problem.origin, day) <= hi:
        m = minutes_from(problem.origin, day)
        if m >= lo:
            parts.append(
                f'<line x1="{x(m):.1f}" y1="{top}" x2="{x(m):.1f}" y2="{y_axis - 10}" stroke="#999" '
                'stroke-width="0.3"/>'
            )
            parts.append(f'<text x="{x(m):.1f}" y="{y_axis}">{day:%m-%d}</text>')
        day += timedelta(days=step)
    parts.append("</svg>")
    return "\n".join(parts)


def gantt_png(problem: Problem, schedule: Schedule, dpi: int = 110) -> bytes:
    """The Gantt chart as PNG bytes, drawn with matplotlib's Agg backend (no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lo, hi = _span(problem, schedule)
    benches = list(problem.benches)
    lane = {b.bench_id: i for i, b in enumerate(benches)}
    runs = {r.run_id: r for r in problem.runs}
    colours = _request_colours(problem)
    fig = Figure(figsize=(14, 0.45 * len(benches) + 1.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    horizon = max(hi, 1)
    for bench in benches:
        i = lane[bench.bench_id]
        closed = [(a / 1440, (b - a) / 1440) for a, b in _closed_spans(problem, bench, lo, horizon)]
        # over the runs, translucent, so a paused run shows its pauses
        ax.broken_barh(closed, (i - 0.45, 0.9), facecolors="#999999", alpha=0.45, zorder=3)
    for asg in schedule.assignments:
        if asg.bench_id not in lane:
            continue
        run = runs.get(asg.run_id)
        colour = colours.get(run.request_id, "#888888") if run is not None else "#888888"
        ax.broken_barh(
            [(asg.start / 1440, (asg.end - asg.start) / 1440)],
            (lane[asg.bench_id] - 0.35, 0.7),
            facecolors=colour,
            edgecolors="black" if asg.frozen else "none",
            linewidth=0.8,
        )
    ax.set_yticks(range(len(benches)))
    ax.set_yticklabels([b.display_name for b in benches])
    ax.invert_yaxis()
    ax.set_xlim(lo / 1440, hi / 1440)
    ax.set_xlabel(f"days after {_iso(schedule.origin, 0)}")
    ax.set_title(f"{schedule.solver}: objective {schedule.objective}, gap {schedule.gap:.1%}")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()

"""``fastlims demo --until-complete``: watch the demo's requests to their ends, one progress line
per state change, then a one-screen summary (request, test, UUT, benches, state, key outcomes,
twin residual) and the exit code: 0 only when every request ended as its sample says it should.

:func:`summary_table` and :func:`problems` take data and return data; :func:`snapshot` reads it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastlims.demo import DemoRequest
from fastlims.requests import service as requests_service
from fastlims.requests.states import Status
from fastlims.runs.models import ScheduledRun
from fastlims.runs.queries import runs_of
from fastlims.system import System

ENDED = {"Completed", "Failed", "Cancelled"}
NONE = "—"


@dataclass(frozen=True)
class Watched:
    """A demo request as submitted: its number and the sample it came from (its expected end)."""

    number: str
    test_uuid: str
    sample: DemoRequest


@dataclass(frozen=True)
class RunView:
    run_id: str
    bench: str
    state: str
    outcomes: dict[str, float | None]
    rms_voltage_error_V: float | None = None  # the twin comparison's, when the run has one


@dataclass(frozen=True)
class RequestView:
    watched: Watched
    status: str
    failure_reason: str | None
    runs: tuple[RunView, ...]

    @property
    def ended(self) -> bool:
        return self.status in ENDED


def twin_residual(row: ScheduledRun) -> float | None:
    """The RMS voltage residual of a physical run against its twin, None until both ended and the
    comparison was made (a virtual run, a twin, or a comparison with a ``problem``: "—")."""
    stored = row.comparison_json
    if not stored:
        return None
    value = json.loads(stored).get("rms_voltage_error_V")
    return float(value) if value is not None else None


def snapshot(system: System, watched: Sequence[Watched]) -> list[RequestView]:
    """Each watched request's status and runs, as the database has them now."""
    views = []
    with system.database.transaction() as session:
        for item in watched:
            request = requests_service.get_by_uuid(session=session, test_uuid=item.test_uuid)
            runs = tuple(
                RunView(
                    row.run_id,
                    row.bench,
                    row.state,
                    json.loads(row.outcomes_json) if row.outcomes_json else {},
                    twin_residual(row),
                )
                for row in runs_of(session=session, request=request)
            )
            views.append(RequestView(item, Status(request.status).name, request.failure_reason, runs))
    return views


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def key_outcomes(view: RequestView) -> str:
    """The figures a battery engineer reads first: discharge capacity (Ah) and DCIR (mOhm), each
    run's, and for a failed request the start of its reason."""
    parts = []
    capacities = [r.outcomes["discharge_capacity_Ah"] for r in view.runs if r.outcomes.get("discharge_capacity_Ah")]
    dcirs = [r.outcomes["dcir_ohm"] for r in view.runs if r.outcomes.get("dcir_ohm")]
    if dcirs:
        parts.append("DCIR " + "/".join(f"{1000 * float(v):.2f}" for v in dcirs) + " mOhm")
    elif capacities:
        parts.append("Q " + "/".join(f"{float(v):.2f}" for v in capacities) + " Ah")
    if view.status == "Failed" and view.failure_reason:
        reason = view.failure_reason.split(": ", 1)[-1]
        parts.append(reason[:48] + ("…" if len(reason) > 48 else ""))
    return "; ".join(parts) or NONE


def residual(view: RequestView) -> str:
    found = [r.rms_voltage_error_V for r in view.runs if r.rms_voltage_error_V is not None]
    return "/".join(f"{1000 * v:.1f} mV" for v in found) if found else NONE


def summary_table(views: Sequence[RequestView]) -> str:
    header = ("request", "test", "UUT", "bench(es)", "state", "key outcomes", "twin RMS")
    rows = [header]
    for view in views:
        benches = sorted({r.bench for r in view.runs})
        kind = view.watched.sample.bench
        rows.append(
            (
                view.watched.number,
                view.watched.sample.test_name,
                view.watched.sample.uut,
                f"{kind}: {','.join(benches)}" if benches else kind,
                view.status,
                key_outcomes(view),
                residual(view),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def problems(views: Sequence[RequestView], *, timed_out: bool) -> list[str]:
    """Why the demo did not end as expected: each request that ended otherwise than its sample
    says, or (after the timeout) had not ended; empty when all is well."""
    found = []
    for view in views:
        expected = view.watched.sample.expected
        label = f"{view.watched.number} ({view.watched.sample.test_name}, {view.watched.sample.uut})"
        if view.ended and view.status != expected:
            found.append(
                f"{label} ended {view.status}, expected {expected}: {view.failure_reason or 'no reason given'}"
            )
        elif (
            view.ended
            and expected == "Failed"
            and view.watched.sample.expected_reason not in (view.failure_reason or "")
        ):
            found.append(
                f"{label} failed, but not for the expected reason ({view.watched.sample.expected_reason!r}):"
                f" {view.failure_reason}"
            )
        elif not view.ended and timed_out:
            found.append(f"{label} still {view.status} at the timeout, expected {expected}")
    return found


def progress_line(view: RequestView, previous: str | None) -> str:
    sample = view.watched.sample
    change = f"{previous} -> {view.status}" if previous else view.status
    benches = ",".join(sorted({r.bench for r in view.runs}))
    return f"{view.watched.number}  {sample.bench:<8} {sample.test_name} / {sample.uut}: {change}" + (
        f"  [{benches}]" if benches else ""
    )


async def watch(
    system: System,
    watched: Sequence[Watched],
    timeout_s: float,
    echo: Callable[[str], None],
    *,
    poll_s: float = 1.0,
) -> int:
    """Poll until every watched request ended or ``timeout_s`` passed; echo the progress, the
    summary and any problems; 0 when every request ended as expected, else 1."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, str] = {}
    while True:
        views = await asyncio.to_thread(snapshot, system, watched)
        for view in views:
            if seen.get(view.watched.number) != view.status:
                echo(progress_line(view, seen.get(view.watched.number)))
                seen[view.watched.number] = view.status
        done = all(v.ended for v in views)
        timed_out = not done and time.monotonic() >= deadline
        if done or timed_out:
            break
        await asyncio.sleep(poll_s)
    echo("")
    echo(summary_table(views))
    found = problems(views, timed_out=timed_out)
    if timed_out:
        echo(f"\ntimeout: not every demo request ended within {timeout_s:g} s")
    for problem in found:
        echo(f"unexpected: {problem}")
    if not found:
        echo(f"\nevery demo request ended as expected ({len(views)} requests)")
    return 1 if found else 0

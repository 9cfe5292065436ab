"""What the gateway decides, as data in and data out: whether a bench can take a run from what it
announced, what happens to a run whose bench went offline, and how a run ended from what the
bench said about it.

The per-test offline policy: a test that may be paused (capacity, power, cycle-life, calendar
tests: the UUT rests at open circuit while the bench is away, and the procedure resumes at the
step it was in) waits for its bench and is resumed; an abuse test (``abuse: true``: overcharge,
forced discharge, short circuit, thermal abuse) is never resumed, because the UUT's state after
an unobserved interruption is unknown and possibly dangerous: it fails, with its samples kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from fastlims.procedures.requirements import bench_needs
from fastlims.procedures.runfile import RunProcedure
from fastlims.scheduling.models import BenchRatings, RunNeeds

OfflineDecision = Literal["wait_and_resume", "fail"]


def after_offline(abuse: bool) -> OfflineDecision:
    return "fail" if abuse else "wait_and_resume"


def run_needs(run_file: RunProcedure) -> RunNeeds:
    """What the run file's procedure asks of the bench that executes it."""
    return RunNeeds(**dataclasses.asdict(bench_needs(run_file.procedure, run_file.ratings.format)))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def unfit(bench: str, state: str | None, capabilities: Mapping[str, Any] | None, run_file: RunProcedure) -> str | None:
    """Why ``bench`` cannot take the run now (None: it can), from its last announced state."""
    if state is None:
        return f"bench {bench} has never come online (no state message on its topic)"
    if state in ("offline", "fault"):
        return f"bench {bench} is {state}"
    if capabilities is None:
        return None
    announced = BenchRatings(
        max_current_A=_number(capabilities.get("max_current_A")),
        min_voltage_V=_number(capabilities.get("min_voltage_V")),
        max_voltage_V=_number(capabilities.get("max_voltage_V")),
        temperature_chamber=bool(capabilities.get("temperature_chamber")),
    )
    found = announced.shortfalls(run_needs(run_file))  # the scheduler's own check, on what the bench said
    if found:
        return f"bench {bench} announced capabilities that do not cover the run: {'; '.join(found)}"
    return None


def ending(note: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> tuple[str, str, str | None]:
    """(status, end_cause, reason) of a run from its last word and the events recorded."""
    event = note.get("event")
    reason = note.get("reason")
    tripped = [e for e in events if e.get("event") == "safety_tripped"]
    if tripped:
        trip = tripped[-1]
        said = trip.get("reason") or (
            f"safety limit {trip.get('limit')} tripped at {trip.get('value')} (test time {trip.get('test_time_s')} s)"
        )
        return "failed", "safety_limit", str(said)
    if event == "completed":
        return "completed", "procedure_complete", None
    if note.get("overran"):
        return "failed", "timeout", str(reason)
    if event == "aborted":
        return "failed", "aborted", str(reason or "the bench aborted the run")
    if note.get("interrupted"):
        return "failed", "interrupted", str(reason)
    return "failed", "error", str(reason or "the bench reported the run failed")

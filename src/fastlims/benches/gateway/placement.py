"""Where a physical run can go when its bench cannot take it: another active physical bench of
the registry, online as it last said, whose ratings cover the run, and free for the run's
length from now."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.benches import registry
from fastlims.benches.gateway import policy
from fastlims.benches.gateway.models import BenchLiveState
from fastlims.procedures.runfile import RunProcedure
from fastlims.runs.lifecycle import RunState
from fastlims.runs.models import ScheduledRun

_ENDED = (RunState.completed.value, RunState.failed.value, RunState.cancelled.value)


def candidates(session: Session, run_file: RunProcedure, *, exclude: Sequence[str]) -> list[str]:
    """Online physical benches (registry order) that cover the run, minus ``exclude``."""
    wanted = policy.run_needs(run_file)
    found = []
    for record in registry.get_all(session=session):
        if record.kind != registry.Kind.physical or record.name in exclude:
            continue
        ratings = registry.ratings_of(record)
        if registry.scheduling_ratings(ratings, virtual=False).shortfalls(wanted, record.capabilities):
            continue
        live = session.get(BenchLiveState, record.name)
        if live is None or policy.unfit(record.name, live.state, live.capabilities, run_file) is not None:
            continue
        found.append(record.name)
    return found


def is_free(session: Session, bench: str, start: datetime, end: datetime, *, ignore_run: str) -> bool:
    clash = session.scalar(
        select(ScheduledRun.run_id).where(
            ScheduledRun.bench == bench,
            ScheduledRun.run_id != ignore_run,
            ScheduledRun.state.not_in(_ENDED),
            ScheduledRun.start_at < end,
            ScheduledRun.end_at > start,
        )
    )
    return clash is None

"""A request's runs: their rows (the booking, how the run ended, its stored outcomes) and,
for one run, the per-step and per-cycle summaries the bench wrote beside its results.

The caller has checked that the user may see the request (``requests.service.get_for``).
"""

from __future__ import annotations

import json
import logging
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.intake import layout
from fastlims.intake.storage import BlobStorage
from fastlims.requests.models import TestRequest
from fastlims.requests.service import NotFound
from fastlims.runs.models import ScheduledRun
from fastlims.runs.results import RESULTS_FILE, SUMMARY_FILE
from fastlims.runs.schemas import (
    ComparisonDetailOut,
    ComparisonOut,
    CycleSummary,
    RunDetailOut,
    RunOut,
    RunOutcomes,
    StepSummary,
)
from fastlims.timeutil import to_local

log = logging.getLogger(__name__)


class RunNotFound(NotFound):
    """The request has no run of that id (an HTTP 404, as for an unknown request)."""


def runs_of(*, session: Session, request: TestRequest) -> list[ScheduledRun]:
    """The request's runs, in run id order (``run-001``, ``run-002``, ...)."""
    query = select(ScheduledRun).where(ScheduledRun.test_uuid == request.test_uuid).order_by(ScheduledRun.run_id)
    return list(session.scalars(query))


def run_of(*, session: Session, request: TestRequest, run_id: str) -> ScheduledRun:
    """One run of the request; :class:`RunNotFound` names the request and the run otherwise."""
    row = session.scalar(
        select(ScheduledRun).where(ScheduledRun.run_id == run_id, ScheduledRun.test_uuid == request.test_uuid)
    )
    if row is None:
        raise RunNotFound(f"test request {request.request_number} has no run {run_id!r}")
    return row


def results_folder(request: TestRequest, run_id: str) -> str | None:
    """Where the bench writes the run's files (``simulation-results/<run_id>``), None before the
    request has a simulation folder."""
    if not request.simulation_folder:
        return None
    return f"{request.simulation_folder}/{layout.SIMULATION_RESULTS}/{run_id}"


def results_key(request: TestRequest, run_id: str) -> str | None:
    folder = results_folder(request, run_id)
    return f"{folder}/{RESULTS_FILE}" if folder else None


def factors(row: ScheduledRun) -> dict[str, float]:
    """The run's DoE values: FMU parameters and procedure variable values in one mapping (they
    cannot clash: parameters are FMU variables, values the procedure's own names)."""
    merged: dict[str, float] = {}
    for text in (row.parameters_json, row.values_json):
        document = json.loads(text) if text else {}
        if isinstance(document, dict):
            merged.update({str(k): float(v) for k, v in document.items() if isinstance(v, int | float)})
    return merged


def outcomes(row: ScheduledRun) -> RunOutcomes | None:
    """The outcomes stored when the run ended; None before, or when the run measured nothing."""
    document = json.loads(row.outcomes_json) if row.outcomes_json else None
    return RunOutcomes.model_validate(document) if document else None


def run_out(row: ScheduledRun, zone: ZoneInfo) -> RunOut:
    """The row in the API's words, times in the lab's zone."""
    return RunOut(
        run_id=row.run_id,
        bench=row.bench,
        kind=row.bench_kind,
        state=row.state,
        planned_start=to_local(row.test_start_at, zone),  # type: ignore[arg-type]
        planned_end=to_local(row.end_at, zone),  # type: ignore[arg-type]
        started_at=to_local(row.started_at, zone),
        ended_at=to_local(row.ended_at, zone),
        end_cause=row.end_cause,
        reason=row.reason,
        factors=factors(row),
        outcomes=outcomes(row),
        twin_of=row.twin_of,
        comparison=ComparisonOut.model_validate(comparison_of(row)) if row.comparison_json else None,
    )


def comparison_of(row: ScheduledRun) -> dict[str, Any]:
    """The stored comparison of a physical run and its twin (empty before it was computed)."""
    document = json.loads(row.comparison_json) if row.comparison_json else {}
    return document if isinstance(document, dict) else {}


def list_runs(*, session: Session, request: TestRequest, zone: ZoneInfo) -> list[RunOut]:
    """Every run of the request (see :func:`run_out`)."""
    return [run_out(row, zone) for row in runs_of(session=session, request=request)]


def summary_of(*, storage: BlobStorage, request: TestRequest, run_id: str) -> dict[str, Any]:
    """The run's ``summary.json`` (empty before the bench wrote it)."""
    folder = results_folder(request, run_id)
    if folder is None:
        return {}
    try:
        document = json.loads(storage.get(f"{folder}/{SUMMARY_FILE}"))
    except FileNotFoundError:
        return {}
    return document if isinstance(document, dict) else {}


def get_run(
    *, session: Session, storage: BlobStorage, request: TestRequest, run_id: str, zone: ZoneInfo
) -> RunDetailOut:
    """One run with its per-step and per-cycle summaries (:class:`RunNotFound` if unknown)."""
    row = run_of(session=session, request=request, run_id=run_id)
    summary = summary_of(storage=storage, request=request, run_id=run_id)
    try:
        steps = [StepSummary.model_validate(step) for step in summary.get("steps") or []]
        cycles = [CycleSummary.model_validate(cycle) for cycle in summary.get("cycles") or []]
    except ValidationError as exc:  # a summary of another format: the run still answers
        log.warning("a run summary does not fit the runs API", extra={"run_id": run_id, "problem": str(exc)})
        steps, cycles = [], []
    answer = run_out(row, zone).model_dump(exclude={"comparison"})
    stored = comparison_of(row)
    detail = ComparisonDetailOut.model_validate(stored) if stored else None
    return RunDetailOut(**answer, steps=steps, cycles=cycles, comparison=detail)

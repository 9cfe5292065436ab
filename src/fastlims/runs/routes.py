"""A request's runs over HTTP: the list with factors and outcomes, one run with its per-step and
per-cycle summaries, and one run's full-resolution results as CSV."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from fastlims.deps import DbSession, SystemDep
from fastlims.intake.deps import IntakeDep
from fastlims.intake.service import Intake
from fastlims.requests import service as requests
from fastlims.requests.models import TestRequest
from fastlims.runs import queries as runs
from fastlims.runs import results
from fastlims.runs.schemas import RunDetailOut, RunOut
from fastlims.users.deps import ApiUser

router = APIRouter(prefix="/api/v1/test-requests", tags=["results"])


@router.get("/{request_number}/runs", response_model=list[RunOut])
def list_runs(request_number: str, session: DbSession, user: ApiUser, system: SystemDep) -> list[RunOut]:
    """The request's runs: bench, booking, how each ended, its DoE factors and its outcomes."""
    request = requests.get_for(session=session, request_number=request_number, user=user)
    return runs.list_runs(session=session, request=request, zone=system.zone)


@router.get("/{request_number}/runs/{run_id}", response_model=RunDetailOut)
def read_run(
    request_number: str, run_id: str, session: DbSession, user: ApiUser, system: SystemDep, intake: IntakeDep
) -> RunDetailOut:
    """One run, with its per-step and per-cycle summaries."""
    request = requests.get_for(session=session, request_number=request_number, user=user)
    return runs.get_run(session=session, storage=intake.storage, request=request, run_id=run_id, zone=system.zone)


@router.get("/{request_number}/runs/{run_id}/results.csv", response_class=StreamingResponse)
def run_results_csv(
    request_number: str, run_id: str, session: DbSession, user: ApiUser, intake: IntakeDep
) -> StreamingResponse:
    """Every sample of one run (``time`` first, one column per signal, units in the header)."""
    request = requests.get_for(session=session, request_number=request_number, user=user)
    return results_csv_response(session, intake, request, run_id)


def results_csv_response(session: Session, intake: Intake, request: TestRequest, run_id: str) -> StreamingResponse:
    """The CSV download for the API and the pages alike (the caller has checked visibility)."""
    runs.run_of(session=session, request=request, run_id=run_id)  # RunNotFound: 404
    key = runs.results_key(request, run_id)
    if key is None:
        raise HTTPException(404, f"run {run_id} has no results yet")
    try:
        data = intake.storage.get(key)
    except FileNotFoundError:
        raise HTTPException(404, f"run {run_id} has no results yet") from None
    filename = f"{request.request_number}-{run_id}.csv"
    return StreamingResponse(
        results.iter_csv(data),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )

"""Results of virtual bench runs over HTTP: one run's full-resolution results as CSV."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.benches import results
from fastlims.benches.virtual import RESULTS_FILE
from fastlims.deps import DbSession
from fastlims.intake import layout
from fastlims.intake.deps import IntakeDep
from fastlims.intake.service import Intake
from fastlims.pipeline.models import ScheduledRun
from fastlims.requests import service as requests
from fastlims.requests.models import TestRequest
from fastlims.users.deps import ApiUser

router = APIRouter(prefix="/api/v1/test-requests", tags=["results"])


@router.get("/{request_number}/runs/{run_id}/results.csv", response_class=StreamingResponse)
def run_results_csv(
    request_number: str, run_id: str, session: DbSession, user: ApiUser, intake: IntakeDep
) -> StreamingResponse:
    """Every sample of one run (``time`` first, one column per signal, units in the header)."""
    request = requests.get_for(session=session, request_number=request_number, user=user)
    return results_csv_response(session, intake, request, run_id)


def results_csv_response(session: Session, intake: Intake, request: TestRequest, run_id: str) -> StreamingResponse:
    """The CSV download for the API and the pages alike (the caller has checked visibility)."""
    known = session.scalar(
        select(ScheduledRun.id).where(ScheduledRun.run_id == run_id, ScheduledRun.test_uuid == request.test_uuid)
    )
    if known is None or not request.simulation_folder:
        raise HTTPException(404, f"request {request.request_number} has no run {run_id!r}")
    key = f"{request.simulation_folder}/{layout.SIMULATION_RESULTS}/{run_id}/{RESULTS_FILE}"
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

"""Test-request API: submit, list, read and cancel."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Query, Response, status

from fastlims.deps import DbSession, SystemDep
from fastlims.messaging.variables import Variables
from fastlims.requests import service
from fastlims.requests.models import TestRequest
from fastlims.requests.schemas import (
    CancelBody,
    RequestEventOut,
    TestRequestCreate,
    TestRequestOut,
    TestRequestPage,
)
from fastlims.requests.states import TIMESTAMP_ATTRIBUTE, Status
from fastlims.timeutil import to_local
from fastlims.users.deps import ApiUser

router = APIRouter(prefix="/api/v1/test-requests", tags=["test requests"])


def serialize(request: TestRequest, zone: ZoneInfo, *, with_events: bool = False) -> TestRequestOut:
    """Times are given in the lab's zone, with their offset; ``with_events`` (one request, not a
    list) adds the audit trail and the procedure."""
    timestamps = {attribute: to_local(getattr(request, attribute), zone) for attribute in TIMESTAMP_ATTRIBUTE.values()}
    events = None
    if with_events:
        events = [
            RequestEventOut(
                kind=e.kind,
                actor=e.actor,
                at=to_local(e.at, zone),  # type: ignore[arg-type]
                field=e.field,
                from_value=e.from_value,
                to_value=e.to_value,
                reason=e.reason,
            )
            for e in request.events
        ]
    return TestRequestOut(
        request_number=request.request_number,
        test_UUID=request.test_uuid,
        status=Status(request.status).name,
        uut=request.uut.code,
        use_case=request.use_case.name,
        standard=request.standard.code,
        test_name=request.test.code,
        test_name_title=request.test.name,
        bench=request.test_bench,
        preferred_date=to_local(request.preferred_test_schedule_date, zone),  # type: ignore[arg-type]
        requester_id=request.requester_id,
        requester_name=request.requester_name,
        variables=Variables.model_validate_json(request.variables_json) if request.variables_json else None,
        procedure_source=request.procedure_source,
        # The procedure (kilobytes for a long default) in the answer about one request, not in lists.
        procedure=json.loads(request.procedure_json) if with_events and request.procedure_json else None,
        failure_reason=request.failure_reason,
        simulation_progress=request.simulation_progress,
        simulation_folder=request.simulation_folder,
        optimised_start=to_local(request.optimised_start_at, zone),
        assigned_bench=request.assigned_bench,
        created_at=to_local(request.created_at, zone),  # type: ignore[arg-type]
        updated_at=to_local(request.updated_at, zone),  # type: ignore[arg-type]
        timestamps=timestamps,
        events=events,
    )


@router.post("", response_model=TestRequestOut, status_code=status.HTTP_201_CREATED)
def submit(
    data: TestRequestCreate,
    session: DbSession,
    user: ApiUser,
    response: Response,
    system: SystemDep,
) -> TestRequestOut:
    """Submit a request for a test; 422 names every field that is wrong."""
    request = service.create(session=session, data=data, requester=user, zone=system.zone)
    response.headers["Location"] = f"/api/v1/test-requests/{request.request_number}"
    return serialize(request, system.zone, with_events=True)


@router.get("", response_model=TestRequestPage)
def list_requests(
    session: DbSession,
    user: ApiUser,
    system: SystemDep,
    status_name: str | None = Query(default=None, alias="status", description="e.g. Submitted, Running"),
    page: int = Query(default=1, ge=1),
    page_size: int = Query(default=50, ge=1, le=500),
) -> TestRequestPage:
    """Your own requests (requesters) or everyone's (lab managers, admins), newest first."""
    wanted = None
    if status_name is not None:
        try:
            wanted = Status.from_name(status_name)
        except ValueError as exc:
            raise service.RequestInvalid([service.FieldProblem("status", str(exc))]) from None
    items, total = service.get_all(session=session, user=user, status=wanted, page=page, page_size=page_size)
    return TestRequestPage(
        items=[serialize(r, system.zone) for r in items], total=total, page=page, page_size=page_size
    )


@router.get("/{request_number}", response_model=TestRequestOut)
def read(request_number: str, session: DbSession, user: ApiUser, system: SystemDep) -> TestRequestOut:
    request = service.get_for(session=session, request_number=request_number, user=user)
    return serialize(request, system.zone, with_events=True)


@router.post("/{request_number}/cancel", response_model=TestRequestOut)
def cancel(
    request_number: str,
    session: DbSession,
    user: ApiUser,
    system: SystemDep,
    body: CancelBody | None = Body(default=None),
) -> TestRequestOut:
    """Cancel a request before it runs (your own, or any as a lab manager)."""
    request = service.get(session=session, request_number=request_number)
    service.cancel(session=session, request=request, user=user, reason=body.reason if body else "")
    return serialize(request, system.zone, with_events=True)

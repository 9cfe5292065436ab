"""What the LIMS tells the Digital Twin about a request: the seed's Figure 2 request message and
the retained status message, written to the transactional outbox in the caller's transaction (a
request is announced exactly when it is stored; a broker outage only delays the announcement).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from fastlims.messaging import outbox
from fastlims.messaging.schemas import RequestMessage, RequestStatus, StatusMessage, new_message_id, seed_time
from fastlims.messaging.variables import Variables
from fastlims.requests.models import TestRequest
from fastlims.requests.states import Status
from fastlims.timeutil import utcnow


def request_message(request: TestRequest, message_id: str | None = None) -> RequestMessage:
    """The seed's Figure 2 message for a stored request."""
    variables = Variables.model_validate_json(request.variables_json) if request.variables_json else Variables()
    return RequestMessage(
        message_id=message_id or new_message_id(),
        test_name=request.test.name,
        test_UUID=request.test_uuid,
        test_UUT=request.uut.code,
        test_bench=request.test_bench,  # type: ignore[arg-type]
        use_case=request.use_case.name,
        variables=variables,
        test_date=seed_time(request.preferred_test_schedule_date),
        status=RequestStatus(value=Status(request.status).name, last_update=seed_time(request.updated_at or utcnow())),
        request_number=request.request_number,
        test_standard=request.standard.code,
    )


def request_message_id(request: TestRequest) -> str:
    """Retries of one request carry the same message id, so a DT that got the first one can drop
    the copies; derived from the request so it needs no column."""
    return f"req-{request.test_uuid}"


def enqueue_request(session: Session, request: TestRequest) -> None:
    message = request_message(request, message_id=request_message_id(request))
    outbox.enqueue(session, f"requests/{request.test_uuid}", message, qos=1)


def enqueue_status(session: Session, request: TestRequest) -> None:
    message = StatusMessage(
        test_UUID=request.test_uuid,
        request_number=request.request_number,
        status=RequestStatus(value=Status(request.status).name, last_update=seed_time(request.updated_at)),
        reason=request.failure_reason if request.status == Status.Failed else None,
        progress=request.simulation_progress,
    )
    outbox.enqueue(session, f"requests/{request.test_uuid}/status", message, qos=1, retain=True)

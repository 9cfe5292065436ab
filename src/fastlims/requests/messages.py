"""What the LIMS tells the Digital Twin about a request: the seed's Figure 2 request message and
the retained status message, written to the transactional outbox in the caller's transaction (a
request is announced exactly when it is stored; a broker outage only delays the announcement).

The request message carries the procedure the request runs, resolved for its UUT with the
variables' default values, as the one element of ``variables.test_procedures``, and the UUT's
ratings as ``UUT_ratings``: the DT knows the test and can choose a model for it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session, object_session

from fastlims.catalog import service as catalog
from fastlims.messaging import outbox
from fastlims.messaging.schemas import (
    RequestMessage,
    RequestStatus,
    StatusMessage,
    UutRatingsMessage,
    new_message_id,
    seed_time,
)
from fastlims.messaging.variables import Variables
from fastlims.procedures.model import ProcedureError
from fastlims.procedures.ratings import RatingsError, UutRatings
from fastlims.procedures.resolve import resolve
from fastlims.requests import procedures, routing
from fastlims.requests.models import TestRequest
from fastlims.requests.states import Status
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)


def _procedure_and_ratings(
    request: TestRequest, variables: Variables
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The resolved procedure (JSON) and the UUT's ratings, or None for what the request lacks.

    Should the UUT's ratings have changed since the submit so that the procedure no longer
    resolves, the unresolved procedure goes out (a DT tells the forms apart by ``uut``, which only
    the resolved one has) and the run fails later with the reason."""
    session = object_session(request)
    if not request.procedure_json or session is None:
        return None, None
    try:
        ratings_row = catalog.uut_ratings(session=session, code=request.uut.code)
        ratings = UutRatings.from_mapping(ratings_row)
    except (catalog.NotFound, catalog.RatingsMissing, RatingsError) as exc:
        log.warning("request message without UUT ratings", extra={"test_uuid": request.test_uuid, "error": str(exc)})
        return procedures.parse_stored(request.procedure_json).to_json(), None
    procedure = procedures.parse_stored(request.procedure_json)
    profile = variables.custom_profile
    try:
        points = procedures.si_points(profile) if profile is not None and procedures.profile_role(profile) else None
        resolved = resolve(procedure, ratings, custom_profile=points)
    except (ProcedureError, ValueError) as exc:
        log.warning("request message with the unresolved procedure", extra={"test_uuid": request.test_uuid,
                                                                              "error": str(exc)})  # fmt: skip
        return procedure.to_json(), ratings_row
    return resolved.model_dump(mode="json"), ratings_row


def request_message(request: TestRequest, message_id: str | None = None) -> RequestMessage:
    """The seed's Figure 2 message for a stored request, with its resolved procedure and the UUT's ratings."""
    variables = Variables.model_validate_json(request.variables_json) if request.variables_json else Variables()
    procedure, ratings = _procedure_and_ratings(request, variables)
    if procedure is not None:
        variables = variables.model_copy(update={"test_procedures": [procedure]})
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
        UUT_ratings=UutRatingsMessage.model_validate(ratings) if ratings is not None else None,
    )


def request_message_id(request: TestRequest) -> str:
    """Retries of one request carry the same message id, so a DT that got the first one can drop
    the copies; derived from the request so it needs no column."""
    return f"req-{request.test_uuid}"


def enqueue_request(session: Session, request: TestRequest) -> None:
    """The request message on the lab's topic (``requests/<uuid>``, read by the LIMS role only; its
    confirmation is the announcement) and on each recipient partner's own topic
    (``partners/<partner>/requests/<uuid>``): the request's partner, else every active partner."""
    message = request_message(request, message_id=request_message_id(request))
    outbox.enqueue(session, f"requests/{request.test_uuid}", message, qos=1)
    for partner in routing.recipients(session=session, request=request):
        outbox.enqueue(session, f"partners/{partner}/requests/{request.test_uuid}", message, qos=1)


def enqueue_status(session: Session, request: TestRequest) -> None:
    message = StatusMessage(
        test_UUID=request.test_uuid,
        request_number=request.request_number,
        status=RequestStatus(value=Status(request.status).name, last_update=seed_time(request.updated_at)),
        reason=request.failure_reason if request.status == Status.Failed else None,
        progress=request.simulation_progress,
    )
    outbox.enqueue(session, f"requests/{request.test_uuid}/status", message, qos=1, retain=True)
    for partner in routing.recipients(session=session, request=request):
        outbox.enqueue(session, f"partners/{partner}/requests/{request.test_uuid}/status", message, qos=1, retain=True)

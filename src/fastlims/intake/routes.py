"""HTTP ways in for models: the Azure Event Grid webhook and an authenticated PUT.

``POST /api/v1/events/eventgrid`` (and ``OPTIONS`` for the CloudEvents handshake)
    Authenticated with ``FASTLIMS_EVENTGRID_KEY``: header ``aeg-sas-key``, query ``?code=`` or
    ``Authorization: Bearer``, compared in constant time. Answers the subscription-validation
    handshake; ``Microsoft.Storage.BlobCreated`` in the Event Grid and CloudEvents 1.0 schemas is
    handled when its subject passes the seed's filter (``.fmu`` or ``inter_connection.json``
    under ``pool/`` of the configured container); everything else is acknowledged and ignored.
    A 5xx answer (storage or database down) makes Event Grid deliver again; a repeat is harmless.

``PUT /api/v1/requests/{test_UUID}/models/{filename}``
    For partners without SFTP. The bearer token of a ``model_uploader`` user, bound to one Digital
    Twin partner (``fastlims users add dt-acme --role model_uploader --partner acme``); no other
    role may upload (a requester supplying the FMUs of their own request would choose the code the
    lab runs). The body is the file; it lands in the partner's folder,
    ``pool/<partner>/<test_UUID>/<filename>``, and counts like the partner's SFTP upload: only for
    the request's own partner (:mod:`fastlims.intake.isolation`).
"""

from __future__ import annotations

import asyncio
import hmac
import re
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse

from fastlims.config import Settings
from fastlims.deps import DbSession, SystemDep
from fastlims.intake import layout, partners
from fastlims.intake.deps import IntakeDep
from fastlims.intake.events import UploadEvent
from fastlims.intake.processor import WAITING_STATES
from fastlims.intake.schemas import UploadOutcome, WebhookAnswer, interconnection_json_schema
from fastlims.requests import service as requests
from fastlims.requests.states import Status
from fastlims.users.deps import TokenUser
from fastlims.users.models import Role

router = APIRouter(tags=["model intake"])

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
# Data Lake (hierarchical namespace) announces an empty file at CreateFile and the content at
# FlushWithClose: only the second is a complete file.
INCOMPLETE_APIS = {"CreateFile"}
_SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<path>.+)$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}$")


# --- Event Grid -----------------------------------------------------------------------------------


def _check_eventgrid_key(request: Request, settings: Settings) -> None:
    offered = [request.headers.get("aeg-sas-key"), request.query_params.get("code")]
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        offered.append(authorization[7:].strip())
    refused = HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "the Event Grid key is missing or wrong: send it as ?code=, 'aeg-sas-key' or a bearer token",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if not any(offered):
        raise refused
    key = settings.eventgrid_key
    if key is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the Event Grid webhook is off: set FASTLIMS_EVENTGRID_KEY"
        )
    expected = key.get_secret_value().encode()
    # Compare every candidate (no early exit) in constant time.
    matches = [hmac.compare_digest(value.encode(), expected) for value in offered if value]
    if not any(matches):
        raise refused


@router.options("/api/v1/events/eventgrid", include_in_schema=False)
def eventgrid_handshake(request: Request, system: SystemDep) -> Response:
    """CloudEvents 1.0 abuse protection: allow Event Grid's origin to deliver."""
    _check_eventgrid_key(request, system.settings)
    origin = request.headers.get("webhook-request-origin")
    if not origin:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "WebHook-Request-Origin header missing")
    return Response(headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "120"})


@router.post("/api/v1/events/eventgrid", response_model=WebhookAnswer)
async def eventgrid_webhook(request: Request, system: SystemDep, intake: IntakeDep) -> Any:
    """Azure Event Grid delivery (Event Grid schema or CloudEvents 1.0, single or batched)."""
    _check_eventgrid_key(request, system.settings)
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the body is not JSON") from None
    events = body if isinstance(body, list) else [body]
    if not all(isinstance(e, dict) for e in events):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "expected an event object or an array of events")
    for event in events:
        if (event.get("eventType") or event.get("type")) == VALIDATION_EVENT:
            code = (event.get("data") or {}).get("validationCode")
            if not isinstance(code, str):
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "validation event without data.validationCode")
            return JSONResponse({"validationResponse": code})
    outcomes: list[UploadOutcome] = []
    for event in events:
        key, reason = _blob_key(event, intake.storage.container, intake.storage.prefix)
        if key is None:
            outcomes.append(UploadOutcome(path=str(event.get("subject", "")), outcome="ignored", detail=reason))
            continue
        outcomes.append(
            await intake.handler.handle(
                UploadEvent(path=key, source="eventgrid", event_id=str(event.get("id") or "") or None)
            )
        )
    return WebhookAnswer(received=len(events), outcomes=outcomes)


def _blob_key(event: dict[str, Any], container: str | None, prefix: str) -> tuple[str | None, str]:
    """The storage key of a BlobCreated event that passes the subject filter, or why not."""
    kind = event.get("eventType") or event.get("type")
    if kind != BLOB_CREATED:
        return None, f"event type {kind!r} is not {BLOB_CREATED}"
    data = event.get("data") or {}
    if isinstance(data, dict) and data.get("api") in INCOMPLETE_APIS:
        return None, f"api {data.get('api')} announces an empty file; FlushWithClose follows"
    match = _SUBJECT.match(str(event.get("subject") or ""))
    if not match:
        return None, "the subject is not /blobServices/default/containers/<container>/blobs/<path>"
    if container is not None and match["container"] != container:
        return None, f"container {match['container']!r} is not the LIMS storage container {container!r}"
    path = match["path"]
    if prefix:
        if not path.startswith(prefix + "/"):
            return None, f"blob is outside the storage prefix {prefix!r}"
        path = path[len(prefix) + 1 :]
    key = layout.normalise_key(path)
    if not layout.in_subject_filter(key):
        return None, "outside the subject filter: only .fmu files and inter_connection.json under pool/"
    return key, ""


# --- PUT --------------------------------------------------------------------------------------------


@router.put(
    "/api/v1/requests/{test_UUID}/models/{filename}",
    response_model=UploadOutcome,
    status_code=status.HTTP_201_CREATED,
    responses={
        403: {"description": "not a model_uploader, or the request is another partner's (quarantined)"},
        409: {"description": "the request is not waiting for models"},
        413: {"description": "too large"},
    },
)
async def put_model_file(
    test_UUID: str,  # noqa: N803 - the seed's spelling
    filename: str,
    request: Request,
    session: DbSession,
    user: TokenUser,
    system: SystemDep,
    intake: IntakeDep,
) -> UploadOutcome:
    """Upload one model file (an .fmu or inter_connection.json) for a request; the body is the
    file. Needs a model_uploader token; the file counts only for the request's own partner."""
    if user.role is not Role.model_uploader or not user.partner:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "model files are uploaded by a Digital Twin partner's model_uploader account"
            f" (fastlims users add NAME --role model_uploader --partner PARTNER), not by a {user.role.value}",
        )
    partner = partners.get(session=session, name=user.partner)
    if partner is None or not partner.is_active:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"partner {user.partner!r} is unknown or disabled")
    test_uuid = test_UUID.lower()
    if not layout.is_uuid(test_uuid):
        raise HTTPException(422, f"{test_UUID!r} is not a test_UUID")
    if not _FILE_NAME.match(filename) or not layout.is_model_file(filename):
        raise HTTPException(
            422,
            f"{filename!r} is not a model file name: upload NAME.fmu or {layout.INTERCONNECTION}"
            " (letters, digits, '.', '_', '-', ' ')",
        )
    target = requests.get_by_uuid(session=session, test_uuid=test_uuid)  # 404 when unknown
    current = Status(target.status)
    if current not in WAITING_STATES:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"test request {target.request_number} is {current.name}; it is not waiting for models",
        )
    session.commit()  # release the database before the (possibly long) upload and processing
    limit = system.settings.intake_max_file_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the file is larger than {limit} bytes")
    # Spooled in the data folder (private to the LIMS, sized for uploads), not the system's /tmp.
    spool = system.settings.data_dir / "http-spool"
    await asyncio.to_thread(spool.mkdir, 0o700, True, True)
    with tempfile.TemporaryDirectory(prefix="put-", dir=spool) as directory:
        spooled = Path(directory) / "upload"
        size = 0
        with open(spooled, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"the file is larger than {limit} bytes")
                await asyncio.to_thread(out.write, chunk)
        if size == 0:
            raise HTTPException(422, "the body is empty: send the file")
        key = f"{layout.POOL}/{user.partner}/{test_uuid}/{filename}"
        await asyncio.to_thread(intake.storage.put, key, spooled)
    outcome = await intake.handler.handle(UploadEvent(path=key, source="http", partner=user.partner))
    if outcome.outcome == "unauthorized":  # quarantined and reported, as over SFTP; the answer says so
        raise HTTPException(status.HTTP_403_FORBIDDEN, outcome.detail)
    return outcome


@router.get("/api/schemas/inter_connection.json", tags=["model intake"])
def inter_connection_schema() -> dict[str, Any]:
    """The JSON Schema of inter_connection.json (public, outside /api/v1: partners validate before uploading)."""
    return interconnection_json_schema()

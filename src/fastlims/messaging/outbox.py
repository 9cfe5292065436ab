"""Transactional outbox: messages are rows written in the caller's transaction.

The relay (``relay.py``) publishes pending rows in id order and marks them sent, so a request is
announced exactly when it is stored, and a broker outage only delays the announcement.
Topics are stored relative to the prefix (``requests/<uuid>``).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.orm import Session

from fastlims.messaging.models import OutboxMessage
from fastlims.messaging.schemas import RequestMessage, RequestStatus, StatusMessage, new_message_id, seed_time
from fastlims.requests.models import TestRequest
from fastlims.requests.states import Status
from fastlims.requests.variables import Variables
from fastlims.timeutil import utcnow

_PENDING_KEY = "fastlims.outbox.pending"
_listeners: list[Any] = []


def enqueue(session: Session, relative_topic: str, message: BaseModel, *, qos: int = 1, retain: bool = False) -> None:
    # The row has its own id; the payload's message_id is the logical one (a retry reuses it).
    session.add(
        OutboxMessage(
            message_id=new_message_id(),
            topic=relative_topic,
            payload=message.model_dump_json(),
            qos=qos,
            retain=retain,
        )
    )
    session.info[_PENDING_KEY] = True


def on_commit(callback: Any) -> None:
    """Call ``callback()`` after any transaction that enqueued a message commits (wakes the relay)."""
    _listeners.append(callback)


def remove_listener(callback: Any) -> None:
    if callback in _listeners:
        _listeners.remove(callback)


@event.listens_for(Session, "after_commit")
def _wake_relay(session: Session) -> None:
    if session.info.pop(_PENDING_KEY, False):
        for callback in list(_listeners):
            callback()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


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
    enqueue(session, f"requests/{request.test_uuid}", message, qos=1)


def enqueue_status(session: Session, request: TestRequest) -> None:
    message = StatusMessage(
        test_UUID=request.test_uuid,
        request_number=request.request_number,
        status=RequestStatus(value=Status(request.status).name, last_update=seed_time(request.updated_at)),
        reason=request.failure_reason if request.status == Status.Failed else None,
        progress=request.simulation_progress,
    )
    enqueue(session, f"requests/{request.test_uuid}/status", message, qos=1, retain=True)


def payload_of(row: OutboxMessage) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row.payload)
    return data

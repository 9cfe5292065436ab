"""Transactional outbox: messages are rows written in the caller's transaction.

The relay (``relay.py``) publishes pending rows in id order and marks them sent, so a request is
announced exactly when it is stored, and a broker outage only delays the announcement.
Topics are stored relative to the prefix (``requests/<uuid>``). What is written about a request
is the requests capability's (:mod:`fastlims.requests.messages`); this module knows no request.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.orm import Session

from fastlims.messaging.models import OutboxMessage
from fastlims.messaging.schemas import new_message_id

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


def payload_of(row: OutboxMessage) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row.payload)
    return data

"""What the pipeline's steps work with (:class:`StepContext`) and the helpers every step shares:
reading the request it is about, stopping when that request ended, reading a JSON file of the
workflow's folders, and keeping the metadata passed between steps small.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from fastlims.config import Settings
from fastlims.db.engine import Database
from fastlims.intake import files
from fastlims.intake.service import Intake
from fastlims.intake.storage import BlobStorage
from fastlims.pipeline.errors import PermanentError, Stopped
from fastlims.pipeline.pause import PausePoints
from fastlims.requests import service as requests
from fastlims.requests.models import TestRequest
from fastlims.requests.states import Status
from fastlims.scheduling import Bench
from fastlims.timeutil import utcnow

ACTOR = "pipeline"
METADATA_LIMIT = 10 * 1024

Metadata = dict[str, Any]


@dataclass(frozen=True)
class QueuedRun:
    """One run for a bench's queue: ``key`` is its idempotency key (the queued workflow's id);
    ``workflow`` the bench kind's run workflow (a virtual bench's simulation, a physical bench's
    gateway conversation)."""

    queue: str
    key: str
    order: dict[str, Any]
    delay_s: float
    workflow: str


class BenchLookup(Protocol):
    def __call__(self, session: Session) -> list[Bench]:
        """The benches a schedule may use, as ``session`` sees the bench registry.

        The composition root gives the pipeline ``fastlims.benches.registry.schedulable``: the
        pipeline never imports the benches (they report back through the scheduled runs)."""


class RunDispatcher(Protocol):
    def enqueue(self, runs: list[QueuedRun]) -> None:
        """Queue each run for its bench, once per key however often it is called (all or none)."""


@dataclass
class StepContext:
    settings: Settings
    database: Database
    intake: Intake
    benches: BenchLookup
    dispatcher: RunDispatcher
    pause: PausePoints = field(default_factory=lambda: PausePoints(None, None))
    clock: Callable[[], datetime] = utcnow
    # Schedules of one process are made one at a time: each depends on the bookings of the one
    # before, so solving them side by side only wastes solves on clashes (see steps.schedule).
    schedule_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def storage(self) -> BlobStorage:
        return self.intake.storage


def request_of(session: Session, test_uuid: str, step: str) -> TestRequest:
    """The request of this workflow; its absence is permanent."""
    try:
        return requests.get_by_uuid(session=session, test_uuid=test_uuid)
    except requests.NotFound:
        raise PermanentError(step, f"no test request has test_UUID {test_uuid}") from None


def still_active(request: TestRequest, step: str) -> Status:
    """The request's status; :class:`Stopped` when it was cancelled or failed meanwhile."""
    status = Status(request.status)
    if status in (Status.Cancelled, Status.Failed):
        raise Stopped(step, f"request {request.request_number} is {status.name}")
    return status


def read_json(storage: BlobStorage, key: str, step: str) -> Any:
    try:
        return files.get_json(storage, key)
    except FileNotFoundError:
        raise PermanentError(step, f"{key} is missing from storage") from None
    except ValueError as exc:
        raise PermanentError(step, f"{key} is not valid JSON: {exc}") from None


def check_metadata(step: str, metadata: Metadata) -> Metadata:
    size = len(json.dumps(metadata))
    if size > METADATA_LIMIT:
        raise PermanentError(step, f"metadata of {size} bytes exceeds {METADATA_LIMIT}: keep payloads in storage")
    return metadata

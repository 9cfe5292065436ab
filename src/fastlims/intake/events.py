"""Upload events (seed paths 6–7): the SFTP server on a completed file, the pool folder watcher,
the Event Grid webhook and the HTTP PUT all call the same :meth:`UploadHandler.handle`.

The handler applies the seed's subject filter (only ``.fmu`` files and ``inter_connection.json``
under ``pool/``), records each file version it sees (path + ETag, the ``IntakeUploads`` table),
works out which request the file belongs to, and lets the Data Processor take the set once it is
complete. An event delivered twice, or by two sources (the SFTP close and the folder watcher see
the same file), starts processing once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fastlims.db.engine import Database
from fastlims.intake import layout
from fastlims.intake.models import IntakeUpload, UploadState
from fastlims.intake.processor import DataProcessor, upload_key
from fastlims.intake.schemas import UploadOutcome
from fastlims.intake.storage import BlobStorage

log = logging.getLogger(__name__)

SOURCES = ("sftp", "watcher", "eventgrid", "http", "scan")


@dataclass(frozen=True)
class UploadEvent:
    """A file was completely written at ``path`` (a storage key such as ``pool/<uuid>/cell.fmu``)."""

    path: str
    source: str
    partner: str | None = None
    event_id: str | None = None


class UploadHandler:
    """The one entry point for upload events. Thread-safe; one event is handled at a time per
    process (a set's claim in the database keeps several processes apart)."""

    def __init__(self, *, database: Database, storage: BlobStorage, processor: DataProcessor) -> None:
        self.database = database
        self.storage = storage
        self.processor = processor
        self._lock = threading.Lock()
        self.handled = 0

    async def handle(self, event: UploadEvent) -> UploadOutcome:
        return await asyncio.to_thread(self.handle_sync, event)

    def handle_sync(self, event: UploadEvent) -> UploadOutcome:
        with self._lock:
            self.handled += 1
            try:
                outcome = self._handle(event)
            except Exception:
                log.exception("upload event failed", extra={"path": event.path, "source": event.source})
                raise
        log.info(
            "upload event",
            extra={
                "path": event.path,
                "source": event.source,
                "outcome": outcome.outcome,
                "test_uuid": outcome.test_UUID,
            },
        )
        return outcome

    def _handle(self, event: UploadEvent) -> UploadOutcome:
        key = layout.normalise_key(event.path)
        if not layout.in_subject_filter(key):
            return UploadOutcome(
                path=key,
                outcome="ignored",
                detail="outside the subject filter: only .fmu files and inter_connection.json under pool/"
                " start processing",
            )
        stored = self.storage.head(key)
        if stored is None:
            with self.database.transaction() as session:
                seen = session.scalar(
                    select(IntakeUpload).where(IntakeUpload.path == key).order_by(IntakeUpload.id.desc()).limit(1)
                )
                if seen is not None and seen.outcome != UploadState.waiting.value:
                    return UploadOutcome(
                        path=key, outcome="duplicate", test_UUID=seen.test_uuid, detail=f"already {seen.outcome}"
                    )
            return UploadOutcome(path=key, outcome="gone", detail="the file is no longer in the pool")
        test_uuid = layout.correlate(key)
        digest = upload_key(key, stored.version)
        try:
            with self.database.transaction() as session:
                row = session.scalar(select(IntakeUpload).where(IntakeUpload.upload_key == digest))
                if row is not None and row.outcome != UploadState.waiting.value:
                    return UploadOutcome(
                        path=key,
                        outcome="duplicate",
                        test_UUID=row.test_uuid,
                        detail=f"this version of the file was already {row.outcome}",
                    )
                if row is None:
                    session.add(
                        IntakeUpload(
                            upload_key=digest,
                            path=key,
                            version=stored.version[:200],
                            size=stored.size,
                            test_uuid=test_uuid,
                            source=event.source[:16],
                            partner=event.partner,
                            outcome=UploadState.waiting.value,
                        )
                    )
        except IntegrityError:  # another process recorded it at the same moment
            return UploadOutcome(
                path=key, outcome="duplicate", test_UUID=test_uuid, detail="recorded by another process"
            )
        if test_uuid is None:
            return self.processor.quarantine(
                [stored],
                test_uuid=None,
                trigger=key,
                source=event.source,
                reason="the file names no test request: upload into pool/<test_UUID>/ or put the"
                " test_UUID in the file name",
                fail_request=False,
            )
        return self.processor.consider(test_uuid, trigger=key, source=event.source, partner=event.partner)

    def sweep_stale_sets(self) -> list[UploadOutcome]:
        """Validate sets that have waited longer than the set timeout for an FMU their
        interconnection names (called periodically by the intake service)."""
        outcomes = []
        for test_uuid in self.processor.stale_sets():
            with self._lock:
                outcomes.append(self.processor.consider(test_uuid, trigger="(set timeout)", source="timeout"))
        return outcomes

    def scan_pool(self, source: str = "scan") -> list[UploadOutcome]:
        """Handle every model file already in the pool (start-up catch-up: files that arrived while
        the system was down, or whose event was lost)."""
        outcomes = []
        for stored in self.storage.list(layout.POOL):
            if layout.in_subject_filter(stored.key):
                outcomes.append(self.handle_sync(UploadEvent(path=stored.key, source=source)))
        return outcomes

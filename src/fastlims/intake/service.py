"""Wiring of the intake: storage, Data Processor, upload handler, SFTP server and pool watcher.

The composition root (:mod:`fastlims.bootstrap`) builds one :class:`Intake` (``System.intake``,
what the web routes and the pipeline use) and, in ``fastlims up``, its :class:`IntakeService`.

The pipeline's hook
-------------------
When a request's models are accepted (it is ModelReady, its files are in
``<simulation folder>/fastest-models/fmus/``), every callable registered with
``system.intake.on_model_ready(callback)`` is called once, after the database commit, with a
:class:`~fastlims.intake.processor.ModelReady` (test_uuid, request_number, simulation_folder,
fmu_folder, fmus, interconnection, doe_input, files). It runs in the intake's worker thread: keep
it short (enqueue a durable workflow) and idempotent. A failing hook is logged, never undone:
the request stays ModelReady, so a pipeline that must survive crashes also picks up
ModelReady requests without a WorkflowId when it starts.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from fastlims.config import Settings
from fastlims.db.engine import Database
from fastlims.intake import layout
from fastlims.intake.events import UploadEvent, UploadHandler
from fastlims.intake.processor import DataProcessor, ModelReadyHook
from fastlims.intake.storage import BlobStorage, StorageOptions, default_storage_url, open_storage
from fastlims.intake.validation import ZipLimits
from fastlims.users.throttle import LoginThrottle, ThrottlePolicy

log = logging.getLogger(__name__)

INCOMING = ".incoming"  # temporary SFTP uploads, beside pool/ so that the final rename is atomic


class Intake:
    """The intake's parts, built on first use (building the system must stay cheap)."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.hooks: list[ModelReadyHook] = []

    def on_model_ready(self, hook: ModelReadyHook) -> ModelReadyHook:
        """Register the pipeline's callback (usable as a decorator)."""
        self.hooks.append(hook)
        return hook

    @cached_property
    def storage(self) -> BlobStorage:
        s = self.settings
        options = StorageOptions(
            azure_account=s.storage_azure_account,
            azure_key=s.storage_azure_key.get_secret_value() if s.storage_azure_key else None,
            azure_sas=s.storage_azure_sas.get_secret_value() if s.storage_azure_sas else None,
            endpoint=s.storage_endpoint,
            allow_http=s.storage_allow_http,
        )
        return open_storage(s.storage_url or default_storage_url(s.data_dir), options)

    @cached_property
    def limits(self) -> ZipLimits:
        return ZipLimits(
            max_entries=self.settings.intake_max_zip_entries,
            max_uncompressed_bytes=self.settings.intake_max_unpacked_bytes,
            max_ratio=self.settings.intake_max_compression_ratio,
        )

    @cached_property
    def processor(self) -> DataProcessor:
        return DataProcessor(
            database=self.database,
            storage=self.storage,
            zone=self.settings.zone,
            limits=self.limits,
            hooks=self.hooks,
            set_timeout=timedelta(seconds=self.settings.intake_set_timeout_s),
        )

    @cached_property
    def handler(self) -> UploadHandler:
        return UploadHandler(database=self.database, storage=self.storage, processor=self.processor)

    def sftp_folders(self) -> tuple[Path, Path]:
        """(pool root seen by SFTP partners, folder for temporary uploads). On a local storage the
        partners write straight into its pool; otherwise into a spool that is uploaded."""
        if self.storage.local_root is not None:
            return self.storage.local_root / layout.POOL, self.storage.local_root / INCOMING
        spool = self.settings.data_dir / "sftp-spool"
        return spool / layout.POOL, spool / INCOMING

    async def sftp_file_committed(self, partner: str, key: str, path: Path) -> None:
        if self.storage.local_root is None:
            await asyncio.to_thread(self.storage.put, key, path)
            await asyncio.to_thread(path.unlink, True)
        await self.handler.handle(UploadEvent(path=key, source="sftp", partner=partner))

    def stored_pool_bytes(self, partner: str) -> int:
        """Bytes of the partner's files in the blob storage's pool (blocking: a listing)."""
        return sum(stored.size for stored in self.storage.list(f"{layout.POOL}/{partner}/"))

    def partner_lookup(self, name: str) -> tuple[str, int] | None:
        from fastlims.intake import partners

        with self.database.transaction() as session:
            partner = partners.get(session=session, name=name)
            if partner is None or not partner.is_active:
                return None
            return partner.public_keys, partner.quota_bytes or self.settings.intake_partner_quota_bytes


class IntakeService:
    """The ``BackgroundService`` that ``fastlims up`` runs: the SFTP server (unless
    ``FASTLIMS_SFTP_ENABLED=false``), the pool watcher (local storage, unless
    ``FASTLIMS_INTAKE_WATCH_POOL=false``) and a catch-up pass over the pool."""

    name = "intake"

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.sftp: Any = None
        self.watcher: Any = None
        self._scan: asyncio.Task[object] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from fastlims.intake.sftp import SftpIntakeServer
        from fastlims.intake.watcher import PoolWatcher

        settings = self.intake.settings
        storage = await asyncio.to_thread(lambda: self.intake.storage)
        try:
            if settings.sftp_enabled:
                pool_root, incoming_root = self.intake.sftp_folders()
                self.sftp = SftpIntakeServer(
                    host=settings.sftp_host,
                    port=settings.sftp_port,
                    host_key_path=settings.data_dir / "sftp_host_ed25519_key",
                    pool_root=pool_root,
                    incoming_root=incoming_root,
                    partners=self.intake.partner_lookup,
                    on_file=self.intake.sftp_file_committed,
                    max_file_bytes=settings.intake_max_file_bytes,
                    throttle=LoginThrottle(
                        ThrottlePolicy(
                            max_failures=settings.login_max_failures,
                            max_failures_per_address=settings.login_max_failures_per_address,
                            lockout_s=settings.login_lockout_s,
                        )
                    ),
                    stored_usage=None if storage.local_root is not None else self.intake.stored_pool_bytes,
                )
                await self.sftp.start()
            if settings.intake_watch_pool and storage.local_root is not None:
                self.watcher = PoolWatcher(
                    storage_root=storage.local_root,
                    on_file=lambda key: self.intake.handler.handle(UploadEvent(path=key, source="watcher")),
                    settle_s=settings.intake_watch_settle_s,
                )
                await self.watcher.start()  # its first pass covers files that arrived while down
            else:
                self._scan = asyncio.get_running_loop().create_task(asyncio.to_thread(self.intake.handler.scan_pool))
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        except BaseException:
            await self.stop()
            raise
        log.info(
            "intake ready",
            extra={
                "storage": storage.redacted_url,
                "sftp_port": self.sftp.port if self.sftp else None,
                "watcher": self.watcher is not None,
            },
        )

    async def _sweep(self) -> None:
        """Every so often, validate sets that waited too long for an FMU (see intake_set_timeout_s)."""
        period = min(60.0, max(1.0, self.intake.settings.intake_set_timeout_s / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await asyncio.to_thread(self.intake.handler.sweep_stale_sets)
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                log.exception("sweeping waiting upload sets failed")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        if self._scan is not None:
            await asyncio.gather(self._scan, return_exceptions=True)
            self._scan = None
        if self.watcher is not None:
            await self.watcher.stop()
            self.watcher = None
        if self.sftp is not None:
            await self.sftp.stop()
            self.sftp = None

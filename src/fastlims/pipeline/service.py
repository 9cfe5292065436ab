"""Wiring of the pipeline: the engine as a ``BackgroundService`` (``fastlims up`` and ``fastlims
worker``), the intake's model-ready hook, and what benches report back about runs.

``bootstrap.build`` calls :func:`_pipeline_services`; the CLI reaches the engine through
:func:`pipeline_of`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from fastlims.pipeline.engine import PipelineEngine

log = logging.getLogger(__name__)


class PipelineService:
    """Launches the engine, then every ``FASTLIMS_PIPELINE_HEARTBEAT_S``: heartbeat, resume the
    workflows of processes that are gone, start workflows for ModelReady requests without one."""

    name = "pipeline"

    def __init__(self, engine: PipelineEngine, *, enabled: bool = True, messaging: Any = None) -> None:
        self.engine = engine
        self.enabled = enabled
        self._task: asyncio.Task[None] | None = None
        self.messaging = messaging  # the LIMS's MQTT connection for live run metrics (fastlims up)
        self.bench_worker: Any = None

    async def start(self) -> None:
        if not self.enabled:
            log.info("pipeline workflows are not run in this process (FASTLIMS_PIPELINE_ENABLED=false)")
            return
        await asyncio.to_thread(self.engine.launch)
        try:
            await asyncio.to_thread(self.engine.tick)  # start-up: nothing stays stranded
        except Exception:  # noqa: BLE001 - the periodic tick tries again
            log.exception("pipeline start-up sweep failed")
        self._task = asyncio.get_running_loop().create_task(self._beat())
        from fastlims.benches import virtual

        self.bench_worker = await virtual.start_worker(self.engine, self.messaging)

    async def _beat(self) -> None:
        period = self.engine.settings.pipeline_heartbeat_s
        while True:
            await asyncio.sleep(period)
            try:
                await asyncio.to_thread(self.engine.tick)
            except Exception:  # noqa: BLE001 - logged; the next beat tries again
                log.exception("pipeline heartbeat failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        from fastlims.benches import virtual

        await virtual.stop_worker(self.bench_worker)
        self.bench_worker = None
        await asyncio.to_thread(self.engine.shutdown)


def _pipeline_services(system: Any) -> list[Any]:
    """The pipeline's background service for ``System.services`` (off in ``fastlims up`` with
    ``FASTLIMS_PIPELINE_ENABLED=false``: then only ``fastlims worker`` processes run workflows)."""
    from fastlims.benches import virtual  # noqa: F401 - registers the virtual_run workflow before launch
    from fastlims.intake.service import intake_of

    intake = intake_of(system)
    engine = PipelineEngine(system.settings, system.database, intake)
    intake.on_model_ready(engine.on_model_ready)
    return [PipelineService(engine, enabled=system.settings.pipeline_enabled, messaging=system.messaging)]


def pipeline_of(system: Any) -> PipelineEngine:
    """The pipeline engine of a system built by ``bootstrap.build`` (CLI, worker, tests)."""
    for service in system.services:
        if isinstance(service, PipelineService):
            return service.engine
    raise LookupError("this System has no pipeline: build it with fastlims.bootstrap.build")


async def run_worker(engine: PipelineEngine) -> None:
    """``fastlims worker``: run pipeline workflows (no web server, broker or SFTP) until
    SIGTERM or SIGINT; a killed worker's workflows are resumed by the others."""
    service = PipelineService(engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await service.start()
    log.info("pipeline worker running", extra={"executor_id": engine.identity.executor_id})
    try:
        await stop.wait()
    finally:
        await service.stop()

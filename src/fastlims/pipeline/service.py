"""The pipeline engine as a ``BackgroundService`` (``fastlims up`` and ``fastlims worker``).

The composition root (:mod:`fastlims.bootstrap`) builds the engine, hands the intake's
model-ready hook to it and puts a :class:`PipelineService` in ``System.services``; the virtual
bench worker is a service of its own, started after this one.
"""

from __future__ import annotations

import asyncio
import logging

from fastlims.pipeline.engine import PipelineEngine

log = logging.getLogger(__name__)


class PipelineService:
    """Launches the engine, then every ``FASTLIMS_PIPELINE_HEARTBEAT_S``: heartbeat, resume the
    workflows of processes that are gone, start workflows for ModelReady requests without one.

    With ``enabled=False`` (``FASTLIMS_PIPELINE_ENABLED=false`` in ``fastlims up``) it launches
    nothing: then only ``fastlims worker`` processes run workflows."""

    name = "pipeline"

    def __init__(self, engine: PipelineEngine, *, enabled: bool = True) -> None:
        self.engine = engine
        self.enabled = enabled
        self._task: asyncio.Task[None] | None = None

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
        await asyncio.to_thread(self.engine.shutdown)

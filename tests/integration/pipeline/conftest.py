"""Fixtures for the pipeline tests: the reference FMUs once per session, and a system with the
pipeline engine launched in this process (DBOS is process-global: one at a time)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fastlims.bootstrap import System, build
from fastlims.intake.service import Intake
from fastlims.intake.storage import BlobStorage
from fastlims.pipeline import durable
from fastlims.pipeline.engine import PipelineEngine
from tests.integration.pipeline.helpers import ModelSet, model_set, prepare_catalog, wait_for

FAST = {
    "sftp_enabled": False,
    "intake_watch_pool": False,
    "pipeline_queue_poll_s": 0.05,
    "pipeline_heartbeat_s": 0.5,
    "pipeline_executor_timeout_s": 2.0,
    "pipeline_step_attempts": 3,
    "pipeline_retry_interval_s": 0.05,
    "pipeline_retry_pause_s": 0.2,
    "pipeline_give_up_s": 1.0,
}


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelSet:
    return model_set(tmp_path_factory.mktemp("pipeline-fmus"))


@dataclass
class Pipeline:
    system: System
    engine: PipelineEngine

    @property
    def intake(self) -> Intake:
        return self.system.intake

    @property
    def storage(self) -> BlobStorage:
        return self.intake.storage

    @property
    def client(self) -> Any:
        return self.engine.client

    def workflow(self, test_uuid: str) -> Any:
        found = self.client.list_workflows(workflow_ids=[durable.workflow_id(test_uuid)])
        return found[0] if found else None

    def finished(self, test_uuid: str, timeout_s: float = 30.0) -> Any:
        """The request's workflow once DBOS recorded its end (SUCCESS, ERROR, CANCELLED)."""

        def done() -> Any:
            status = self.workflow(test_uuid)
            return status if status is not None and status.status in ("SUCCESS", "ERROR", "CANCELLED") else None

        return wait_for(done, timeout_s, f"the workflow of {test_uuid} to end")

    def settle(self, timeout_s: float = 30.0) -> None:
        """Wait until no pipeline workflow is queued or running (a clean shutdown)."""
        wait_for(
            lambda: (
                not self.client.list_workflows(
                    name=durable.PIPELINE_WORKFLOW, status=["PENDING", "ENQUEUED"], load_input=False, load_output=False
                )
            ),
            timeout_s,
            "pipeline workflows to finish",
        )


def start_pipeline(system: System, doe_runs: int | None = 4, **overrides: Any) -> Pipeline:
    built = build(system.settings.model_copy(update={**FAST, **overrides}))
    prepare_catalog(built, doe_runs=doe_runs)
    engine = built.pipeline.engine
    engine.launch()
    return Pipeline(built, engine)


def stop_pipeline(pipeline: Pipeline) -> None:
    try:
        pipeline.settle()
    finally:
        pipeline.engine.shutdown()
        pipeline.system.close()


@pytest.fixture
def pipeline(system: System) -> Iterator[Pipeline]:
    running = start_pipeline(system)
    try:
        yield running
    finally:
        stop_pipeline(running)


@pytest.fixture
def fmu_dir(tmp_path: Path) -> Path:
    return tmp_path / "fmus"

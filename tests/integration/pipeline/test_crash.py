"""Crash test: a real ``fastlims up`` is killed with SIGKILL while requests stand at every step
boundary and in the middle of every step, then started again; every request reaches
ScheduleReady, every step's outputs exist once and every run is dispatched exactly once.

One request is held at each pause point (``FASTLIMS_PIPELINE_TEST_PAUSE``, see
``fastlims.pipeline.pause``): the test releases the points before it and never the point itself,
so at the kill each request is at its own point. Dispatch points hold one virtual and one
physical request (the two ways a run is handed over). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from fastlims.bootstrap import System
from fastlims.pipeline import durable
from fastlims.pipeline.engine import identity, open_client
from fastlims.pipeline.pause import ALL_POINTS
from fastlims.requests.states import Status
from fastlims.runs.models import ScheduledRun
from tests.integration.pipeline.helpers import (
    ModelSet,
    check_outputs_once,
    new_request,
    prepare_catalog,
    put_models,
    request_facts,
    wait_for,
)
from tests.integration.pipeline.processes import FastlimsProcess, base_environment, start


def held_requests(system: System) -> list[tuple[str, str]]:
    """(point, test_UUID) for every pause point; dispatch points get a virtual and a physical request."""
    held = []
    for index, point in enumerate(ALL_POINTS):
        benches = ["Virtual", "Physical"] if point.startswith("dispatch") else [("Virtual", "Physical")[index % 2]]
        held += [(point, new_request(system, bench)) for bench in benches]
    return held


def release_before(pause_dir: Path, test_uuid: str, point: str) -> None:
    here = pause_dir / test_uuid
    here.mkdir(parents=True, exist_ok=True)
    for earlier in ALL_POINTS[: ALL_POINTS.index(point)]:
        (here / f"{earlier.replace(':', '.')}.go").touch()


def reached(pause_dir: Path, test_uuid: str, point: str) -> bool:
    return (pause_dir / test_uuid / f"{point.replace(':', '.')}.reached").exists()


def dispatched(system: System, test_uuid: str) -> int:
    with system.database.transaction() as session:
        rows = session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == test_uuid)).all()
        return sum(1 for r in rows if r.dispatched_at is not None)


def state_at_kill(system: System, point: str, test_uuid: str) -> None:
    """What each point means: effects before it done, effects after it not."""
    facts = request_facts(system, test_uuid)
    step, phase = point.split(":")
    expected = {
        "processor": Status.ModelReady,
        "doe": Status.DoeComplete if phase == "after" else Status.ModelReady,
        "schedule": Status.ScheduleReady if phase == "after" else Status.DoeComplete,
        "dispatch": Status.ScheduleReady,
    }[step]
    assert facts["status"] is expected, (point, facts["status"])
    if step == "dispatch":
        assert dispatched(system, test_uuid) == {"before": 0, "middle": 2, "after": 4}[phase], point


def test_sigkill_at_every_step_boundary_and_mid_step(system: System, models: ModelSet, tmp_path: Path) -> None:
    prepare_catalog(system, doe_runs=4)
    pause_dir = tmp_path / "pause"
    held = held_requests(system)
    storage_root = system.settings.data_dir / "storage"
    from fastlims.intake.storage import open_storage

    storage = open_storage(str(storage_root))
    for point, test_uuid in held:
        release_before(pause_dir, test_uuid, point)
        put_models(storage, test_uuid, models)  # the watcher's start-up scan sends their events

    env = base_environment(system, pipeline_worker_concurrency=len(held) + 2)
    paused = {**env, "FASTLIMS_PIPELINE_TEST_PAUSE": "*", "FASTLIMS_PIPELINE_TEST_PAUSE_DIR": str(pause_dir)}
    first = start(["up"], paused, tmp_path / "first.log")
    second: FastlimsProcess | None = None
    try:
        wait_for(
            lambda: all(reached(pause_dir, u, p) for p, u in held) or not first.alive(),
            timeout_s=120,
            what="every request to stand at its pause point",
        )
        assert first.alive(), first.tail()
        first.kill()
        for point, test_uuid in held:
            state_at_kill(system, point, test_uuid)

        ident = identity(system.settings, system.database.url)
        client = open_client(ident)
        try:
            pending = {w.workflow_id: w for w in client.list_workflows(name=durable.PIPELINE_WORKFLOW)}
            assert {pending[durable.workflow_id(u)].status for _, u in held} == {"PENDING"}

            second = start(["up"], base_environment(system), tmp_path / "second.log")

            def all_done() -> bool:
                assert second is not None and second.alive(), second.tail() if second else ""
                statuses = client.list_workflows(
                    workflow_ids=[durable.workflow_id(u) for _, u in held], load_input=False, load_output=False
                )
                return len(statuses) == len(held) and all(s.status == "SUCCESS" for s in statuses)

            wait_for(all_done, timeout_s=120, what="every workflow to finish after the restart")
            for point, test_uuid in held:
                assert request_facts(system, test_uuid)["status"] is Status.ScheduleReady, point
                counted = check_outputs_once(system, storage, test_uuid, client)
                assert counted["runs"] == 4 and counted["physical"] + counted["virtual"] == 4, point
                workflow_id = durable.workflow_id(test_uuid)
                names = [s["function_name"] for s in client.list_workflow_steps(workflow_id)]
                assert names == ["pipeline.processor", "pipeline.doe", "pipeline.schedule", "pipeline.dispatch"], point
                result = client.list_workflows(workflow_ids=[workflow_id])[0]
                assert result.output["outcome"] == "dispatched", (point, json.dumps(result.output)[:300])
                assert result.executor_id == ident.executor_id  # recovered by the restarted process itself
        finally:
            client.destroy()
    finally:
        first.kill()
        if second is not None:
            second.stop()

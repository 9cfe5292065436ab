"""Two ``fastlims worker`` processes on PostgreSQL share 20 concurrent requests; one is killed
with SIGKILL while it holds workflows, and the other resumes them once the dead one's heartbeat
is stale: every request reaches ScheduleReady with its outputs once and its runs dispatched
exactly once.

Worker A holds half of the requests at ``schedule:middle`` (a test-only pause point), so at the
kill it certainly has work in progress; worker B has no pause point.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from fastlims.bootstrap import System, build
from fastlims.config import Settings
from fastlims.intake.events import UploadEvent
from fastlims.pipeline import durable
from fastlims.pipeline.engine import identity, open_client
from fastlims.pipeline.models import Executor
from fastlims.requests.states import Status
from tests.conftest import LAB_ZONE, new_postgres_database
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
from tests.services import PostgresServer, missing

REQUESTS = 20


@pytest.fixture
def pg_system(tmp_path: Path, postgres: PostgresServer | None, postgres_template: str | None) -> Iterator[System]:
    if postgres is None:
        missing("PostgreSQL server (Debian package postgresql)")
    assert postgres is not None
    url = new_postgres_database(postgres, postgres_template)
    built = build(Settings(data_dir=tmp_path, database_url=url, timezone=LAB_ZONE, sftp_enabled=False))
    yield built
    built.close()


def executors_alive(system: System, *names: str) -> bool:
    with system.database.transaction() as session:
        found = set(session.scalars(select(Executor.executor_id).where(Executor.executor_id.in_(names))))
    return found == set(names)


def test_two_workers_share_twenty_requests_and_a_killed_one_loses_nothing(
    pg_system: System, models: ModelSet, tmp_path: Path
) -> None:
    system = pg_system
    prepare_catalog(system, doe_runs=4)
    requests = [new_request(system, "Physical" if i % 4 == 3 else "Virtual") for i in range(REQUESTS)]
    held = requests[REQUESTS // 2 :]
    pause_dir = tmp_path / "pause"
    for test_uuid in requests[: REQUESTS // 2]:  # worker A lets these pass its pause point
        (pause_dir / test_uuid).mkdir(parents=True)
        (pause_dir / test_uuid / "schedule.middle.go").touch()

    common = {"pipeline_executor_timeout_s": 2.0, "pipeline_worker_concurrency": 3}
    env_a = base_environment(system, pipeline_test_pause="schedule:middle", pipeline_test_pause_dir=pause_dir, **common)
    worker_a = start(["worker", "--executor-id", "worker-a"], env_a, tmp_path / "worker-a.log")
    worker_b = start(
        ["worker", "--executor-id", "worker-b"], base_environment(system, **common), tmp_path / "worker-b.log"
    )
    workers: list[FastlimsProcess] = [worker_a, worker_b]
    ident = identity(system.settings, system.database.url)
    client = None
    try:
        wait_for(
            lambda: executors_alive(system, "worker-a", "worker-b") or not (worker_a.alive() and worker_b.alive()),
            timeout_s=90,
            what="both workers to start",
        )
        assert worker_a.alive() and worker_b.alive(), worker_a.tail() + worker_b.tail()

        # 20 upload sets complete at once: the intake (here, in the test process) makes them
        # ModelReady; the workers' sweeps start one workflow each and share them.
        intake = system.intake

        def upload(test_uuid: str) -> str:
            keys = put_models(intake.storage, test_uuid, models)
            return intake.handler.handle_sync(UploadEvent(path=keys[-1], source="scan")).outcome

        with ThreadPoolExecutor(4) as pool:
            assert set(pool.map(upload, requests)) == {"accepted"}
        client = open_client(ident)

        def succeeded() -> list[object]:
            return [
                w
                for w in client.list_workflows(name=durable.PIPELINE_WORKFLOW, status="SUCCESS", load_input=False)
                if durable.request_uuid_of(w.workflow_id) in requests
            ]

        def holding() -> list[str]:
            return [u for u in held if (pause_dir / u / "schedule.middle.reached").exists()]

        wait_for(lambda: len(holding()) >= 2 and len(succeeded()) >= 3, timeout_s=90, what="both workers to be busy")
        a_held = holding()
        pending_on_a = client.list_workflows(status="PENDING", executor_id="worker-a", load_input=False)
        assert {durable.workflow_id(u) for u in a_held} <= {w.workflow_id for w in pending_on_a}
        worker_a.kill()  # mid-way: A holds workflows in the middle of their schedule step

        def all_done() -> bool:
            assert worker_b.alive(), worker_b.tail()
            done = {durable.request_uuid_of(w.workflow_id) for w in succeeded()}  # type: ignore[attr-defined]
            return done >= set(requests)

        wait_for(all_done, timeout_s=120, what="worker B to finish every request")
        finished_by = {}
        for test_uuid in requests:
            assert request_facts(system, test_uuid)["status"] is Status.ScheduleReady
            counted = check_outputs_once(system, intake.storage, test_uuid, client)
            assert counted["runs"] == 4 and counted["physical"] + counted["virtual"] == 4
            finished_by[test_uuid] = client.list_workflows(workflow_ids=[durable.workflow_id(test_uuid)])[0].executor_id
        assert {finished_by[u] for u in a_held} == {"worker-b"}  # A's work was resumed by B
        assert set(finished_by.values()) <= {"worker-a", "worker-b"}
        ran_on_a = {u for u in requests if (pause_dir / u / "schedule.middle.reached").exists()}
        assert len(ran_on_a) >= 2 and len(ran_on_a) < REQUESTS  # the work was shared
    finally:
        if client is not None:
            client.destroy()
        for worker in workers:
            worker.kill() if worker is worker_a else worker.stop()

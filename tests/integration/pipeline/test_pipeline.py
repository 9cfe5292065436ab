"""The durable pipeline in this process, on SQLite and PostgreSQL: an upload set becomes a
dispatched schedule; the same event twice starts one workflow; steps that run again leave each
effect once; permanent errors fail the request naming the step; transient ones are retried;
lost hooks and dead executors are made good; the CLI lists, shows and cancels."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text, update

from fastlims.benches.registry import BenchRecord
from fastlims.catalog.models import TestName
from fastlims.cli import main
from fastlims.intake.events import UploadEvent
from fastlims.messaging.models import OutboxMessage
from fastlims.messaging.schemas import BenchCommand
from fastlims.pipeline import durable, steps, workflow
from fastlims.pipeline.engine import reenqueue_orphans
from fastlims.pipeline.models import Executor
from fastlims.requests.states import Status
from fastlims.runs import queues
from fastlims.runs.models import ScheduledRun
from fastlims.runs.service import run_started
from fastlims.timeutil import utcnow
from tests.integration.pipeline.conftest import Pipeline, start_pipeline, stop_pipeline
from tests.integration.pipeline.helpers import (
    ModelSet,
    check_outputs_once,
    new_request,
    put_models,
    request_facts,
    status_of,
    wait_for,
    wait_status,
)


def upload(pipeline: Pipeline, test_uuid: str, models: ModelSet) -> None:
    """Store the set in the pool and deliver the last file's upload-complete event."""
    keys = put_models(pipeline.storage, test_uuid, models)
    outcome = pipeline.intake.handler.handle_sync(UploadEvent(path=keys[-1], source="scan"))
    assert outcome.outcome == "accepted", outcome


def statuses_published(pipeline: Pipeline, test_uuid: str) -> list[str]:
    with pipeline.system.database.transaction() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.topic == f"requests/{test_uuid}/status")
            .order_by(OutboxMessage.id)
        )
        return [json.loads(r.payload)["status"]["value"] for r in rows]


def test_an_upload_set_becomes_a_dispatched_schedule(pipeline: Pipeline, models: ModelSet) -> None:
    test_uuid = new_request(pipeline.system, "Virtual")
    upload(pipeline, test_uuid, models)
    wait_status(pipeline.system, test_uuid, Status.ScheduleReady)
    result = pipeline.finished(test_uuid)

    assert result.status == "SUCCESS" and result.output["outcome"] == "dispatched"
    assert len(json.dumps(result.output)) < 10 * 1024  # only metadata crossed between steps
    counted = check_outputs_once(pipeline.system, pipeline.storage, test_uuid, pipeline.client)
    assert counted == {"runs": 4, "physical": 0, "virtual": 4}
    facts = request_facts(pipeline.system, test_uuid)
    assert facts["workflow_id"] == durable.workflow_id(test_uuid)
    assert facts["doe_complete_at"] is not None and facts["schedule_ready_at"] is not None
    assert facts["optimised_start_at"] is not None and facts["assigned_bench"].startswith("virtual-")
    assert [a for _, _, a in facts["transitions"][-2:]] == ["pipeline", "pipeline"]
    assert statuses_published(pipeline, test_uuid)[-3:] == ["ModelReady", "DoeComplete", "ScheduleReady"]
    steps_run = [s["function_name"] for s in pipeline.client.list_workflow_steps(result.workflow_id)]
    assert steps_run == ["pipeline.processor", "pipeline.doe", "pipeline.schedule", "pipeline.dispatch"]
    queued = pipeline.client.list_workflows(workflow_id_prefix=result.workflow_id + ":")
    assert {w.status for w in queued} == {"DELAYED"}  # released to the bench at its booked start
    assert all(w.name == queues.VIRTUAL_RUN_WORKFLOW for w in queued)


def test_physical_runs_get_one_mqtt_command_each(pipeline: Pipeline, models: ModelSet) -> None:
    test_uuid = new_request(pipeline.system, "Physical")
    upload(pipeline, test_uuid, models)
    wait_status(pipeline.system, test_uuid, Status.ScheduleReady)
    pipeline.finished(test_uuid)
    assert check_outputs_once(pipeline.system, pipeline.storage, test_uuid, pipeline.client)["physical"] == 4
    with pipeline.system.database.transaction() as session:
        commands = [
            (m.topic, json.loads(m.payload))
            for m in session.scalars(select(OutboxMessage).where(OutboxMessage.topic.like("benches/%/commands")))
        ]
    assert {topic for topic, _ in commands} == {"benches/rig-1/commands"}
    for _, command in commands:
        assert command["command"] == "start" and command["test_UUID"] == test_uuid
        assert set(command["factors"]) == {"SOC0", "T_ambient_K"}
        assert command["command_id"] == f"{command['idempotency_key']}:start" and command["expected_state"] == "idle"
        assert BenchCommand.model_validate(command).run_file is not None  # the bench gets what it runs
        assert command["idempotency_key"] == durable.idempotency_key(durable.workflow_id(test_uuid), command["run_id"])


def test_the_same_event_twice_starts_one_workflow(pipeline: Pipeline, models: ModelSet) -> None:
    test_uuid = new_request(pipeline.system, "Virtual")
    keys = put_models(pipeline.storage, test_uuid, models)
    first = pipeline.intake.handler.handle_sync(UploadEvent(path=keys[-1], source="watcher"))
    again = pipeline.intake.handler.handle_sync(UploadEvent(path=keys[-1], source="eventgrid"))
    assert (first.outcome, again.outcome) == ("accepted", "duplicate")
    pipeline.engine.start(test_uuid)  # the sweep or an operator starting it again
    pipeline.engine.start_waiting()
    wait_status(pipeline.system, test_uuid, Status.ScheduleReady)
    result = pipeline.finished(test_uuid)
    found = pipeline.client.list_workflows(
        name=durable.PIPELINE_WORKFLOW, workflow_id_prefix=durable.workflow_id(test_uuid)
    )
    assert [w.workflow_id for w in found] == [result.workflow_id]
    assert len(pipeline.client.list_workflow_steps(result.workflow_id)) == 4
    check_outputs_once(pipeline.system, pipeline.storage, test_uuid, pipeline.client)


def test_steps_that_run_again_leave_each_effect_once(pipeline: Pipeline, models: ModelSet) -> None:
    """What a step interrupted by a crash does when it runs again, for every step."""
    test_uuid = new_request(pipeline.system, "Physical")
    upload(pipeline, test_uuid, models)
    wait_status(pipeline.system, test_uuid, Status.ScheduleReady)
    pipeline.finished(test_uuid)
    recorded = {
        s["function_name"]: s["output"] for s in pipeline.client.list_workflow_steps(durable.workflow_id(test_uuid))
    }
    before = check_outputs_once(pipeline.system, pipeline.storage, test_uuid, pipeline.client)
    context = workflow.context()
    start = {"workflow_id": durable.workflow_id(test_uuid), "test_uuid": test_uuid}
    assert steps.processor(context, start) == recorded["pipeline.processor"]
    assert steps.doe(context, recorded["pipeline.processor"]) == recorded["pipeline.doe"]
    again = steps.schedule(context, recorded["pipeline.doe"])
    assert {k: again[k] for k in ("optimised_start", "bench", "scheduled_runs")} == {
        k: recorded["pipeline.schedule"][k] for k in ("optimised_start", "bench", "scheduled_runs")
    }
    assert steps.dispatch(context, recorded["pipeline.schedule"])["dispatch"]["already"] == 4
    assert check_outputs_once(pipeline.system, pipeline.storage, test_uuid, pipeline.client) == before


def test_an_invalid_doe_section_fails_the_request_at_doe(pipeline: Pipeline, models: ModelSet) -> None:
    test_uuid = new_request(pipeline.system, "Virtual")
    with pipeline.system.database.transaction() as session:
        test = session.scalar(select(TestName).where(TestName.code == request_facts_test(pipeline, test_uuid)))
        test.doe_spec_json = json.dumps(
            {"method": "latin_hypercube", "factors": [{"name": "SOC_0", "low": 0, "high": 1}]}
        )
    upload(pipeline, test_uuid, models)
    wait_status(pipeline.system, test_uuid, Status.Failed)
    result = pipeline.finished(test_uuid)
    facts = request_facts(pipeline.system, test_uuid)
    assert facts["failure_reason"].startswith("pipeline step doe: unknown parameter 'SOC_0'")
    assert "did you mean SOC0" in facts["failure_reason"]
    assert result.status == "SUCCESS" and result.output["failed_step"] == "doe"
    folder = facts["simulation_folder"]
    failure = json.loads(pipeline.storage.get(f"{folder}/{steps.FAILURE_FILE}"))
    assert failure["step"] == "doe" and failure["workflow_id"] == result.workflow_id
    kept = {f.key.rsplit("/", 1)[1] for f in pipeline.storage.list(folder)}
    assert {"battery_cell.fmu", "cycler.fmu", "inter_connection.json", "doe_input.json"} <= kept
    assert statuses_published(pipeline, test_uuid)[-1] == "Failed"


def request_facts_test(pipeline: Pipeline, test_uuid: str) -> str:
    from fastlims.requests import service as requests

    with pipeline.system.database.transaction() as session:
        return requests.get_by_uuid(session=session, test_uuid=test_uuid).test.code


def test_an_infeasible_schedule_fails_the_request_at_schedule(pipeline: Pipeline, models: ModelSet) -> None:
    test_uuid = new_request(pipeline.system, "Physical")
    with pipeline.system.database.transaction() as session:
        session.execute(update(BenchRecord).values(is_active=False))  # no physical bench left
    upload(pipeline, test_uuid, models)
    wait_status(pipeline.system, test_uuid, Status.Failed)
    reason = request_facts(pipeline.system, test_uuid)["failure_reason"]
    assert reason.startswith("pipeline step schedule: no feasible schedule"), reason
    with pipeline.system.database.transaction() as session:
        assert session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == test_uuid)).all() == []


def test_transient_storage_errors_are_retried(
    pipeline: Pipeline, models: ModelSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = pipeline.storage
    real_get = storage.get
    failures = {"left": 4}  # more than one round of attempts (3): a durable pause, then success

    def flaky_get(key: str) -> bytes:
        if key.endswith("runs.json") and failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("storage unreachable (injected)")
        return real_get(key)

    monkeypatch.setattr(storage, "get", flaky_get)
    test_uuid = new_request(pipeline.system, "Virtual")
    upload(pipeline, test_uuid, models)
    wait_status(pipeline.system, test_uuid, Status.ScheduleReady)
    pipeline.finished(test_uuid)
    assert failures["left"] == 0
    names = [s["function_name"] for s in pipeline.client.list_workflow_steps(durable.workflow_id(test_uuid))]
    assert names == [
        "pipeline.processor",
        "pipeline.doe",
        "pipeline.schedule",
        "DBOS.sleep",
        "pipeline.schedule",
        "pipeline.dispatch",
    ]


def test_transient_errors_that_last_fail_the_request(
    pipeline: Pipeline, models: ModelSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = pipeline.storage
    real_get = storage.get

    def down(key: str) -> bytes:
        if key.endswith("runs.json"):
            raise ConnectionError("storage unreachable (injected)")
        return real_get(key)

    monkeypatch.setattr(storage, "get", down)
    test_uuid = new_request(pipeline.system, "Virtual")
    upload(pipeline, test_uuid, models)
    wait_status(pipeline.system, test_uuid, Status.Failed)
    reason = request_facts(pipeline.system, test_uuid)["failure_reason"]
    assert reason.startswith("pipeline step schedule: still failing after about") and "ConnectionError" in reason


def test_a_lost_hook_is_made_good_by_the_sweep(pipeline: Pipeline, models: ModelSet) -> None:
    hooks = list(pipeline.intake.hooks)
    pipeline.intake.hooks.clear()  # the process died between the intake's commit and its hook
    test_uuid = new_request(pipeline.system, "Virtual")
    upload(pipeline, test_uuid, models)
    pipeline.intake.hooks.extend(hooks)
    assert status_of(pipeline.system, test_uuid) is Status.ModelReady
    assert pipeline.workflow(test_uuid) is None
    assert pipeline.engine.tick()["started"] == 1
    wait_status(pipeline.system, test_uuid, Status.ScheduleReady)


def test_the_pending_workflow_of_a_dead_executor_is_resumed(pipeline: Pipeline, models: ModelSet) -> None:
    hooks = list(pipeline.intake.hooks)
    pipeline.intake.hooks.clear()
    test_uuid = new_request(pipeline.system, "Virtual")
    upload(pipeline, test_uuid, models)
    pipeline.intake.hooks.extend(hooks)
    workflow_id = durable.workflow_id(test_uuid)
    # A process on another machine took the workflow, then died: PENDING under its executor id.
    pipeline.client.enqueue(
        {"workflow_name": durable.PIPELINE_WORKFLOW, "queue_name": "parked", "workflow_id": workflow_id,
         "app_version": pipeline.engine.identity.application_version},
        test_uuid,
    )  # fmt: skip
    old = utcnow() - timedelta(minutes=5)
    sysdb = create_engine(
        pipeline.engine.identity.system_database_url.replace("postgresql://", "postgresql+psycopg://")
    )
    table = "workflow_status" if sysdb.dialect.name == "sqlite" else "dbos.workflow_status"
    with sysdb.begin() as connection:
        connection.execute(
            text(
                f"UPDATE {table} SET status='PENDING', executor_id='gone-host', queue_name='pipeline',"
                " updated_at=:old WHERE workflow_uuid=:id"
            ),
            {"old": int(old.timestamp() * 1000), "id": workflow_id},
        )
    sysdb.dispose()
    with pipeline.system.database.transaction() as session:
        session.add(Executor(executor_id="gone-host", hostname="elsewhere", pid=1, role="worker",
                             application_version=pipeline.engine.identity.application_version,
                             started_at=old, heartbeat_at=old))  # fmt: skip
    time.sleep(0)  # nothing to wait for: the executor's heartbeat is already stale
    assert pipeline.engine.recover_orphans() == [workflow_id]
    assert reenqueue_orphans(pipeline.client, ["gone-host"], pipeline.engine.identity.application_version) == []
    wait_status(pipeline.system, test_uuid, Status.ScheduleReady)
    assert pipeline.finished(test_uuid).executor_id == pipeline.engine.identity.executor_id


def test_a_started_run_moves_the_request_to_running(pipeline: Pipeline, models: ModelSet) -> None:
    test_uuid = new_request(pipeline.system, "Virtual")
    upload(pipeline, test_uuid, models)
    wait_status(pipeline.system, test_uuid, Status.ScheduleReady)
    with pipeline.system.database.transaction() as session:
        first, second = session.scalars(
            select(ScheduledRun.run_id).where(ScheduledRun.test_uuid == test_uuid).order_by(ScheduledRun.start_at)
        ).all()[:2]
        run_started(session=session, run_id=first)
    with pipeline.system.database.transaction() as session:
        run_started(session=session, run_id=second)
    facts = request_facts(pipeline.system, test_uuid)
    assert facts["status"] is Status.Running
    assert [t for t in facts["transitions"] if t[1] == "Running"] == [("ScheduleReady", "Running", "bench")]


def cli(pipeline: Pipeline, *args: str) -> str:
    settings = pipeline.system.settings
    env = {
        "FASTLIMS_DATA_DIR": str(settings.data_dir),
        "FASTLIMS_DATABASE_URL": pipeline.system.database.url,
        "FASTLIMS_TIMEZONE": settings.timezone,
    }
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_lists_shows_and_cancels_workflows(system: object, models: ModelSet) -> None:
    running = start_pipeline(
        system, pipeline_test_pause="doe:before", pipeline_test_pause_dir=system.settings.data_dir / "pause"
    )  # type: ignore[attr-defined]
    try:
        done = new_request(running.system, "Virtual")
        (running.system.settings.data_dir / "pause" / done).mkdir(parents=True)
        (running.system.settings.data_dir / "pause" / done / "doe.before.go").touch()
        upload(running, done, models)
        wait_status(running.system, done, Status.ScheduleReady)
        running.finished(done)
        held = new_request(running.system, "Virtual")
        upload(running, held, models)
        wait_for(lambda: (running.system.settings.data_dir / "pause" / held / "doe.before.reached").exists())

        listed = cli(running, "workflows", "list")
        assert f"{durable.workflow_id(done)}\tSUCCESS" in listed and f"{durable.workflow_id(held)}\tPENDING" in listed
        number = request_facts_number(running, done)
        shown = json.loads(cli(running, "workflows", "show", number))
        assert shown["workflow_id"] == durable.workflow_id(done) and shown["outcome"] == "dispatched"
        assert [s["name"] for s in shown["steps"]][-1] == "pipeline.dispatch"

        out = cli(running, "workflows", "cancel", held)
        assert "cancelled" in out and "request TR-" in out
        (running.system.settings.data_dir / "pause" / held / "doe.before.go").touch()
        assert running.finished(held).status == "CANCELLED"
        assert status_of(running.system, held) is Status.Cancelled
        doe_output = f"{request_facts(running.system, held)['simulation_folder']}/doe-output/runs.json"
        assert running.storage.head(doe_output) is None
        env = {
            "FASTLIMS_DATA_DIR": str(running.system.settings.data_dir),
            "FASTLIMS_DATABASE_URL": running.system.database.url,
        }
        refused = CliRunner().invoke(main, ["workflows", "resume", done], env=env)
        assert refused.exit_code == 1 and "already finished" in refused.output
        refused = CliRunner().invoke(main, ["workflows", "cancel", done], env=env)
        assert refused.exit_code == 1 and "already ended (SUCCESS)" in refused.output
    finally:
        stop_pipeline(running)


def request_facts_number(pipeline: Pipeline, test_uuid: str) -> str:
    from fastlims.requests import service as requests

    with pipeline.system.database.transaction() as session:
        return requests.get_by_uuid(session=session, test_uuid=test_uuid).request_number

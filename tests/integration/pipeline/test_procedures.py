"""The pipeline runs each request's procedure: the DoE designs over the procedure's variables, every
run gets its resolved procedure, virtual runs are booked for their compute time (the FMU set's
measured speed once it has one) and released at once when dated now."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from fastlims.intake.events import UploadEvent
from fastlims.pipeline import plan, procedure
from fastlims.procedures.runfile import RunProcedure
from fastlims.requests import service as requests
from fastlims.requests.schemas import TestRequestCreate
from fastlims.requests.states import Status
from fastlims.runs.lifecycle import RunState
from fastlims.runs.models import ScheduledRun
from fastlims.timeutil import utcnow
from fastlims.users import service as users
from tests.catalog_helpers import applicable
from tests.integration.pipeline.conftest import Pipeline, start_pipeline, stop_pipeline
from tests.integration.pipeline.helpers import ModelSet, put_models, wait_status


@pytest.fixture
def running(system: object) -> Iterator[Pipeline]:
    # A slow assumed speed: a booking by it is longer than the 60 s floor, and far shorter than the test.
    pipeline = start_pipeline(system, doe_runs=None, virtual_bench_speed=50.0)  # type: ignore[arg-type]
    try:
        yield pipeline
    finally:
        stop_pipeline(pipeline)


def request_now(pipeline: Pipeline, models: ModelSet) -> str:
    """A virtual request preferred two seconds from now, its models uploaded; returns its UUID."""
    system = pipeline.system
    combination = applicable(system, bench="Virtual")
    preferred = (utcnow() + timedelta(seconds=2)).astimezone(system.zone).strftime("%Y-%m-%dT%H:%M:%S")
    with system.database.transaction() as session:
        user = users.get_by_username(session=session, username="rita")
        assert user is not None
        request = requests.create(
            session=session,
            data=TestRequestCreate(**combination.body(preferred_date=preferred)),
            requester=user,
            zone=system.zone,
        )
        requests.change_status(session=session, request=request, target=Status.ModelRequested, actor="test")
        uuid = request.test_uuid
    keys = put_models(pipeline.storage, uuid, models)
    assert pipeline.intake.handler.handle_sync(UploadEvent(path=keys[-1], source="scan")).outcome == "accepted"
    return uuid


def booked(pipeline: Pipeline, uuid: str) -> list[ScheduledRun]:
    with pipeline.system.database.transaction() as session:
        rows = list(session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == uuid)))
        session.expunge_all()
        return rows


def runs_document(pipeline: Pipeline, uuid: str) -> dict[str, object]:
    folder = requests_folder(pipeline, uuid)
    return json.loads(pipeline.storage.get(f"{folder}/doe-output/runs.json"))


def requests_folder(pipeline: Pipeline, uuid: str) -> str:
    with pipeline.system.database.transaction() as session:
        folder = requests.get_by_uuid(session=session, test_uuid=uuid).simulation_folder
        assert folder
        return folder


def test_the_doe_varies_the_procedure_and_each_run_gets_its_resolved_procedure(
    running: Pipeline, models: ModelSet
) -> None:
    uuid = request_now(running, models)
    wait_status(running.system, uuid, Status.ScheduleReady)
    document = runs_document(running, uuid)
    runs = document["runs"]
    assert isinstance(runs, list) and len(runs) >= 2, "the procedure's variables give several runs"
    values = [run["values"] for run in runs]
    assert len({json.dumps(v, sort_keys=True) for v in values}) == len(runs), "each run its own factors"
    for run in runs:
        given = RunProcedure.from_json(running.storage.get(run["procedure"]))
        assert given.procedure.values == run["values"]  # the run's procedure carries its values
        assert math.isclose(given.expected_duration_s, run["expected_duration_s"])
        assert given.ratings.code == given.procedure.uut
    rows = booked(running, uuid)
    assert {r.procedure_key for r in rows} == {run["procedure"] for run in runs}
    assert all(json.loads(r.values_json or "{}") in values for r in rows)


def test_a_virtual_request_dated_now_is_booked_for_its_compute_time_and_starts_at_once(
    running: Pipeline, models: ModelSet
) -> None:
    before = utcnow()
    uuid = request_now(running, models)
    wait_status(running.system, uuid, Status.ScheduleReady)
    settings = running.system.settings
    expected = {run["run_id"]: run["expected_duration_s"] for run in runs_document(running, uuid)["runs"]}
    rows = booked(running, uuid)
    first = min(r.start_at for r in rows)
    assert first <= before + timedelta(seconds=60), "not pushed to the next minute, nor behind a test's own length"
    for row in rows:
        compute = procedure.virtual_booking_s(
            expected[row.run_id],
            settings.virtual_bench_speed,
            factor=settings.virtual_bench_booking_factor,
            floor_s=settings.virtual_bench_booking_floor_s,
        )
        assert row.end_at - row.start_at == timedelta(minutes=plan.duration_minutes(compute))
        assert (row.end_at - row.start_at).total_seconds() < expected[row.run_id] / 10, "not the test's own length"
    result = running.finished(uuid)  # dispatched
    queued = running.client.list_workflows(workflow_id_prefix=f"{result.workflow_id}:")
    assert queued and any(w.status in ("ENQUEUED", "PENDING", "SUCCESS") for w in queued), [w.status for w in queued]


def test_the_fmu_sets_measured_speed_books_its_next_runs(running: Pipeline, models: ModelSet) -> None:
    first = request_now(running, models)
    wait_status(running.system, first, Status.ScheduleReady)
    running.finished(first)  # dispatched: nothing of the pipeline touches its runs any more
    fmu_set = runs_document(running, first)["fmu_set"]
    assert isinstance(fmu_set, str) and len(fmu_set) == 64
    with running.system.database.transaction() as session:  # as if its runs had completed, very fast
        for row in session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == first)):
            row.state, row.ended_at, row.fmu_set = RunState.completed.value, utcnow(), fmu_set
            row.simulated_seconds, row.wall_seconds = 1e9, 1.0
    second = request_now(running, models)
    wait_status(running.system, second, Status.ScheduleReady)
    assert runs_document(running, second)["fmu_set"] == fmu_set
    floor = timedelta(minutes=plan.duration_minutes(running.system.settings.virtual_bench_booking_floor_s))
    assert {r.end_at - r.start_at for r in booked(running, second)} == {floor}
    assert {r.end_at - r.start_at for r in booked(running, first)} != {floor}, "the assumed speed booked longer"

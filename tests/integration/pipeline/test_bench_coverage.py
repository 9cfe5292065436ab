"""The schedule step books a physical run only on a bench whose ratings cover its procedure, and
fails the request naming each bench's shortfall when none does (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import select

from fastlims.benches import registry
from fastlims.requests.states import Status
from fastlims.runs.models import ScheduledRun
from tests.integration.pipeline.conftest import Pipeline
from tests.integration.pipeline.helpers import ROUND_THE_CLOCK, ModelSet, new_request, request_facts, wait_status
from tests.integration.pipeline.test_pipeline import upload


def test_a_run_no_bench_covers_fails_at_schedule_naming_the_shortfall(pipeline: Pipeline, models: ModelSet) -> None:
    with pipeline.system.database.transaction() as session:
        registry.update(session=session, name="rig-1", changes={"max_current_A": 0.001})
    test_uuid = new_request(pipeline.system, "Physical")
    upload(pipeline, test_uuid, models)
    wait_status(pipeline.system, test_uuid, Status.Failed)
    reason = request_facts(pipeline.system, test_uuid)["failure_reason"]
    assert reason.startswith("pipeline step schedule: no feasible schedule"), reason
    assert "no active physical bench can take it" in reason and "rig-1: max current 0.001 A <" in reason, reason
    with pipeline.system.database.transaction() as session:
        assert session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == test_uuid)).all() == []


def test_runs_are_booked_only_on_the_bench_that_covers_them(pipeline: Pipeline, models: ModelSet) -> None:
    with pipeline.system.database.transaction() as session:
        registry.update(session=session, name="rig-1", changes={"max_current_A": 0.001})
        registry.add(
            session=session,
            name="rig-big",
            kind="physical",
            calendar=ROUND_THE_CLOCK,
            ratings=registry.Ratings(max_current_A=1000.0, max_voltage_V=1000.0, temperature_chamber=True),
        )
    test_uuid = new_request(pipeline.system, "Physical")
    upload(pipeline, test_uuid, models)
    wait_status(pipeline.system, test_uuid, Status.ScheduleReady)
    with pipeline.system.database.transaction() as session:
        benches = {r.bench for r in session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == test_uuid))}
    assert benches == {"rig-big"}

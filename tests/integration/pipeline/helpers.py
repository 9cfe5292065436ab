"""Helpers for the pipeline tests: a model set, requests waiting for it, the catalog's DoE
section, benches, and checks that every step's outputs exist once and every run was handed over
exactly once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from fastlims.benches import registry
from fastlims.bootstrap import System
from fastlims.catalog.models import TestName
from fastlims.intake.storage import BlobStorage
from fastlims.messaging.models import OutboxMessage
from fastlims.peers.digital_twin import interconnection as reference_interconnection
from fastlims.pipeline import durable
from fastlims.requests import service as requests
from fastlims.requests.models import TestRequestEvent
from fastlims.requests.schemas import TestRequestCreate
from fastlims.requests.states import Status
from fastlims.runs import queues
from fastlims.runs.models import ScheduledRun
from fastlims.timeutil import utcnow
from fastlims.users import service as users
from tests import services
from tests.catalog_helpers import applicable

T = TypeVar("T")

# The reference Digital Twin's set: the cycler's current drives the cell, and the UUT port roles a
# request's procedure needs (current, voltage, temperature, soc, ambient_temperature) are declared.
INTERCONNECTION = reference_interconnection("battery_cell", "cycler")
ROUND_THE_CLOCK = {"weekly_hours": [[["00:00", "00:00"]]] * 7}
# A physical bench that covers every catalog procedure of every seed UUT (packs up to 430 V).
LARGE_RIG = registry.Ratings(max_current_A=1000.0, max_voltage_V=1000.0, temperature_chamber=True)


def doe_section(runs: int) -> dict[str, Any]:
    """A small Latin hypercube over two bounded parameters of the reference battery cell."""
    return {
        "method": "latin_hypercube",
        "run_budget": runs,
        "seed": 3,
        "factors": [{"name": "SOC0", "low": 0.2, "high": 1.0}, {"name": "T_ambient_K", "low": 273.15, "high": 318.15}],
    }


@dataclass(frozen=True)
class ModelSet:
    battery_cell: bytes
    cycler: bytes

    def files(self) -> dict[str, bytes]:
        return {
            "battery_cell.fmu": self.battery_cell,
            "cycler.fmu": self.cycler,
            "inter_connection.json": json.dumps(INTERCONNECTION).encode(),
        }


def model_set(folder: Path, fmi_version: str = "2.0") -> ModelSet:
    from fastlims.peers.fmus import build_fmu

    return ModelSet(
        build_fmu("battery_cell", fmi_version, folder, name="battery_cell").read_bytes(),
        build_fmu("cycler", fmi_version, folder, name="cycler").read_bytes(),
    )


def prepare_catalog(system: System, *, doe_runs: int | None, physical_benches: int = 1) -> dict[str, str]:
    """The test names of a virtual and a physical combination get a DoE section (or none);
    ``physical_benches`` round-the-clock physical benches are registered. Returns the test codes."""
    virtual = applicable(system, bench="Virtual")
    physical = applicable(system, bench="Physical")
    with system.database.transaction() as session:
        for code in {virtual.test_name, physical.test_name}:
            test = session.scalar(select(TestName).where(TestName.code == code))
            assert test is not None
            test.doe_spec_json = json.dumps(doe_section(doe_runs)) if doe_runs else None
        for index in range(1, physical_benches + 1):
            registry.add(
                session=session, name=f"rig-{index}", kind="physical", calendar=ROUND_THE_CLOCK, ratings=LARGE_RIG
            )
        if users.get_by_username(session=session, username="rita") is None:
            users.create(
                session=session,
                username="rita",
                role="requester",
                password="correct-horse-battery",
                display_name="Rita",
            )
    return {"Virtual": virtual.test_name, "Physical": physical.test_name}


def new_request(system: System, bench: str = "Virtual", days_ahead: int = 2) -> str:
    """A ModelRequested request for ``bench``; returns its test_UUID."""
    combination = applicable(system, bench=bench)
    preferred = (utcnow() + timedelta(days=days_ahead)).astimezone(system.zone).strftime("%Y-%m-%dT%H:%M:%S")
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
        return request.test_uuid


def put_models(storage: BlobStorage, test_uuid: str, models: ModelSet) -> list[str]:
    keys = []
    for name, data in models.files().items():
        key = f"pool/{test_uuid}/{name}"
        storage.put(key, data)
        keys.append(key)
    return keys


def status_of(system: System, test_uuid: str) -> Status:
    with system.database.transaction() as session:
        return Status(requests.get_by_uuid(session=session, test_uuid=test_uuid).status)


def request_facts(system: System, test_uuid: str) -> dict[str, Any]:
    with system.database.transaction() as session:
        r = requests.get_by_uuid(session=session, test_uuid=test_uuid)
        return {
            "status": Status(r.status),
            "failure_reason": r.failure_reason,
            "workflow_id": r.workflow_id,
            "simulation_folder": r.simulation_folder,
            "doe_complete_at": r.doe_complete_at,
            "schedule_ready_at": r.schedule_ready_at,
            "optimised_start_at": r.optimised_start_at,
            "assigned_bench": r.assigned_bench,
            "transitions": [
                (e.from_value, e.to_value, e.actor)
                for e in session.scalars(
                    select(TestRequestEvent)
                    .where(TestRequestEvent.request_id == r.id, TestRequestEvent.kind == "status")
                    .order_by(TestRequestEvent.id)
                )
            ],
        }


def wait_for(condition: Callable[[], T], timeout_s: float = 30.0, what: str = "condition") -> T:
    return services.wait_for(condition, timeout_s, what)


def wait_status(system: System, test_uuid: str, wanted: Status, timeout_s: float = 30.0) -> None:
    def reached() -> bool:
        status = status_of(system, test_uuid)
        if status is Status.Failed and wanted is not Status.Failed:
            raise AssertionError(f"{test_uuid} failed: {request_facts(system, test_uuid)['failure_reason']}")
        return status is wanted

    wait_for(reached, timeout_s, f"{test_uuid} to reach {wanted.name}")


def check_outputs_once(system: System, storage: BlobStorage, test_uuid: str, client: Any) -> dict[str, Any]:
    """Every step's outputs exist once, each run is booked once and handed to its bench once;
    each status arrived once. Returns what it counted."""
    facts = request_facts(system, test_uuid)
    folder = facts["simulation_folder"]
    keys = [f.key for f in storage.list(folder)]
    names = Counter(k[len(folder) + 1 :] for k in keys)
    assert not [k for k in keys if k.endswith(".partial")], f"temporary files left: {keys}"
    for expected in (
        "intake.json",
        "doe-input/doe_input.json",
        "doe-output/runs.json",
        "doe-output/runs.csv",
        "schedule-output/schedule.json",
        "schedule-output/gantt.svg",
    ):
        assert names[expected] == 1, f"{expected} in {sorted(names)}"
    runs = json.loads(storage.get(f"{folder}/doe-output/runs.json"))["runs"]
    run_ids = [r["run_id"] for r in runs]
    assert len(set(run_ids)) == len(run_ids)
    with system.database.transaction() as session:
        booked = list(session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == test_uuid)))
        commands = [
            json.loads(m.payload)
            for m in session.scalars(select(OutboxMessage).where(OutboxMessage.topic.like("benches/%/commands")))
        ]
    assert sorted(b.run_id for b in booked) == sorted(run_ids), "every designed run booked exactly once"
    assert all(b.dispatched_at is not None for b in booked), "every run dispatched"
    keys_of_request = {b.idempotency_key for b in booked}
    physical = Counter(c["idempotency_key"] for c in commands if c["idempotency_key"] in keys_of_request)
    queued = client.list_workflows(
        workflow_id_prefix=durable.workflow_id(test_uuid) + ":", load_input=False, load_output=False
    )
    virtual = Counter(w.workflow_id for w in queued)
    for b in booked:
        if b.bench_kind == "physical":
            assert physical[b.idempotency_key] == 1 and virtual[b.idempotency_key] == 0, b.run_id
        else:
            assert virtual[b.idempotency_key] == 1 and physical[b.idempotency_key] == 0, b.run_id
            assert queued[[w.workflow_id for w in queued].index(b.idempotency_key)].queue_name == queues.bench_queue(
                b.bench
            )
    moves = Counter((a, b) for a, b, _ in facts["transitions"])
    for move in (("ModelRequested", "ModelReady"), ("ModelReady", "DoeComplete"), ("DoeComplete", "ScheduleReady")):
        assert moves[move] == 1, f"{move} recorded {moves[move]} times: {facts['transitions']}"
    return {"runs": len(run_ids), "physical": sum(physical.values()), "virtual": sum(virtual.values())}

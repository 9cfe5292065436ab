"""Physical runs through the LIMS's bench gateway, against ``fastlims bench emulate`` in its own
process on a real broker (embedded amqtt and Mosquitto): the run workflow loads and starts the
run, the gateway stores each sample once and the run's end lands in the same results, outcomes
and request status as a virtual run's. Faults end in a moved run or a clear ``Failed``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from fastlims.benches import registry
from fastlims.bootstrap import System
from fastlims.pipeline import durable
from fastlims.pipeline.context import QueuedRun
from fastlims.pipeline.engine import ClientDispatcher
from fastlims.pipeline.steps import run_order
from fastlims.procedures.runfile import RunProcedure
from fastlims.requests import service as requests
from fastlims.requests.states import Status
from fastlims.runs import events as run_events
from fastlims.runs import queues, samples
from fastlims.runs.lifecycle import RunState
from fastlims.runs.models import Channel, ScheduledRun
from fastlims.runs.results import read_parquet
from fastlims.timeutil import utcnow
from tests.bench_helpers import BenchBroker, EmulatorProcess, capacity_run_file, start_bench_broker, start_emulator
from tests.integration.pipeline.conftest import Pipeline, start_pipeline, stop_pipeline
from tests.integration.pipeline.helpers import INTERCONNECTION, ROUND_THE_CLOCK, new_request, wait_for
from tests.mqtt_helpers import RunningServices

# The gateway's decisions do not depend on the broker: the fault tests run on the embedded one;
# the whole run and the LIMS restart (where the broker's session matters) on both.
ONE_BROKER = pytest.mark.parametrize("broker", ["amqtt"], indirect=True)
BENCHES = {"rig-1": secrets.token_urlsafe(12), "rig-2": secrets.token_urlsafe(12)}
RIG = registry.Ratings(max_current_A=50.0, max_voltage_V=10.0, min_voltage_V=0.0, temperature_chamber=True)


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[BenchBroker]:
    folder = tmp_path / "broker"
    folder.mkdir()
    running = start_bench_broker(request.param, folder, sqlite_template, BENCHES)
    yield running
    running.close()


@dataclass
class Lab:
    pipeline: Pipeline
    broker: BenchBroker
    services: RunningServices
    emulators: list[EmulatorProcess] = field(default_factory=list)

    @property
    def system(self) -> System:
        return self.pipeline.system

    def emulate(self, name: str, *arguments: str) -> EmulatorProcess:
        process = start_emulator(self.broker, name, BENCHES[name], "--speed", "1000", *arguments)
        self.emulators.append(process)
        wait_for(lambda: self.bench_state(name) not in (None, "offline"), 30, f"{name} to come online")
        return process

    def bench_state(self, name: str) -> str | None:
        from fastlims.benches.gateway.models import BenchLiveState

        with self.system.database.transaction() as session:
            row = session.get(BenchLiveState, name)
            return row.state if row is not None else None

    def request(
        self,
        bench: str = "rig-1",
        run_file: RunProcedure | None = None,
        *,
        models: Mapping[str, bytes] | None = None,
        partner: str | None = None,
    ) -> tuple[str, str]:
        """A ScheduleReady request with one run booked on ``bench`` now, queued as the pipeline's
        dispatch queues it; returns its test_UUID and run id. ``models`` (FMU name → bytes): the
        Digital Twin delivered them, with the reference inter_connection.json (the order names
        them, so the run gets a twin); ``partner`` serves the request."""
        uuid = new_request(self.system, "Physical")
        folder = f"requests/{uuid}"
        storage = self.pipeline.storage
        procedure_key = f"{folder}/procedures/run.json"
        storage.put(procedure_key, (run_file or capacity_run_file()).to_json().encode())
        meta: dict[str, Any] = {"simulation_folder": folder}
        if models is not None:
            keys = {name: f"{folder}/fmus/{name}.fmu" for name in models}
            for name, content in models.items():
                storage.put(keys[name], content)
            storage.put(f"{folder}/inter_connection.json", json.dumps(INTERCONNECTION).encode())
            meta |= {"fmus": list(keys.values()), "interconnection": f"{folder}/inter_connection.json"}
        workflow = durable.workflow_id(uuid)
        run_id = durable.global_run_id(uuid, "run-001")
        now = utcnow()
        with self.system.database.transaction() as session:
            request = requests.get_by_uuid(session=session, test_uuid=uuid)
            request.simulation_folder = folder
            request.dt_partner = partner
            for target in (Status.ModelReady, Status.DoeComplete, Status.ScheduleReady):
                requests.change_status(session=session, request=request, target=target, actor="test")
            row = ScheduledRun(
                run_id=run_id, request_id=request.id, test_uuid=uuid, workflow_id=workflow, design_run_id="run-001",
                bench=bench, bench_kind="physical", start_at=now, end_at=now + timedelta(hours=4), test_start_at=now,
                parameters_json="{}", values_json=json.dumps({"C_rate": 0.33}), procedure_key=procedure_key,
                idempotency_key=durable.idempotency_key(workflow, run_id), channel=Channel.mqtt.value,
                state=RunState.dispatched.value, dispatched_at=now,
            )  # fmt: skip
            session.add(row)
            session.flush()
            order = run_order(row, meta)
        ClientDispatcher(self.pipeline.engine).enqueue(
            [QueuedRun(queues.bench_queue(bench), order["idempotency_key"], order, 0.0, queues.PHYSICAL_RUN_WORKFLOW)]
        )
        return uuid, run_id

    def reason(self, uuid: str) -> str | None:
        with self.system.database.transaction() as session:
            return requests.get_by_uuid(session=session, test_uuid=uuid).failure_reason

    def status(self, uuid: str) -> Status:
        with self.system.database.transaction() as session:
            return Status(requests.get_by_uuid(session=session, test_uuid=uuid).status)

    def ended(self, uuid: str, timeout_s: float = 60) -> Status:
        return wait_for(
            lambda: s if (s := self.status(uuid)) in (Status.Completed, Status.Failed) else None,
            timeout_s,
            f"request {uuid} to end",
        )

    def run(self, run_id: str) -> ScheduledRun:
        with self.system.database.transaction() as session:
            row = session.scalar(select(ScheduledRun).where(ScheduledRun.run_id == run_id))
            assert row is not None
            session.expunge(row)
            return row


@contextlib.contextmanager
def running_lab(system: System, broker: BenchBroker, **settings: Any) -> Iterator[Lab]:
    """The launched pipeline on ``broker`` with the LIMS's MQTT relay and bench gateway running,
    the bench queues listened to, and the two rigs registered with an emulator's ratings."""
    username, password = broker.lab_identity
    pipeline = start_pipeline(
        system,
        doe_runs=None,
        mqtt_url=f"mqtt://127.0.0.1:{broker.port}",
        mqtt_username=username,
        mqtt_password=SecretStr(password),
        **settings,
    )
    with pipeline.system.database.transaction() as session:
        for name in BENCHES:  # rig-1 is the pipeline fixture's; both get an emulator's ratings
            if name == "rig-1":
                registry.update(session=session, name=name, changes=dataclasses.asdict(RIG))
            else:
                registry.add(session=session, name=name, kind="physical", calendar=ROUND_THE_CLOCK, ratings=RIG)
    gateway = next(s for s in pipeline.system.services if s.name == "bench-gateway")
    relay = next(s for s in pipeline.system.services if s.name == "mqtt-messaging")
    services = RunningServices(pipeline.system, [relay, gateway])
    services.start()
    worker = pipeline.system.bench_worker
    assert worker is not None
    worker.attach(None)  # listen to the bench queues (physical ones included, and the virtual ones)
    running = Lab(pipeline, broker, services)
    try:
        yield running
    finally:
        for emulator in running.emulators:
            emulator.terminate()
        worker.detach()
        running.services.stop()  # the test may have restarted them
        stop_pipeline(pipeline)


@pytest.fixture
def lab(system: System, broker: BenchBroker) -> Iterator[Lab]:
    with running_lab(
        system, broker, bench_command_timeout_s=1.5, bench_command_retries=1, bench_offline_grace_s=3.0
    ) as running:
        yield running


def test_a_physical_capacity_run_completes_with_every_sample_once(lab: Lab) -> None:
    lab.emulate("rig-1")
    watcher = lab.broker.lab_peer()
    assert watcher.subscribe("fastest/v1/benches/rig-1/runs/#") == [1]
    uuid, run_id = lab.request()
    assert lab.ended(uuid) is Status.Completed, lab.reason(uuid)
    run = lab.run(run_id)
    assert run.state == "completed" and run.end_cause == "procedure_complete" and run.bench == "rig-1"
    with lab.system.database.transaction() as session:
        got = samples.assemble(session, run_id)
        said = [e["event"] for e in run_events.of_run(session, run_id)]
    assert got.gaps == [] and got.duplicates == 0 and got.records > 100
    assert said[0] == "started" and said[-1] == "completed" and "step_ended" in said
    current, voltage = got.columns["Current / A"], got.columns["Voltage / V"]
    assert current.min() == pytest.approx(-5.0 / 3, rel=0.02)  # C/3 of a 5 Ah cell, discharge negative
    assert voltage.min() == pytest.approx(2.5, abs=0.02) and voltage.min() > 0  # down to the cut-off, no further
    outcomes = json.loads(run.outcomes_json or "{}")
    time_s = got.columns["Test Time / s"]
    discharged = float(-(current[:-1] * (time_s[1:] - time_s[:-1]))[current[:-1] < 0].sum() / 3600.0)
    assert outcomes["discharge_capacity_Ah"] == pytest.approx(discharged, rel=0.02)  # from the samples stored
    assert 1.5 < outcomes["discharge_capacity_Ah"] < 3.0  # the emulated cell starts half full
    stored = read_parquet(lab.pipeline.storage.get(f"requests/{uuid}/simulation-results/{run_id}/results.parquet"))
    assert len(stored.columns["Voltage / V"]) == got.records
    # An independent subscriber saw the same records the LIMS stored, numbered without gaps.
    seen = watcher.messages_until(
        lambda got_: any(t.endswith("/events") and m.get("event") == "completed" for t, m in got_), timeout=10
    )
    batches = sorted((m["record_index"], len(m["timestamps"])) for t, m in seen if t.endswith("/metrics"))
    assert batches and batches[0][0] == 0
    assert sum(n for _, n in {i: n for i, n in batches}.items()) == got.records


@ONE_BROKER
def test_a_bench_that_never_answers_loses_the_run_to_another_bench(lab: Lab) -> None:
    lab.emulate("rig-1", "--fault", "never-answer")
    lab.emulate("rig-2")
    uuid, run_id = lab.request("rig-1")
    assert lab.ended(uuid) is Status.Completed, lab.reason(uuid)
    run = lab.run(run_id)
    assert run.bench == "rig-2" and run.state == "completed"
    assert "moved from rig-1: bench rig-1 did not answer load" in (run.reason or "") or run.reason is None
    with lab.system.database.transaction() as session:
        moves = [
            (e.from_value, e.to_value, e.reason)
            for e in requests.get_by_uuid(session=session, test_uuid=uuid).events
            if e.kind == "run"
        ]
        got = samples.assemble(session, run_id)
    assert moves and moves[0][:2] == ("rig-1", "rig-2") and "did not answer load" in moves[0][2]
    assert got.gaps == [] and got.records > 100


@ONE_BROKER
def test_a_bench_that_rejects_with_no_other_bench_fails_the_request_saying_why(lab: Lab) -> None:
    lab.emulate("rig-1", "--fault", "reject")
    uuid, run_id = lab.request("rig-1")
    assert lab.ended(uuid) is Status.Failed
    reason = lab.reason(uuid) or ""
    assert "bench rig-1 rejected load:" in reason and "no other online bench covers the run" in reason
    assert lab.run(run_id).state == "failed"


@ONE_BROKER
def test_a_safety_trip_fails_the_run_with_the_limit_and_keeps_its_samples(lab: Lab) -> None:
    lab.emulate("rig-1", "--fault", "trip-safety")
    uuid, run_id = lab.request("rig-1")
    assert lab.ended(uuid) is Status.Failed
    run = lab.run(run_id)
    assert run.end_cause == "safety_limit", run.reason
    assert "V" in (run.reason or "")  # names the limit and the value
    with lab.system.database.transaction() as session:
        got = samples.assemble(session, run_id)
    assert got.records > 0 and got.gaps == []


@ONE_BROKER
def test_a_bench_that_goes_offline_mid_run_interrupts_it_and_the_samples_so_far_are_kept(lab: Lab) -> None:
    lab.emulate("rig-1", "--fault", "offline-after=3")
    uuid, run_id = lab.request("rig-1")
    assert lab.ended(uuid) is Status.Failed
    run = lab.run(run_id)
    assert run.end_cause == "interrupted" and "went offline mid-run" in (run.reason or ""), run.reason
    with lab.system.database.transaction() as session:
        got = samples.assemble(session, run_id)
    assert got.records > 0 and got.gaps == []
    stored = read_parquet(lab.pipeline.storage.get(f"requests/{uuid}/simulation-results/{run_id}/results.parquet"))
    assert len(stored.columns["Voltage / V"]) == got.records  # what was measured is in the results


def test_a_lims_restart_mid_run_loses_and_duplicates_no_sample(lab: Lab) -> None:
    lab.emulate("rig-1", "--speed", "300")  # the run's 2.5 test hours last about 30 s
    uuid, run_id = lab.request("rig-1")
    wait_for(lambda: lab.run(run_id).state == "running", 30, "the run to start")
    lab.services.stop()  # the LIMS's MQTT side goes away mid-run (its sessions stay on the broker)
    lab.services = RunningServices(
        lab.system, [s for s in lab.system.services if s.name in ("mqtt-messaging", "bench-gateway")]
    )
    lab.services.start()
    assert lab.ended(uuid, timeout_s=90) is Status.Completed, lab.reason(uuid)
    with lab.system.database.transaction() as session:
        got = samples.assemble(session, run_id)
    assert got.gaps == [] and got.duplicates == 0 and got.records > 1000


@ONE_BROKER
def test_a_bench_speaking_for_another_benchs_run_is_refused_and_reported(lab: Lab) -> None:
    lab.emulate("rig-1")
    uuid, run_id = lab.request("rig-1")
    wait_for(lambda: lab.run(run_id).state in ("running", "completed"), 30, "the run to start on rig-1")
    errors = lab.broker.lab_peer()
    assert errors.subscribe("fastest/v1/errors") == [1]
    intruder = lab.broker.peer("rig-2", BENCHES["rig-2"])
    assert intruder.connect() == 0
    forged = {
        "message_id": "forged-1", "run_id": run_id, "test_UUID": uuid, "seq": 0, "record_index": 9_999_999,
        "timestamps": [0.0], "signals": {"Voltage / V": {"unit": "V", "values": [-25.0]}},
    }  # fmt: skip
    intruder.publish(f"fastest/v1/benches/rig-2/runs/{run_id}/metrics", forged)
    topic, error = errors.next_message(timeout=15)
    assert topic == "fastest/v1/errors" and error["client"] == "rig-2"
    assert f"run {run_id!r} is booked on bench 'rig-1', not on 'rig-2'" in error["reason"]
    assert lab.ended(uuid) is Status.Completed, lab.reason(uuid)
    with lab.system.database.transaction() as session:
        got = samples.assemble(session, run_id)
        benches = set(
            session.scalars(select(samples.RunMetricBatch.bench).where(samples.RunMetricBatch.run_id == run_id))
        )
    assert benches == {"rig-1"} and float(got.columns["Voltage / V"].min()) > 0  # the forged -25 V never stored
    intruder.close()

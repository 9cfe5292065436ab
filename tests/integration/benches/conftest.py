"""Fixtures for the virtual bench tests: Mosquitto once per session, a launched pipeline engine
with the virtual bench worker attached (publishing through its own paho connection, as in
``fastlims worker``), and requests wired straight to their run orders."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from fastlims.benches.worker import BenchWorker, PahoPublisher
from fastlims.bootstrap import System
from fastlims.messaging.models import MqttRole
from fastlims.pipeline import durable
from fastlims.pipeline.context import VirtualRun
from fastlims.pipeline.engine import ClientDispatcher
from fastlims.pipeline.steps import run_order
from fastlims.procedures.estimate import expected_duration_s
from fastlims.procedures.resolve import resolve
from fastlims.procedures.runfile import RunProcedure
from fastlims.procedures.text import load
from fastlims.requests import service as requests
from fastlims.requests.states import Status
from fastlims.runs import queues
from fastlims.runs.lifecycle import RunState
from fastlims.runs.models import Channel, ScheduledRun
from fastlims.timeutil import utcnow
from tests.integration.pipeline.conftest import Pipeline, start_pipeline, stop_pipeline
from tests.integration.pipeline.helpers import INTERCONNECTION, new_request
from tests.mqtt_helpers import MosquittoServer, Peer, mosquitto_binary, start_mosquitto
from tests.services import missing
from tests.unit.procedures.uuts import REFERENCE_CELL

PASSWORD = secrets.token_urlsafe(12)
CELL = REFERENCE_CELL  # the reference battery cell's own ratings (5 Ah, OCV 2.5-4.2 V)


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the workflow's database code is the pipeline's, tested on both there


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[MosquittoServer]:
    if mosquitto_binary() is None:
        missing("Mosquitto (Debian package mosquitto)")
    server = start_mosquitto({"lims": (PASSWORD, MqttRole.lims), "watcher": (PASSWORD, MqttRole.lims)}, "fastest/v1")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fmu_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from fastlims.peers.fmus import build_fmu

    folder = tmp_path_factory.mktemp("virtual-fmus")
    built = {"cycler": build_fmu("cycler", "2.0", folder, name="cycler").read_bytes()}
    for variant in ("battery_cell", "battery_cell_crash", "battery_cell_error", "battery_cell_nan"):
        out = folder / variant
        out.mkdir()
        built[variant] = build_fmu(variant, "2.0", out, name="battery_cell").read_bytes()
    return built


@dataclass
class Bench:
    pipeline: Pipeline
    fmus: dict[str, bytes]
    worker: BenchWorker
    watcher: Peer
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def system(self) -> System:
        return self.pipeline.system

    def request(
        self,
        cell: str = "battery_cell",
        runs: int = 1,
        parameters: dict[str, Any] | None = None,
        delay_s: float = 0.0,
        procedure: str | None = "Discharge at 1C for 10 minutes",
        values: dict[str, float] | None = None,
        uuid: str | None = None,
        **order_extra: Any,
    ) -> tuple[str, list[str]]:
        """A request at ScheduleReady with ``runs`` runs on virtual-1.. queued, each running
        ``procedure`` (text form) on a 5 Ah cell, its variables at ``values`` (recorded as the
        runs' DoE values, as the pipeline's booking does); returns its test_UUID and run ids."""
        uuid = uuid or new_request(self.system)
        folder = f"requests/{uuid}"
        storage = self.pipeline.storage
        keys = {
            "battery_cell": f"{folder}/fmus/battery_cell.fmu",
            "cycler": f"{folder}/fmus/cycler.fmu",
            "ic": f"{folder}/inter_connection.json",
        }
        storage.put(keys["battery_cell"], self.fmus[cell])
        storage.put(keys["cycler"], self.fmus["cycler"])
        storage.put(keys["ic"], json.dumps(INTERCONNECTION).encode())
        procedure_key = None
        if procedure is not None:  # None: a run booked without a procedure (the bench must refuse it)
            parsed = load(procedure)
            resolved = resolve(parsed.procedure, CELL, values, lines=parsed.lines)
            procedure_key = f"{folder}/procedures/run.json"
            run_file = RunProcedure(resolved, CELL, expected_duration_s(resolved, CELL))
            storage.put(procedure_key, run_file.to_json().encode())
        workflow = durable.workflow_id(uuid)
        meta = {
            "simulation_folder": folder,
            "fmus": [keys["battery_cell"], keys["cycler"]],
            "interconnection": keys["ic"],
        }
        now = utcnow()
        start = now + timedelta(seconds=delay_s)
        with self.system.database.transaction() as session:
            request = requests.get_by_uuid(session=session, test_uuid=uuid)
            request.simulation_folder = folder
            for target in (Status.ModelReady, Status.DoeComplete, Status.ScheduleReady):
                requests.change_status(session=session, request=request, target=target, actor="test")
            rows = []
            for index in range(1, runs + 1):
                run_id = durable.global_run_id(uuid, f"run-{index:03d}")
                rows.append(
                    ScheduledRun(
                        run_id=run_id,
                        request_id=request.id,
                        test_uuid=uuid,
                        workflow_id=workflow,
                        design_run_id=f"run-{index:03d}",
                        bench=f"virtual-{index}",
                        bench_kind="virtual",
                        start_at=start,
                        end_at=start + timedelta(hours=1),
                        test_start_at=start,
                        parameters_json=json.dumps(parameters or {}),
                        values_json=json.dumps(values) if values is not None else None,
                        procedure_key=procedure_key,
                        idempotency_key=durable.idempotency_key(workflow, run_id),
                        channel=Channel.queue.value,
                        state=RunState.dispatched.value,
                        dispatched_at=now,
                    )  # fmt: skip
                )
            session.add_all(rows)
            session.flush()
            queued = [
                VirtualRun(
                    queue=queues.bench_queue(r.bench),
                    key=r.idempotency_key,
                    order={**run_order(r, meta), **order_extra},
                    delay_s=0.0,
                )
                for r in rows
            ]
        for run in queued:
            self.orders[run.order["run_id"]] = run.order
        ClientDispatcher(self.pipeline.engine).enqueue_virtual(queued)
        return uuid, [run.order["run_id"] for run in queued]


@pytest.fixture
def make_bench(system: System, mosquitto: MosquittoServer, fmu_files: dict[str, bytes]) -> Iterator[Any]:
    made: list[Bench] = []

    def factory(**overrides: Any) -> Bench:
        settings = {
            "mqtt_url": f"mqtt://127.0.0.1:{mosquitto.port}",
            "mqtt_username": "lims",
            "mqtt_password": SecretStr(PASSWORD),
            "virtual_bench_step_s": 1.0,
            "virtual_bench_batch_sim_s": 10.0,
            "virtual_bench_progress_s": 0.2,
            "virtual_bench_concurrency": 2,
            **overrides,
        }
        pipeline = start_pipeline(system, doe_runs=None, **settings)
        watcher = Peer(mosquitto.port, "watcher", PASSWORD)
        assert watcher.connect() == 0
        assert watcher.subscribe("fastest/v1/benches/+/runs/#") == [1]
        publisher = PahoPublisher(pipeline.system.settings, f"bench-test-{secrets.token_hex(3)}")
        worker = pipeline.system.bench_worker
        assert worker is not None
        worker.attach(publisher, owned=publisher)
        bench = Bench(pipeline, fmu_files, worker, watcher)
        made.append(bench)
        return bench

    yield factory
    for bench in made:
        bench.worker.detach()
        bench.watcher.close()
        stop_pipeline(bench.pipeline)


def runs_of(system: System, test_uuid: str) -> dict[str, str]:
    with system.database.transaction() as session:
        return {
            r.run_id: r.state for r in session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == test_uuid))
        }

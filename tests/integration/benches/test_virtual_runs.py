"""The virtual bench worker end to end on one process: runs taken from the bench queues,
simulated in child processes, metrics live on MQTT, results in Parquet, the request's
lifecycle to Completed or Failed; faults fail their run while the worker keeps serving."""

from __future__ import annotations

import json
import queue
from typing import Any

from fastlims.requests import service as requests
from fastlims.requests.states import Status
from fastlims.runs import results
from fastlims.runs.lifecycle import RunState
from tests.integration.benches.conftest import Bench, runs_of
from tests.integration.pipeline.helpers import new_request, request_facts, wait_for, wait_status


def drain(bench: Bench) -> dict[str, list[Any]]:
    """Every message the independent subscriber got so far, by topic, in arrival order."""
    got: dict[str, list[Any]] = {}
    while True:
        try:
            topic, payload = bench.watcher.received.get_nowait()
        except queue.Empty:
            return got
        got.setdefault(topic, []).append(json.loads(payload))


def details(bench: Bench, test_uuid: str) -> Any:
    with bench.system.database.transaction() as session:
        r = requests.get_by_uuid(session=session, test_uuid=test_uuid)
        return {
            "status": Status(r.status),
            "reason": r.failure_reason,
            "progress": r.simulation_progress,
            "metrics": json.loads(r.test_metrics_json or "{}"),
            "path": r.simulation_results_path,
            "started": r.simulation_started_at,
            "sim_complete": r.simulation_complete_at,
            "completed": r.completed_at,
        }


def test_runs_complete_with_every_batch_live_and_every_sample_stored(make_bench: Any) -> None:
    bench: Bench = make_bench()
    uuid, run_ids = bench.request(runs=2, parameters={"SOC0": 0.8})
    wait_status(bench.system, uuid, Status.Completed, timeout_s=60)
    facts = details(bench, uuid)
    assert facts["started"] and facts["sim_complete"] and facts["completed"] and facts["progress"] == 100
    moves = [(a, b) for a, b, _ in request_facts(bench.system, uuid)["transitions"]]
    assert moves[-3:] == [
        ("ScheduleReady", "Running"),
        ("Running", "SimulationComplete"),
        ("SimulationComplete", "Completed"),
    ]
    assert facts["path"] == f"requests/{uuid}/simulation-results/"
    assert set(runs_of(bench.system, uuid).values()) == {RunState.completed.value}
    seen: dict[str, list[Any]] = {}
    with bench.system.database.transaction() as session:  # each run speaks under its own bench's name
        from sqlalchemy import select

        from fastlims.runs.models import ScheduledRun

        benches = {
            r.run_id: r.bench for r in session.scalars(select(ScheduledRun).where(ScheduledRun.test_uuid == uuid))
        }
    for run_id in run_ids:
        prefix = f"fastest/v1/benches/{benches[run_id]}/runs/{run_id}"
        key = f"requests/{uuid}/simulation-results/{run_id}/results.parquet"
        stored = results.read_parquet(bench.pipeline.storage.get(key))
        assert stored.run_id == run_id and stored.parameters == {"battery_cell.SOC0": 0.8}
        summary = facts["metrics"][run_id]
        assert summary["status"] == "completed" and summary["results"] == key and summary["samples"] == 601

        def all_batches(run_id: str = run_id) -> list[Any] | None:
            events = seen.get(f"{prefix}/events", [])
            if events and events[-1]["event"] == "completed":
                return seen[f"{prefix}/metrics"]
            return None

        def collect(run_id: str = run_id) -> list[Any] | None:
            for topic, messages in drain(bench).items():
                seen.setdefault(topic, []).extend(messages)
            return all_batches(run_id)

        batches = wait_for(collect, 15, f"the completed event of {run_id}")
        assert [b["seq"] for b in batches] == list(range(len(batches))), "in sequence, no gap"
        assert len(batches) > 10
        times = [t for b in batches for t in b["timestamps"]]
        assert times == [float(t) for t in range(601)], "every sample live, once"
        assert stored.columns["time"].tolist() == times, "the Parquet file holds every sample"
        events = [e["event"] for e in seen[f"{prefix}/events"]]
        assert events[0] == "started" and events[-1] == "completed" and "progress" in events


def test_faults_fail_their_request_with_the_reason_and_the_worker_keeps_serving(make_bench: Any) -> None:
    bench: Bench = make_bench(virtual_bench_timeout_s=300.0)
    faults = {
        "battery_cell_crash": "SIGSEGV",
        "battery_cell_error": "error",
        "battery_cell_nan": "nan",
    }
    made = {cell: bench.request(cell, parameters={"fault_time_s": 30.0})[0] for cell in faults}
    # A run past its wall-time limit: a long procedure, a short limit.
    slow, _ = bench.request(procedure="Rest for 50000000 s", timeout_s=3.0)
    for cell, uuid in made.items():
        wait_status(bench.system, uuid, Status.Failed, timeout_s=60)
        reason = details(bench, uuid)["reason"]
        assert faults[cell].lower() in reason.lower(), reason
    wait_status(bench.system, slow, Status.Failed, timeout_s=60)
    assert "wall-time limit of 3 s" in details(bench, slow)["reason"]
    for uuid in [*made.values(), slow]:
        assert set(runs_of(bench.system, uuid).values()) == {RunState.failed.value}
        run_id = next(iter(runs_of(bench.system, uuid)))
        assert bench.pipeline.storage.head(f"requests/{uuid}/simulation-results/{run_id}/results.parquet")
    after, _ = bench.request()
    wait_status(bench.system, after, Status.Completed, timeout_s=60)


def test_a_run_without_a_procedure_is_refused_and_fails_its_request_saying_so(make_bench: Any) -> None:
    bench: Bench = make_bench()
    uuid, (run_id,) = bench.request(procedure=None)
    wait_status(bench.system, uuid, Status.Failed, timeout_s=60)
    assert "has no test procedure" in details(bench, uuid)["reason"]
    assert runs_of(bench.system, uuid) == {run_id: RunState.failed.value}
    # nothing ran: no results were written
    assert bench.pipeline.storage.head(f"requests/{uuid}/simulation-results/{run_id}/results.parquet") is None


def test_a_failed_request_stops_its_pending_runs(make_bench: Any) -> None:
    bench: Bench = make_bench()
    uuid, run_ids = bench.request(delay_s=2.0)
    with bench.system.database.transaction() as session:
        request = requests.get_by_uuid(session=session, test_uuid=uuid)
        requests.change_status(session=session, request=request, target=Status.Failed, actor="test", reason="stop")
    wait_for(lambda: set(runs_of(bench.system, uuid).values()) == {RunState.cancelled.value}, 30, "the run cancelled")
    assert details(bench, uuid)["status"] is Status.Failed


def test_a_run_s_results_download_as_csv(make_bench: Any) -> None:
    from fastapi.testclient import TestClient

    from fastlims.web.app import create_app
    from tests.conftest import add_user

    bench: Bench = make_bench()
    uuid, (run_id,) = bench.request()
    wait_status(bench.system, uuid, Status.Completed, timeout_s=60)
    manager = add_user(bench.system, "mia", "lab_manager")
    with bench.system.database.transaction() as session:
        number = requests.get_by_uuid(session=session, test_uuid=uuid).request_number
    http = TestClient(create_app(bench.system))  # no lifespan: the services are the fixture's
    response = http.get(f"/api/v1/test-requests/{number}/runs/{run_id}/results.csv", headers=manager.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0].startswith('"time [s]"') and len(lines) == 1 + 601
    missing = http.get(f"/api/v1/test-requests/{number}/runs/nope/results.csv", headers=manager.headers)
    assert missing.status_code == 404


def test_the_lims_connection_publishes_from_worker_threads_in_order(mosquitto: Any) -> None:
    """``fastlims up``: DBOS step threads publish through the LIMS's client in its asyncio loop."""
    import asyncio
    import threading

    from fastlims.benches.worker import LoopPublisher
    from fastlims.messaging.client import BrokerAddress, MqttClient
    from tests.integration.benches.conftest import PASSWORD
    from tests.mqtt_helpers import Peer

    watcher = Peer(mosquitto.port, "watcher", PASSWORD)
    assert watcher.connect() == 0 and watcher.subscribe("fastest/v1/benches/+/runs/#") == [1]
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    client = MqttClient(
        BrokerAddress("127.0.0.1", mosquitto.port), client_id="lims/test", username="lims", password=PASSWORD
    )
    try:
        asyncio.run_coroutine_threadsafe(client.start(), loop).result(5)
        assert asyncio.run_coroutine_threadsafe(client.wait_connected(10), loop).result(15)
        publisher = LoopPublisher(client, loop)
        sender = threading.Thread(
            target=lambda: [
                publisher.publish("fastest/v1/benches/b1/runs/r1/metrics", str(i).encode(), 1) for i in range(200)
            ]
        )
        sender.start()
        sender.join(30)
        publisher.flush(10)
        got = [int(watcher.received.get(timeout=10)[1]) for _ in range(200)]
        assert got == list(range(200))
    finally:
        asyncio.run_coroutine_threadsafe(client.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        watcher.close()


def test_the_partner_serving_a_request_gets_its_runs_live_messages_on_its_own_level(make_bench: Any) -> None:
    """Partners may read only ``partners/<name>/#``: the LIMS copies each run's events and metrics
    there for the request's Digital Twin partner, the same messages as under the bench."""
    from sqlalchemy import update

    from fastlims.requests.models import TestRequest

    bench: Bench = make_bench()
    assert bench.watcher.subscribe("fastest/v1/partners/+/runs/#") == [1]
    uuid = new_request(bench.system)
    with bench.system.database.transaction() as session:
        session.execute(update(TestRequest).where(TestRequest.test_uuid == uuid).values(dt_partner="acme-dt"))
    uuid, (run_id,) = bench.request(uuid=uuid)
    wait_status(bench.system, uuid, Status.Completed, timeout_s=60)
    seen: dict[str, list[Any]] = {}

    def relayed() -> list[Any] | None:
        for topic, messages in drain(bench).items():
            seen.setdefault(topic, []).extend(messages)
        events = seen.get(f"fastest/v1/partners/acme-dt/runs/{run_id}/events", [])
        return events if events and events[-1]["event"] == "completed" else None

    wait_for(relayed, 15, "the completed event on the partner's level")
    own = next(topic for topic in seen if topic.startswith("fastest/v1/benches/") and topic.endswith("/metrics"))
    copies = seen[f"fastest/v1/partners/acme-dt/runs/{run_id}/metrics"]
    assert copies == seen[own] and len(copies) > 10  # the same batches, seq without gaps
    assert not [t for t in seen if t.startswith("fastest/v1/partners/") and "acme-dt" not in t]

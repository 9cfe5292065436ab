"""Hybrid runs: a physical capacity run on ``fastlims bench emulate`` (its own process, a real
broker) and, once the bench started it, its twin: the same procedure and factors on the request's
Digital Twin models (the reference FMUs) on a virtual bench. Both complete, the request completes,
and the residual (measured − predicted) is stored, published for the DT and its partner, served by
the runs API and, past the alert threshold, raised on the request."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fastlims.bootstrap import System
from fastlims.requests import service as requests
from fastlims.requests.states import Status
from fastlims.runs.results import read_parquet
from fastlims.users import service as users
from tests.bench_helpers import BenchBroker
from tests.integration.benches.test_physical_runs import Lab, backend, broker, running_lab  # noqa: F401
from tests.integration.test_auth import login

PARTNER = "dt-hybrid"
THRESHOLD_V = 1e-6  # two different cell models never agree this closely: the alert is raised


@pytest.fixture
def lab(system: System, broker: BenchBroker) -> Iterator[Lab]:  # noqa: F811 - the physical runs' lab, with twins
    with running_lab(
        system, broker, bench_command_timeout_s=3.0, bench_command_retries=1, twin_residual_alert_v=THRESHOLD_V,
        virtual_bench_step_s=1.0, virtual_bench_progress_s=0.5,
    ) as running:  # fmt: skip
        yield running


def hybrid_request(lab: Lab, fmu_files: dict[str, bytes]) -> tuple[str, str]:
    """A ScheduleReady physical request whose Digital Twin delivered its models (the reference
    FMUs and inter_connection.json in its simulation folder), served by partner ``PARTNER``, with
    one capacity run on rig-1 queued as dispatch queues it (the order names the models)."""
    models = {"battery_cell": fmu_files["battery_cell"], "cycler": fmu_files["cycler"]}
    return lab.request("rig-1", models=models, partner=PARTNER)


def recompute(lab: Lab, uuid: str, run_id: str, twin_id: str) -> tuple[float, float]:
    """The overall RMS and max voltage error straight from the two stored results files (numpy
    only, not the comparison module)."""
    storage = lab.pipeline.storage
    base = f"requests/{uuid}/simulation-results"
    measured = read_parquet(storage.get(f"{base}/{run_id}/results.parquet")).columns
    predicted = read_parquet(storage.get(f"{base}/{twin_id}/results.parquet")).columns
    t_m, v_m = measured["Test Time / s"], measured["Voltage / V"]
    t_p, v_p = predicted["Test Time / s"], predicted["Voltage / V"]
    keep = np.isfinite(t_p) & np.isfinite(v_p)
    t_p, v_p = t_p[keep], v_p[keep]
    inside = np.isfinite(t_m) & np.isfinite(v_m) & (t_m >= t_p[0]) & (t_m <= t_p[-1])
    error = v_m[inside] - np.interp(t_m[inside], t_p, v_p)
    return float(np.sqrt(np.mean(error**2))), float(np.max(np.abs(error)))


def test_a_physical_run_and_its_twin_complete_and_their_residual_is_published_and_alerted(
    lab: Lab, fmu_files: dict[str, bytes]
) -> None:
    lab.emulate("rig-1")
    watcher = lab.broker.lab_peer()
    assert watcher.subscribe("fastest/v1/+/+/runs/+/comparison") == [1]
    uuid, run_id = hybrid_request(lab, fmu_files)
    twin_id = f"{run_id}.twin"
    assert lab.ended(uuid, timeout_s=180) is Status.Completed, lab.reason(uuid)
    physical, twin = lab.run(run_id), lab.run(twin_id)
    assert (physical.state, physical.bench_kind, physical.twin_of) == ("completed", "physical", None)
    assert (twin.state, twin.bench_kind, twin.twin_of) == ("completed", "virtual", run_id), twin.reason
    assert twin.bench.startswith("virtual-") and twin.procedure_key == physical.procedure_key
    assert twin.values_json == physical.values_json

    # The comparison, stored once on the physical run's row, agrees with the two results files.
    stored = json.loads(physical.comparison_json or "{}")
    rms, largest = recompute(lab, uuid, run_id, twin_id)
    assert math.isfinite(rms) and rms > THRESHOLD_V
    assert stored["rms_voltage_error_V"] == pytest.approx(rms, rel=1e-9)
    assert stored["max_voltage_error_V"] == pytest.approx(largest, rel=1e-9)
    assert stored["twin_run_id"] == twin_id and stored["alert"] is True and stored["threshold_V"] == THRESHOLD_V
    assert stored["steps"] and sum(step["samples"] for step in stored["steps"]) == stored["samples"]
    beside = json.loads(lab.pipeline.storage.get(f"requests/{uuid}/simulation-results/{run_id}/comparison.json"))
    assert beside == stored

    # Published for the DT under the physical bench, and the partner's copy on its own level.
    def both(seen: list[tuple[str, Any]]) -> bool:
        return {t for t, _ in seen} >= {
            f"fastest/v1/benches/rig-1/runs/{run_id}/comparison",
            f"fastest/v1/partners/{PARTNER}/runs/{run_id}/comparison",
        }

    seen = watcher.messages_until(both, timeout=20)
    for _topic, message in seen:
        assert message["run_id"] == run_id and message["rms_voltage_error_V"] == stored["rms_voltage_error_V"]

    # The runs API: the physical run's comparison (with each step's), the twin's twin_of.
    with lab.system.database.transaction() as session:
        number = requests.get_by_uuid(session=session, test_uuid=uuid).request_number
        token = users.create_token(session=session, username="rita")
    headers = {"Authorization": f"Bearer {token}"}
    from fastlims.web.app import create_app

    with TestClient(create_app(lab.system)) as client:
        detail = client.get(f"/api/v1/test-requests/{number}/runs/{run_id}", headers=headers)
        assert detail.status_code == 200, detail.text
        comparison = detail.json()["comparison"]
        assert comparison["twin_run_id"] == twin_id and comparison["alert"] is True
        assert comparison["rms_voltage_error_V"] == pytest.approx(rms, rel=1e-9)
        assert comparison["max_voltage_error_V"] == pytest.approx(largest, rel=1e-9)
        assert [s["step_count"] for s in comparison["steps"]] == [s["step_count"] for s in stored["steps"]]
        of_twin = client.get(f"/api/v1/test-requests/{number}/runs/{twin_id}", headers=headers).json()
        assert of_twin["twin_of"] == run_id and of_twin["comparison"] is None
        login(client, "rita")
        page = client.get(f"/requests/{number}")
        assert page.status_code == 200
        assert 'data-testid="twin-alert"' in page.text and "no longer matches the real cell" in page.text

    # The alert in the audit trail, with the numbers.
    with lab.system.database.transaction() as session:
        events = requests.get_by_uuid(session=session, test_uuid=uuid).events
        alerts = [e for e in events if e.kind == "run" and (e.field or "").endswith("twin residual")]
    assert len(alerts) == 1 and f"{stored['rms_voltage_error_V']:.4f} V" in (alerts[0].reason or "")
    assert "FASTLIMS_TWIN_RESIDUAL_ALERT_V" in (alerts[0].reason or "")

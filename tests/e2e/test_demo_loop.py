"""The README's first command, `fastlims up --demo`, runs the seed's loop on its own: demo requests
go to the reference Digital Twin over the embedded MQTT broker, it acks and uploads the FMUs over
SFTP, and the intake takes them to ModelReady and beyond.

The demo's requests test batteries, and this test reads the physics back through the REST API
(the results CSV download, and the runs API where the build has it): currents flowing both ways,
a CV step's current tapering, the capacity and the DCIR of the models the Digital Twin chose for
each UUT, the DoE's runs with different factors, and a request whose own procedure trips the
UUT's maximum-voltage safety limit and fails saying so.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fmpy
import httpx
import numpy as np
import pytest

from fastlims.intake import layout
from tests.e2e.demo_results import (
    AMBIENT,
    CURRENT,
    VOLTAGE,
    discharged_ah,
    executions,
    leaves,
    pulse_resistances,
    read_csv,
)
from tests.e2e.test_browser import wait_until_healthy
from tests.services import free_port

PAST_MODEL_READY = {"ModelReady", "DoeComplete", "ScheduleReady", "Running", "SimulationComplete", "Completed"}
TERMINAL = {"Completed", "Failed", "Cancelled"}
# The demo's requests (fastlims.demo.DEMO_REQUESTS) by (UUT, test name).
CAPACITY_CELL = ("Gen3b - Cell", "PERF-CAPACITY-RT")
DCIR_CELL = ("Gen4 - Cell", "PERF-POWER-IR")
CAPACITY_MODULE = ("Gen3b - Module", "PERF-CAPACITY-RT")
SAFETY_TRIP = ("Gen3b - Cell", "PERF-ENERGY-EFF")
# From healthy to every request finished: about 60 s on 2 shared cores (each run simulates in about
# a second; the rest is the loop: hand-shake, model build and upload, intake, DoE, booking, a child
# process per run, results).
DEADLINE_S = 120


def test_demo_requests_run_through_mqtt_sftp_pipeline_and_virtual_benches(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FASTLIMS_DATA_DIR": str(tmp_path / "data"),
        "FASTLIMS_MQTT_PORT": str(free_port()),
        "FASTLIMS_SFTP_PORT": str(free_port()),
        "FASTLIMS_LOG_LEVEL": "WARNING",
        # One virtual bench per demo run, so every run starts at once: with the default four, the
        # last runs wait for the first bookings, made at the assumed speed of a new FMU set.
        "FASTLIMS_PIPELINE_VIRTUAL_BENCHES": "8",
    }
    env.pop("FASTLIMS_DATABASE_URL", None)
    env.pop("FASTLIMS_MQTT_URL", None)
    port = free_port()
    fastlims = [sys.executable, "-m", "fastlims.cli"]
    process = subprocess.Popen(
        [*fastlims, "up", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        token = subprocess.run(
            [*fastlims, "tokens", "create", "demo-manager"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        deadline = time.monotonic() + DEADLINE_S
        items: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            items = {item["request_number"]: item for item in api.get("/api/v1/test-requests").json()["items"]}
            failed = {n: i["failure_reason"] for n, i in items.items() if i["status"] == "Failed"}
            # Only the deliberate safety trip may fail, and only once it ran.
            assert all((items[n]["uut"], items[n]["test_name"]) == SAFETY_TRIP for n in failed), failed
            if items and all(i["status"] in TERMINAL for i in items.values()):
                break
            time.sleep(0.5)  # polling the API with a deadline, not a fixed wait
        statuses = {number: item["status"] for number, item in items.items()}
        by_test = {(item["uut"], item["test_name"]): item for item in items.values()}
        assert set(by_test) == {CAPACITY_CELL, DCIR_CELL, CAPACITY_MODULE, SAFETY_TRIP}, statuses
        assert all(by_test[key]["status"] == "Completed" for key in by_test if key != SAFETY_TRIP), statuses
        assert by_test[SAFETY_TRIP]["status"] == "Failed", statuses
        details = {key: api.get(f"/api/v1/test-requests/{i['request_number']}").json() for key, i in by_test.items()}
        for detail in details.values():  # every request got past ModelReady: its models came and ran
            assert detail["simulation_folder"].startswith("fastest_simulation_")
            assert detail["timestamps"]["fmu_ready_at"] is not None
            assert detail["timestamps"]["simulation_started_at"] is not None
        completed = [number for number, status in statuses.items() if status == "Completed"]
        finished = api.get(f"/api/v1/test-requests/{completed[0]}").json()
        assert finished["simulation_progress"] == 100
        assert finished["timestamps"]["completed_at"] is not None
        # The detail page draws the schedule and offers each run's results for download.
        with httpx.Client(base_url=url, timeout=30) as browser:
            token_field = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
            assert token_field
            login = {"username": "demo-manager", "password": "fastlims-demo", "csrf_token": token_field.group(1)}
            assert browser.post("/login", data=login).status_code == 303
            pages = {key: browser.get(f"/requests/{item['request_number']}").text for key, item in by_test.items()}
            page = pages[CAPACITY_CELL]
            assert 'data-testid="gantt"' in page and "data:image/svg+xml;base64," in page
            assert 'hx-trigger="every 3s"' not in page  # a finished request stops polling
            link = re.search(r'href="(/requests/[^"]+/results\.csv)"', page)
            assert link, "no results link on the page"
            csv_text = browser.get(link.group(1)).text
            header, first_row = csv_text.splitlines()[:2]
            assert header.startswith('"time [s]",') and '"Voltage / V [V]"' in header  # the cell's V, by its role
            assert float(first_row.split(",")[0]) == 0.0
        runs = {key: _runs(api, details[key], pages[key]) for key in by_test}
        fmus = {key: _chosen_parameters(env, details[key]) for key in by_test}
        ratings = {uut["code"]: uut for uut in api.get("/api/v1/uuts").json()}

        _capacity_test_on_a_cell(runs[CAPACITY_CELL], details[CAPACITY_CELL], fmus[CAPACITY_CELL], ratings)
        _dcir_test_on_a_gen4_cell(runs[DCIR_CELL], details[DCIR_CELL], fmus[DCIR_CELL], ratings)
        _capacity_test_on_a_module(runs[CAPACITY_MODULE], details[CAPACITY_MODULE], fmus[CAPACITY_MODULE], ratings)
        _safety_trip(runs[SAFETY_TRIP], details[SAFETY_TRIP])
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


# --- what the runs show -----------------------------------------------------------------------------


def _capacity_test_on_a_cell(
    runs: list[dict[str, Any]], detail: dict[str, Any], fmu: dict[str, float], ratings: dict[str, Any]
) -> None:
    """IEC 62660-1 capacity on the Gen3b cell, the DoE at C/3 and 1C: the DT chose a 5 Ah model
    (the rated capacity); both runs charge and discharge, the CV current tapers from the CC current
    to C/20 at 4.2 V, and the capacity is the model's within 2 %, a little less at 1C."""
    capacity = fmu["capacity_Ah"]
    assert capacity == ratings["Gen3b - Cell"]["nominal_capacity_Ah"] == 5.0
    assert fmu["series_cells"] == 1.0 and fmu["R0_ohm"] == pytest.approx(0.015)
    steps = leaves(detail["procedure"]["steps"])
    cv = next(i for i, s in enumerate(steps) if s["type"] == "cv")
    measured = [_capacity_of(run, steps) for run in runs]
    for run, found in zip(runs, measured, strict=True):
        columns = run["columns"]
        assert columns[CURRENT].max() > 0 > columns[CURRENT].min()  # charged and discharged
        hold = executions(columns, cv)[0]
        current, voltage = columns[CURRENT][hold.start : hold.stop], columns[VOLTAGE][hold.start : hold.stop]
        assert current[0] == pytest.approx(capacity / 3, rel=0.05)  # where the C/3 CC charge left off
        assert current[-1] <= capacity / 20 + 1e-9 and current[-1] > 0  # down to the C/20 taper
        assert np.all(np.diff(current[1:]) <= 1e-6)  # and only down
        assert np.abs(voltage[1:] - 4.2).max() < 0.005
        assert found == pytest.approx(capacity, rel=0.02)
        _agrees_with_the_runs_api(run, capacity_Ah=found)
    # the DoE's two discharge rates, seen in the currents (and in the runs' factors)
    rates = sorted(-run["columns"][CURRENT].min() / capacity for run in runs)
    assert rates == [pytest.approx(1 / 3), pytest.approx(1.0)]
    _factors_differ(runs, "discharge_rate", [1 / 3, 1.0])
    at = {round(-run["columns"][CURRENT].min() / capacity, 3): found for run, found in zip(runs, measured, strict=True)}
    assert at[1.0] < at[0.333]  # the rate costs capacity (R x I at the cut-off)


def _dcir_test_on_a_gen4_cell(
    runs: list[dict[str, Any]], detail: dict[str, Any], fmu: dict[str, float], ratings: dict[str, Any]
) -> None:
    """Pulses on the Gen4 cell (10 Ah, 3.0-4.3 V): the DCIR at each pulse's edge is the R0 the DT
    chose (7.5 mOhm, half the 5 Ah cell's) within 2 %; the DoE ran it at 0 and 40 degC."""
    assert fmu["capacity_Ah"] == ratings["Gen4 - Cell"]["nominal_capacity_Ah"] == 10.0
    assert fmu["R0_ohm"] == pytest.approx(0.0075)
    assert (fmu["cell_OCV_min_V"], fmu["cell_OCV_max_V"]) == (3.0, 4.3)
    steps = leaves(detail["procedure"]["steps"])
    pulses = [i for i, s in enumerate(steps) if s["type"] == "pulse"]
    assert len(pulses) == 12  # 1C and 2C (the pulse rating) each way, at 80, 50 and 20 % SOC
    for run in runs:
        columns = run["columns"]
        assert columns[CURRENT].max() > 0 > columns[CURRENT].min()
        resistances = list(pulse_resistances(columns, pulses))
        assert len(resistances) == len(pulses)
        assert float(np.mean(resistances)) == pytest.approx(fmu["R0_ohm"], rel=0.02)
        assert columns[VOLTAGE].min() >= 3.0 - 0.02 and columns[VOLTAGE].max() <= 4.3 + 0.02
        _agrees_with_the_runs_api(run, dcir_ohm=float(np.mean(resistances)))
    ambients = sorted({float(a) for run in runs for a in run["columns"][AMBIENT]} - {25.0})
    assert ambients == [0.0, 40.0]  # the chamber at each run's test temperature
    _factors_differ(runs, "ambient_C", [0.0, 40.0])


def _capacity_test_on_a_module(
    runs: list[dict[str, Any]], detail: dict[str, Any], fmu: dict[str, float], ratings: dict[str, Any]
) -> None:
    """The same capacity test on the 12s4p Gen3b module (30-50.4 V, 20 Ah): a module model (12 cells
    in series, R0 x 12/4), which stays in the module's window and gives its capacity within 2 %."""
    module = ratings["Gen3b - Module"]
    assert fmu["capacity_Ah"] == module["nominal_capacity_Ah"] == 20.0
    assert fmu["series_cells"] == module["series_count"] == 12
    assert fmu["R0_ohm"] == pytest.approx(0.015 * 12 / 4)
    steps = leaves(detail["procedure"]["steps"])
    assert len(runs) >= 2
    for run in runs:
        columns = run["columns"]
        assert columns[CURRENT].max() > 0 > columns[CURRENT].min()
        assert 30.0 - 0.24 <= columns[VOLTAGE].min() < 31.0 and 50.4 - 0.01 < columns[VOLTAGE].max() <= 50.4 + 0.005
        found = _capacity_of(run, steps)
        assert found == pytest.approx(20.0, rel=0.02)
        _agrees_with_the_runs_api(run, capacity_Ah=found)


def _safety_trip(runs: list[dict[str, Any]], detail: dict[str, Any]) -> None:
    """The requester's own procedure charges for an hour with no cut-off: the run trips the UUT's
    maximum voltage (4.2 V + 20 mV) and the request fails saying which limit, the value and when."""
    assert detail["procedure_source"] == "request"
    assert detail["failure_reason"], detail
    limit = r"safety limit max_voltage_V = 4\.22 V: voltage 4\.2\d* V above it at test time \d+ s"
    assert re.search(limit, detail["failure_reason"]), detail["failure_reason"]
    (run,) = runs
    voltage = run["columns"][VOLTAGE]
    assert voltage[-1] > 4.22 and voltage[:-2].max() < 4.22 + 0.01  # it stopped where it crossed
    assert run["columns"][CURRENT][-1] > 0  # while charging
    if "end_cause" in run:
        assert run["state"] == "failed" and run["end_cause"] == "safety_limit"
        assert "max_voltage_V" in run["reason"] and "test time" in run["reason"]


# --- reading the runs -------------------------------------------------------------------------------


def _runs(api: httpx.Client, detail: dict[str, Any], page: str) -> list[dict[str, Any]]:
    """Each run of the request with its samples (``columns``, from the results CSV download) and,
    where the build has the runs API, what it says (factors, state, end cause, outcomes, steps)."""
    number = detail["request_number"]
    listed = api.get(f"/api/v1/test-requests/{number}/runs")
    if listed.status_code == 404 and listed.json().get("detail") == "Not Found":  # no runs API in this build
        ids = sorted(set(re.findall(rf'/requests/{re.escape(number)}/runs/([^/"]+)/results\.csv', page)))
        runs: list[dict[str, Any]] = [{"run_id": run_id} for run_id in ids]
    else:
        assert listed.status_code == 200, listed.text
        runs = [api.get(f"/api/v1/test-requests/{number}/runs/{r['run_id']}").json() for r in listed.json()]
    assert runs, f"{number} has no runs"
    for run in runs:
        csv = api.get(f"/api/v1/test-requests/{number}/runs/{run['run_id']}/results.csv")
        assert csv.status_code == 200, csv.text
        run["columns"] = read_csv(csv.content)
    return runs


def _capacity_of(run: dict[str, Any], steps: list[dict[str, Any]]) -> float:
    """The last discharge of the step tagged ``capacity`` (the IEC 62660-1 measurement)."""
    tagged = next(i for i, s in enumerate(steps) if "capacity" in s.get("tags", []))
    return discharged_ah(run["columns"], executions(run["columns"], tagged)[-1])


def _agrees_with_the_runs_api(run: dict[str, Any], **measured: float) -> None:
    """The runs API's outcomes (where the build has it) say what the samples say."""
    if "outcomes" not in run:
        return
    assert run["state"] == "completed" and run["end_cause"] == "procedure_complete", run.get("reason")
    outcomes = {"capacity_Ah": run["outcomes"]["discharge_capacity_Ah"], "dcir_ohm": run["outcomes"]["dcir_ohm"]}
    for name, value in measured.items():
        assert outcomes[name] == pytest.approx(value, rel=1e-6), name
    kinds = {step["type"] for step in run["steps"]}
    assert {"cc", "rest"} <= kinds


def _factors_differ(runs: list[dict[str, Any]], name: str, levels: list[float]) -> None:
    """The DoE gave the request one run per level of the procedure variable ``name``."""
    if all("factors" in run for run in runs):
        assert sorted(run["factors"][name] for run in runs) == [pytest.approx(level) for level in levels]


def _chosen_parameters(env: dict[str, str], detail: dict[str, Any]) -> dict[str, float]:
    """The start values of the cell model the Digital Twin uploaded for this request (the FMU the
    intake kept), as its model description declares them."""
    cell = Path(env["FASTLIMS_DATA_DIR"]) / "storage" / layout.fmus_folder(detail["simulation_folder"]) / "Cell.fmu"
    description = fmpy.read_model_description(str(cell))
    return {v.name: float(v.start) for v in description.modelVariables if v.causality == "parameter"}

"""The README's demo runs the seed's loop on its own, for both kinds of bench: `fastlims demo
--until-complete` submits the demo requests; the reference Digital Twin acks them over MQTT and
uploads the FMUs over SFTP; the pipeline designs, books and runs them on virtual benches and, for
the Physical requests, on the emulated benches emu-1 and emu-2 (each `fastlims bench emulate` in
its own process, speaking MQTT to the LIMS's bench gateway). The command exits 0 only when every
request ended as expected. It runs once on the embedded broker and once on Mosquitto; meanwhile an
independent `mosquitto_sub` with a monitor identity sees the physical runs' metrics batches.

Afterwards `fastlims up --demo` on the same data reads the physics back through the REST API (the
results CSV download and the runs API): currents flowing both ways, a CV step's current tapering,
the capacity and the DCIR of the models the Digital Twin chose for each UUT, the DoE's runs with
different factors, a request whose own procedure trips the UUT's maximum-voltage safety limit and
fails saying so, and the physical runs' capacity, discharge current and cut-off voltage.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fmpy
import httpx
import numpy as np
import pytest

from fastlims.intake import layout
from fastlims.messaging.models import MqttRole
from tests.e2e.demo_results import (
    AMBIENT,
    CURRENT,
    DISCHARGE_AH,
    VOLTAGE,
    discharged_ah,
    executions,
    leaves,
    pulse_resistances,
    read_csv,
)
from tests.e2e.test_browser import wait_until_healthy
from tests.mqtt_helpers import mosquitto_binary, start_mosquitto
from tests.services import free_port, missing, wait_for

PAST_MODEL_READY = {"ModelReady", "DoeComplete", "ScheduleReady", "Running", "SimulationComplete", "Completed"}
TERMINAL = {"Completed", "Failed", "Cancelled"}
# The demo's virtual requests (fastlims.demo.DEMO_REQUESTS) by (UUT, test name).
CAPACITY_CELL = ("Gen3b - Cell", "PERF-CAPACITY-RT")
DCIR_CELL = ("Gen4 - Cell", "PERF-POWER-IR")
CAPACITY_MODULE = ("Gen3b - Module", "PERF-CAPACITY-RT")
SAFETY_TRIP = ("Gen3b - Cell", "PERF-ENERGY-EFF")
# And its Physical ones, on the emulated benches.
PHYSICAL = {CAPACITY_CELL, CAPACITY_MODULE}
EMULATED = {"emu-1", "emu-2"}
PREFIX = "fastest/v1"
# `fastlims demo --until-complete` takes about 200 s on 2 shared cores: the loop (hand-shake, model
# build and upload, intake, DoE, booking) in about 30 s, the virtual runs in seconds, the physical
# runs at 1000x on two emulated benches booked by the minute (two after two).
DEMO_TIMEOUT_S = 300
FASTLIMS = [sys.executable, "-m", "fastlims.cli"]


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTLIMS_")}
    env.update(
        FASTLIMS_DATA_DIR=str(tmp_path / "data"),
        FASTLIMS_MQTT_PORT=str(free_port()),
        FASTLIMS_SFTP_PORT=str(free_port()),
        FASTLIMS_LOG_LEVEL="WARNING",
    )
    return env


def _secret_file(path: Path, secret: str) -> None:
    """What the demo keeps in the data dir: written first, so the external broker knows it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(secret)


@pytest.fixture(params=["amqtt", "mosquitto"])
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, str], int, tuple[str, str]]]:
    """The demo's environment, its broker's port, and an independent monitor's identity (role
    monitor: it reads the benches' state, events and metrics, as the LIMS may, and publishes
    nothing; `mqtt-users add` refuses to create LIMS identities): on the embedded broker added
    with `fastlims mqtt-users add NAME --role monitor`; on Mosquitto in its password file and
    ACL, beside the LIMS's, the Digital Twin's and the benches'."""
    if shutil.which("mosquitto_sub") is None:
        missing("mosquitto_sub (Debian package mosquitto-clients)")
    env = _environment(tmp_path)
    monitor = ("monitor", secrets.token_urlsafe(16))
    if request.param == "amqtt":
        added = subprocess.run(
            [*FASTLIMS, "mqtt-users", "add", monitor[0], "--role", "monitor", "--password-stdin"],
            env=env, input=monitor[1] + "\n", capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert monitor[1] not in added.stdout + added.stderr
        yield env, int(env["FASTLIMS_MQTT_PORT"]), monitor
        return
    if mosquitto_binary() is None:
        missing("Mosquitto (Debian package mosquitto)")
    data = Path(env["FASTLIMS_DATA_DIR"])
    users: dict[str, tuple[str, MqttRole]] = {
        "lims": (secrets.token_urlsafe(16), MqttRole.lims),
        monitor[0]: (monitor[1], MqttRole.monitor),
        "reference-dt": (secrets.token_urlsafe(16), MqttRole.partner),
    }
    _secret_file(data / "reference-dt" / "reference-dt.mqtt-password", users["reference-dt"][0])
    for bench in sorted(EMULATED):
        users[bench] = (secrets.token_urlsafe(16), MqttRole.bench)
        _secret_file(data / "demo-benches" / f"{bench}.mqtt-password", users[bench][0])
    server = start_mosquitto(users, PREFIX)
    env.update(
        FASTLIMS_MQTT_URL=f"mqtt://127.0.0.1:{server.port}",
        FASTLIMS_MQTT_USERNAME="lims",
        FASTLIMS_MQTT_PASSWORD=users["lims"][0],
    )
    try:
        yield env, server.port, monitor
    finally:
        server.stop()


def _emulators(env: dict[str, str]) -> dict[int, str]:
    """The running `fastlims bench emulate emu-N` processes of this test's broker: pid -> bench."""
    url = env.get("FASTLIMS_MQTT_URL")
    broker = f"FASTLIMS_MQTT_URL={url}" if url else f"FASTLIMS_MQTT_PORT={env['FASTLIMS_MQTT_PORT']}"
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if b"emulate" in argv and broker.encode() in environ:
            name = argv[argv.index(b"emulate") + 1].decode()
            if name in EMULATED and (entry / "stat").read_text().split(") ")[1][0] != "Z":
                found[int(entry.name)] = name
    return found


def _monitor(port: int, identity: tuple[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`mosquitto_sub` on every bench's run metrics, once the broker listens."""
    return subprocess.Popen(
        [
            "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-u", identity[0], "-P", identity[1],
            "-i", f"{identity[0]}/sub", "-q", "1", "-v", "-t", f"{PREFIX}/benches/+/runs/+/metrics",
        ],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_demo_runs_virtual_and_physical_requests_to_their_expected_ends(
    lab: tuple[dict[str, str], int, tuple[str, str]], tmp_path: Path
) -> None:
    env, broker_port, monitor_identity = lab
    output = tmp_path / "demo.out"
    demo = subprocess.Popen(
        [*FASTLIMS, "demo", "--until-complete", "--timeout", str(DEMO_TIMEOUT_S), "--port", str(free_port())],
        env=env, stdout=output.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    monitor_log = tmp_path / "metrics.log"
    monitor = None
    try:
        wait_for(lambda: demo.poll() is not None or _listening(broker_port), 60, "the broker to listen")
        monitor = _monitor(broker_port, monitor_identity, monitor_log)
        wait_for(lambda: demo.poll() is not None or set(_emulators(env).values()) == EMULATED, 60, "the emulators")
        assert demo.poll() is None, output.read_text()
        running = _emulators(env)
        assert set(running.values()) == EMULATED, running
        code = demo.wait(timeout=DEMO_TIMEOUT_S + 60)
    finally:
        if demo.poll() is None:
            demo.kill()
        if monitor is not None:
            monitor.terminate()
            monitor.wait(timeout=10)
    said = output.read_text(errors="replace")
    assert code == 0, said + _emulator_logs(env)
    assert "every demo request ended as expected (6 requests)" in said, said
    table = said[said.index("request ") :]
    physical_rows = [line for line in table.splitlines() if "Physical: emu-" in line]
    assert len(physical_rows) == 2 and all("Completed" in row and " Ah" in row for row in physical_rows), table
    # The children stopped with the LIMS: none is left behind.
    assert not [pid for pid in running if _alive(pid)] and _emulators(env) == {}, running
    # The independent subscriber saw the physical runs' metrics batches, each numbered.
    batches = [line.split(" ", 1) for line in monitor_log.read_text().splitlines() if " " in line]
    emulated = [(topic, json.loads(payload)) for topic, payload in batches if topic.split("/")[3] in EMULATED]
    assert emulated, monitor_log.read_text()[:2000]
    assert all("record_index" in payload and payload["timestamps"] for _, payload in emulated)
    assert {topic.split("/")[3] for topic, _ in emulated} == EMULATED  # both benches ran

    _read_back(env, tmp_path)


def _emulator_logs(env: dict[str, str]) -> str:
    """The emulators' own logs (INFO), for a failure's message."""
    folder = Path(env["FASTLIMS_DATA_DIR"]) / "demo-benches"
    return "".join(f"\n--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}" for log in folder.glob("*.log"))


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_the_emulated_benches_die_with_a_killed_lims(tmp_path: Path) -> None:
    """Even a LIMS killed with SIGKILL (no shutdown path) leaves no emulator behind."""
    env = _environment(tmp_path)
    process = subprocess.Popen(
        [*FASTLIMS, "up", "--demo", "--port", str(free_port())],
        env=env, stdout=(tmp_path / "up.out").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        found = wait_for(lambda: len(set(_emulators(env).values())) == 2 and _emulators(env), 60, "the emulators")
        assert set(found.values()) == EMULATED
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        wait_for(lambda: not _emulators(env), 15, "the emulators to exit after their LIMS")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _read_back(env: dict[str, str], tmp_path: Path) -> None:
    """`fastlims up --demo` on the demo's data (it submits nothing more) and the REST API."""
    port = free_port()
    process = subprocess.Popen(
        [*FASTLIMS, "up", "--demo", "--port", str(port)],
        env=env, stdout=(tmp_path / "up.out").open("wb"), stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process)
        token = subprocess.run(
            [*FASTLIMS, "tokens", "create", "demo-manager"], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        everything = api.get("/api/v1/test-requests").json()["items"]
        assert len(everything) == 6, everything  # the second start submitted nothing
        physical = {(i["uut"], i["test_name"]): i for i in everything if i["bench"] == "Physical"}
        items: dict[str, dict[str, Any]] = {i["request_number"]: i for i in everything if i["bench"] == "Virtual"}
        assert set(physical) == PHYSICAL, physical
        _physical_runs(api, physical)
        _virtual_runs(api, url, env, items)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _physical_runs(api: httpx.Client, physical: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Each physical request Completed on the emulated benches with outcomes a battery engineer
    believes: the capacity near the rating, current negative while discharging, the voltage
    never below the cut-off (the UUT's minimum) by more than the tolerance."""
    ratings = {uut["code"]: uut for uut in api.get("/api/v1/uuts").json()}
    for key, item in physical.items():
        assert item["status"] == "Completed", item
        uut = ratings[key[0]]
        rated, cut_off = uut["nominal_capacity_Ah"], uut["min_voltage_V"]
        listed_runs = api.get(f"/api/v1/test-requests/{item['request_number']}/runs").json()
        runs = [r for r in listed_runs if r["twin_of"] is None]
        twins = {r["twin_of"]: r for r in listed_runs if r["twin_of"] is not None}
        assert len(runs) == 2, listed_runs  # the DoE's C/3 and 1C, measured on the emulated benches
        assert set(twins) == {r["run_id"] for r in runs}, listed_runs  # each with its twin's prediction
        for listed in runs:
            assert twins[listed["run_id"]]["state"] == "completed", twins[listed["run_id"]]
            residual = listed["comparison"]
            assert residual is not None and residual["twin_run_id"] == twins[listed["run_id"]]["run_id"], listed
            # the emulator's cell is not the twin's model: the residual is whatever it is (the alert
            # may rightly fire), but it is a measured number
            assert 0 <= residual["rms_voltage_error_V"] <= residual["max_voltage_error_V"], residual
            assert residual["max_voltage_error_V"] < 10 * uut["max_voltage_V"], residual
            run = api.get(f"/api/v1/test-requests/{item['request_number']}/runs/{listed['run_id']}").json()
            assert run["bench"] in EMULATED and run["state"] == "completed", run
            assert run["end_cause"] == "procedure_complete", run
            capacity = run["outcomes"]["discharge_capacity_Ah"]
            assert 0.9 * rated < capacity <= 1.02 * rated, (key, capacity)
            csv = api.get(f"/api/v1/test-requests/{item['request_number']}/runs/{listed['run_id']}/results.csv")
            assert csv.status_code == 200, csv.text
            columns = read_csv(csv.content)
            # The cumulative column counts the charge up to each sample: interval i took out charge
            # at sample i's current, which is negative while discharging.
            discharging = np.diff(columns[DISCHARGE_AH]) > 0
            assert discharging.any() and (columns[CURRENT][:-1][discharging] < 0).all(), key
            assert columns[VOLTAGE].min() >= cut_off - 0.01 * cut_off - 0.02, (key, columns[VOLTAGE].min())


def _virtual_runs(api: httpx.Client, url: str, env: dict[str, str], items: dict[str, dict[str, Any]]) -> None:
    """The virtual requests, as the demo test has always checked them."""
    failed = {n: i["failure_reason"] for n, i in items.items() if i["status"] == "Failed"}
    # Only the deliberate safety trip may fail.
    assert all((items[n]["uut"], items[n]["test_name"]) == SAFETY_TRIP for n in failed), failed
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

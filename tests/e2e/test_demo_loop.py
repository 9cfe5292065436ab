"""The README's first command, `fastlims up --demo`, runs the seed's loop on its own: demo requests
go to the reference Digital Twin over the embedded MQTT broker, it acks and uploads the FMUs over
SFTP, and the intake takes them to ModelReady and beyond."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.test_browser import wait_until_healthy
from tests.services import free_port

PAST_MODEL_READY = {"ModelReady", "DoeComplete", "ScheduleReady", "Running", "SimulationComplete", "Completed"}


def test_demo_requests_run_through_mqtt_sftp_pipeline_and_virtual_benches(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FASTLIMS_DATA_DIR": str(tmp_path / "data"),
        "FASTLIMS_MQTT_PORT": str(free_port()),
        "FASTLIMS_SFTP_PORT": str(free_port()),
        "FASTLIMS_LOG_LEVEL": "WARNING",
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
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 120
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            page = httpx.get(f"{url}/api/v1/test-requests", headers=headers, timeout=10).json()
            statuses = {item["request_number"]: item["status"] for item in page["items"]}
            reasons = {i["request_number"]: i["failure_reason"] for i in page["items"] if i["failure_reason"]}
            if statuses and all(s in PAST_MODEL_READY for s in statuses.values()):
                break
            assert "Failed" not in statuses.values(), reasons
            time.sleep(0.5)  # polling the API with a deadline, not a fixed wait
        assert statuses and all(s in PAST_MODEL_READY for s in statuses.values()), statuses
        # The first ones go on to run on the virtual benches right away and complete with results.
        while time.monotonic() < deadline and "Completed" not in statuses.values():
            page = httpx.get(f"{url}/api/v1/test-requests", headers=headers, timeout=10).json()
            statuses = {item["request_number"]: item["status"] for item in page["items"]}
            time.sleep(0.5)
        completed = [number for number, status in statuses.items() if status == "Completed"]
        assert completed, statuses
        finished = httpx.get(f"{url}/api/v1/test-requests/{completed[0]}", headers=headers, timeout=10).json()
        assert finished["simulation_progress"] == 100
        assert finished["timestamps"]["completed_at"] is not None
        # The detail page draws the schedule and offers each run's results for download.
        with httpx.Client(base_url=url, timeout=10) as browser:
            token_field = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
            assert token_field
            login = {"username": "demo-manager", "password": "fastlims-demo", "csrf_token": token_field.group(1)}
            assert browser.post("/login", data=login).status_code == 303
            page = browser.get(f"/requests/{completed[0]}").text
            assert 'data-testid="gantt"' in page and "data:image/svg+xml;base64," in page
            assert 'hx-trigger="every 3s"' not in page  # a finished request stops polling
            link = re.search(r'href="(/requests/[^"]+/results\.csv)"', page)
            assert link, "no results link on the page"
            csv_text = browser.get(link.group(1)).text
            header, first_row = csv_text.splitlines()[:2]
            assert header.startswith('"time [s]",') and "Cell.V [V]" in header
            assert float(first_row.split(",")[0]) == 0.0
        detail = httpx.get(f"{url}/api/v1/test-requests/{next(iter(statuses))}", headers=headers, timeout=10).json()
        assert detail["simulation_folder"].startswith("fastest_simulation_")
        assert detail["timestamps"]["fmu_ready_at"] is not None
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()

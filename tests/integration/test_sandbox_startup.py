"""``fastlims up`` where no simulation sandbox can be set up: it refuses to run virtual benches,
naming the setting that allows them unconfined; with that setting it runs, and the pages say the
virtual benches are unsandboxed. (``FASTLIMS_VIRTUAL_BENCH_SANDBOX=none`` stands for a host where
no sandbox works: the refusal does not depend on why.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import free_port

PASSWORD = "a-long-test-password-42"


def environment(data: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "FASTLIMS_DATA_DIR": str(data),
        "FASTLIMS_MQTT_PORT": str(free_port()),
        "FASTLIMS_SFTP_PORT": str(free_port()),
        "FASTLIMS_VIRTUAL_BENCH_SANDBOX": "none",
        **extra,
    }
    env.pop("FASTLIMS_DATABASE_URL", None)
    env.pop("FASTLIMS_VIRTUAL_BENCH_UNSANDBOXED", None)
    return {**env, **extra}


def test_up_refuses_virtual_benches_without_a_sandbox(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fastlims.cli", "up", "--port", str(free_port())],
        env=environment(tmp_path / "data"), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "virtual-bench-worker could not start: virtual benches need a sandbox" in done.stderr
    assert "FASTLIMS_VIRTUAL_BENCH_UNSANDBOXED=true" in done.stderr


@pytest.fixture
def unsandboxed(tmp_path: Path) -> Iterator[str]:
    env = environment(tmp_path / "data", FASTLIMS_VIRTUAL_BENCH_UNSANDBOXED="true")
    subprocess.run(
        [sys.executable, "-m", "fastlims.cli", "users", "add", "eve", "--role", "requester", "--password-stdin"],
        input=PASSWORD + "\n", env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fastlims.cli", "up", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"fastlims up exited with {process.returncode}: {process.stdout.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "fastlims up did not become ready"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling a condition with a deadline
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_with_the_setting_up_runs_and_the_pages_say_unsandboxed(unsandboxed: str) -> None:
    with httpx.Client(base_url=unsandboxed, timeout=10) as client:
        login = client.get("/login")
        assert 'data-testid="sandbox-warning"' not in login.text  # not shown to anonymous visitors
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token is not None
        client.post("/login", data={"username": "eve", "password": PASSWORD, "csrf_token": token.group(1)})
        page = client.get("/")
        assert page.status_code == 200 and "Dashboard" in page.text
        assert 'data-testid="sandbox-warning"' in page.text
        assert "Virtual benches run unsandboxed" in page.text
        assert "FASTLIMS_VIRTUAL_BENCH_SANDBOX=none" in page.text

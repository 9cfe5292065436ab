"""A partner's FMU is native code: a hostile one, run as the virtual bench runs it, reaches nothing.

Each attempt of ``hostile/hostile.c`` comes back as an output (1 = it got through), and the targets
are checked from outside as well (the file it wrote, the connection it opened). The control test
runs the same FMU without a sandbox and sees every attempt succeed: the assertions can fail.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from fastlims.benches.cosim import RunResult, SimulationSpec, run_in_subprocess
from fastlims.benches.cosim.isolated import Sandbox
from fastlims.benches.sandbox import probe
from fastlims.benches.sandbox.policy import Limits

from .conftest import FORKS, HOG_BYTES, Targets

SECRETS = {
    "FASTLIMS_SECRET_KEY": "env-secret-key",
    "FASTLIMS_DATABASE_URL": "postgresql://lims:db-password@127.0.0.1/lims",
    "FASTLIMS_MQTT_PASSWORD": "mqtt-password",
    "FASTLIMS_STORAGE_URL": "az://container?account_key=storage-key",
}
LEAKS = ("Hostile.leak_secret", "Hostile.leak_db", "Hostile.leak_net", "Hostile.leak_write")


def run_hostile(fmu: Path, targets: Targets, mode: str, attack: int, **limits: Any) -> RunResult:
    spec = SimulationSpec(step_size=1.0, stop_time=3.0, parameters={"Hostile.attack": float(attack)})
    sandbox = Sandbox(mode=mode, limits=Limits(**limits), deny=(str(targets.data_dir),))
    return run_in_subprocess({"Hostile": fmu}, [], spec, timeout_s=120, sandbox=sandbox)


def final(result: RunResult, name: str) -> float:
    return float(result.columns[name][-1])


@pytest.fixture(autouse=True)
def secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def test_this_host_has_the_namespaces_sandbox() -> None:
    """The modes the tests below use work here (a host where they do not fails this, named)."""
    for mode in ("namespaces", "landlock"):
        reason, report = probe.try_mode(mode)
        assert reason is None, f"{mode}: {reason}"
        assert report["mode"] == mode and report["landlock"]


@pytest.mark.parametrize("mode", ["namespaces", "landlock"])
def test_a_hostile_fmu_reads_no_secret_reaches_no_port_and_writes_nothing_outside(
    hostile_fmu: Path, targets: Targets, mode: str
) -> None:
    result = run_hostile(hostile_fmu, targets, mode, attack=1)
    assert result.status == "completed", result.reason
    assert {name: final(result, name) for name in LEAKS} == dict.fromkeys(LEAKS, 0.0)
    assert final(result, "Hostile.leak_env") == 0.0  # no FASTLIMS_* variable reached the child
    assert not targets.outside.exists()
    assert not targets.connection_arrived()
    assert targets.secret.read_text() == "hostile-test-secret-key\n"


def test_without_a_sandbox_the_same_fmu_gets_through(hostile_fmu: Path, targets: Targets) -> None:
    """The control: the probes work, so the test above would fail if the sandbox were gone."""
    result = run_hostile(hostile_fmu, targets, "none", attack=1)
    assert result.status == "completed", result.reason
    assert {name: final(result, name) for name in LEAKS} == dict.fromkeys(LEAKS, 1.0)
    assert targets.outside.read_text() == "written by a hostile FMU\n"
    assert targets.connection_arrived()
    assert final(result, "Hostile.leak_env") == 0.0  # the clean environment holds in every mode


def _processes_of(uid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.add(int(entry))
            except FileNotFoundError:
                continue
    return found


def test_a_fork_bomb_stops_at_the_process_limit_and_leaves_nothing_behind(hostile_fmu: Path, targets: Targets) -> None:
    before = _processes_of(65534)
    result = run_hostile(hostile_fmu, targets, "namespaces", attack=1, processes=16)
    assert result.status == "completed", result.reason
    forks = final(result, "Hostile.forks")
    assert 0 < forks < 16 < FORKS  # some forks, then EAGAIN: the limit, not the attempts, ended it
    assert _processes_of(65534) <= before  # every process the FMU started died with the run


def test_cpu_burning_is_stopped_by_the_cpu_limit_with_a_sandbox_reason(hostile_fmu: Path, targets: Targets) -> None:
    result = run_hostile(hostile_fmu, targets, "namespaces", attack=2, cpu_s=2)
    assert result.status == "failed" and result.end_cause == "sandbox"
    assert "the sandbox stopped the simulation" in result.reason and "CPU-time limit of 2 s" in result.reason


def test_a_huge_file_is_stopped_by_the_file_size_limit_with_a_sandbox_reason(
    hostile_fmu: Path, targets: Targets
) -> None:
    result = run_hostile(hostile_fmu, targets, "namespaces", attack=3, file_bytes=8 << 20)
    assert result.status == "failed" and result.end_cause == "sandbox"
    assert f"file-size limit of {8 << 20} bytes" in result.reason


def test_memory_past_the_limit_is_refused(hostile_fmu: Path, targets: Targets) -> None:
    limited = run_hostile(hostile_fmu, targets, "namespaces", attack=4, memory_bytes=HOG_BYTES // 2)
    assert limited.status == "completed", limited.reason
    assert final(limited, "Hostile.alloc_failed") == 1.0
    allowed = run_hostile(hostile_fmu, targets, "namespaces", attack=4, memory_bytes=4 * HOG_BYTES)
    assert final(allowed, "Hostile.alloc_failed") == 0.0  # the same allocation fits a larger limit

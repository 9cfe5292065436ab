"""Every way a run can go wrong ends it with a clear reason naming the FMU and the time: an FMU
error, a NaN, a refused parameter, an over-discharge (in-process), a crash (in a child process),
a failing callback, a cancel."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from fastlims.benches.cosim import SimulationSpec, run, run_in_subprocess

from .conftest import BuildFmu
from .cosim_testkit import CELL_TO_CYCLER, cell_system, constant_current, profile

VERSIONS = ("2.0", "3.0")


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_an_fmu_error_in_do_step_fails_the_run_naming_fmu_time_and_log(build: BuildFmu, fmi_version: str) -> None:
    spec = SimulationSpec(
        step_size=1.0, stop_time=100.0, parameters={**constant_current(5.0), "Cell.fault_time_s": 36.5}
    )
    with cell_system(build, fmi_version, cell="battery_cell_error") as system:
        result = run(system, spec)
    assert result.status == "failed" and result.end_cause == "error"
    major = fmi_version[0]
    assert re.match(
        rf"FMU 'Cell' returned fmi{major}Error in doStep at t=36 s: Cell: deliberate error", result.reason
    ), result.reason
    # Every point before the failing step is kept: 0..36 s.
    assert result.stopped_at == 36.0 and result.columns["time"][-1] == 36.0 and result.rows == 37


def test_an_fmu_error_while_a_staircase_profile_holds_is_located_the_same(build: BuildFmu) -> None:
    """Blocks in which the profile does not change skip its fmiSetReal: the failing call is still found."""
    staircase = profile("Cycler/current_setpoint", [(0, 5.0), (300, 5.0)])
    spec = SimulationSpec(step_size=1.0, profiles=[staircase], parameters={"Cell.fault_time_s": 200.5})
    with cell_system(build, "2.0", cell="battery_cell_error") as system:
        result = run(system, spec)
    assert result.reason.startswith("FMU 'Cell' returned fmi2Error in doStep at t=200 s: Cell: deliberate error")
    assert result.stopped_at == 200.0 and result.rows == 201
    np.testing.assert_array_equal(result.columns["Cell.I"], 5.0)


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_a_nan_output_fails_the_run_at_its_first_point(build: BuildFmu, fmi_version: str) -> None:
    spec = SimulationSpec(step_size=1.0, stop_time=100.0, parameters=constant_current(5.0))
    with cell_system(build, fmi_version, cell="battery_cell_nan") as system:
        result = run(system, spec)
    assert result.status == "failed" and result.end_cause == "nan"
    assert result.reason == "FMU 'Cell' output 'V' is nan at t=11 s"  # outputs turn NaN once t > 10 s
    assert result.stopped_at == 10.0 and np.isfinite(result.columns["Cell.V"]).all()


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_a_nan_that_the_next_fmu_refuses_is_still_reported_at_its_source(build: BuildFmu, fmi_version: str) -> None:
    """The cell refuses a NaN current (an error from fmiSetReal); the reason names the cause."""
    spec = SimulationSpec(step_size=1.0, stop_time=100.0, parameters=constant_current(5.0))
    with cell_system(build, fmi_version, cycler="cycler_nan") as system:
        result = run(system, spec)
    assert result.status == "failed"
    assert result.reason == "FMU 'Cycler' output 'current' is nan at t=11 s"


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_over_discharge_reports_what_the_cell_logged(build: BuildFmu, fmi_version: str) -> None:
    with cell_system(build, fmi_version) as system:
        result = run(system, SimulationSpec(step_size=10.0, stop_time=4000.0, parameters=constant_current(5.0)))
    assert result.status == "failed"
    assert result.reason.startswith(f"FMU 'Cell' returned fmi{fmi_version[0]}Error in doStep at t=3600 s: ")
    assert "over-discharged" in result.reason and result.stopped_at == 3600.0


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_a_refused_parameter_fails_the_set_up_with_the_fmu_message(build: BuildFmu, fmi_version: str) -> None:
    spec = SimulationSpec(step_size=1.0, stop_time=10.0, parameters={"Cell.capacity_Ah": -1.0})
    with cell_system(build, fmi_version) as system:
        result = run(system, spec)
    assert result.status == "failed" and result.rows == 0
    assert f"fmi{fmi_version[0]}ExitInitializationMode" in result.reason
    assert "capacity_Ah must be > 0, got -1" in result.reason


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_a_crashing_fmu_fails_the_run_in_a_child_process(build: BuildFmu, fmi_version: str) -> None:
    fmus = {"Cycler": build("cycler", fmi_version, "Cycler"), "Cell": build("battery_cell_crash", fmi_version, "Cell")}
    spec = SimulationSpec(
        step_size=1.0, stop_time=100.0, parameters={**constant_current(5.0), "Cell.fault_time_s": 40.5}
    )
    received = []
    result = run_in_subprocess(fmus, CELL_TO_CYCLER, spec, received.append, batch_rows=4, timeout_s=60)
    assert result.status == "failed" and result.end_cause == "crash"
    match = re.match(
        r"the simulation process died with SIGSEGV at t≈([0-9.]+) s \(in a step between t=([0-9.]+) s", result.reason
    )
    assert match, result.reason
    reached, block_start = float(match[1]), float(match[2])
    assert reached == block_start <= 40.0  # the crash is in the step from 40 s to 41 s, in the block from there
    # What arrived before the crash is the result: whole batches, in order, up to where it died.
    assert received and result.rows == sum(b.rows for b in received) and result.stopped_at <= 40.0
    np.testing.assert_array_equal(result.columns["time"], np.arange(result.rows, dtype=float))


def test_a_subprocess_run_matches_the_same_run_in_process(build: BuildFmu) -> None:
    spec = SimulationSpec(step_size=1.0, stop_time=300.0, parameters=constant_current(5.0))
    with cell_system(build, "2.0") as system:
        here = run(system, spec)
        fmus = {name: fmu.path for name, fmu in system.fmus.items()}
    progress: list[float] = []
    there = run_in_subprocess(fmus, CELL_TO_CYCLER, spec, on_progress=progress.append, timeout_s=60)
    assert there.status == "completed" and there.reason == here.reason
    assert there.columns.keys() == here.columns.keys()
    for name in here.columns:
        np.testing.assert_array_equal(there.columns[name], here.columns[name])
    assert progress and progress[-1] == 300.0


def test_cancel_stops_the_run_between_blocks(build: BuildFmu) -> None:
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) >= 2

    with cell_system(build, "2.0") as system:
        result = run(
            system, SimulationSpec(step_size=1.0, stop_time=3000.0, parameters=constant_current(1.0)), cancel=cancel
        )
    assert result.status == "cancelled" and result.end_cause == "cancelled"
    assert 0 < result.stopped_at < 3000.0 and result.reason == f"cancelled at t={result.stopped_at:g} s"


def test_a_cancelled_subprocess_run_stops(build: BuildFmu) -> None:
    fmus = {"Cycler": build("cycler", "2.0", "Cycler"), "Cell": build("battery_cell", "2.0", "Cell")}
    spec = SimulationSpec(step_size=1e-3, stop_time=3600.0, parameters=constant_current(1.0))
    batches = []
    result = run_in_subprocess(
        fmus, CELL_TO_CYCLER, spec, batches.append, batch_every_s=0.05, cancel=lambda: bool(batches)
    )
    assert result.status == "cancelled", result.reason
    assert result.stopped_at < 3600.0 and result.rows == sum(b.rows for b in batches)


def test_a_failing_metrics_callback_fails_the_run(build: BuildFmu) -> None:
    def broken(batch: object) -> None:
        raise ConnectionError("broker gone")

    with cell_system(build, "2.0") as system:
        result = run(system, SimulationSpec(step_size=1.0, stop_time=100.0), broken, batch_rows=10)
    assert result.status == "failed" and result.end_cause == "callback"
    assert "ConnectionError('broker gone')" in result.reason


def test_a_subprocess_run_over_its_time_limit_is_stopped(build: BuildFmu) -> None:
    fmus = {"Cycler": build("cycler", "2.0", "Cycler"), "Cell": build("battery_cell", "2.0", "Cell")}
    spec = SimulationSpec(step_size=1e-4, stop_time=3600.0, parameters=constant_current(0.1))
    result = run_in_subprocess(fmus, CELL_TO_CYCLER, spec, timeout_s=2.0, grace_s=5.0)
    assert result.status == "failed" and result.end_cause == "timeout"
    assert result.reason.startswith("the run exceeded its wall-time limit of 2 s; cancelled at t=")
    assert 0 < result.stopped_at < 3600.0


def test_a_subprocess_run_flooding_its_parent_with_batches_still_meets_its_time_limit(build: BuildFmu) -> None:
    """One batch per point keeps the pipe busy all the time: the limit must be checked anyway. (The
    limit counts from the child's start: 6 s leaves room for a slow start on a loaded machine, so
    batches have flowed before it strikes.)"""
    fmus = {"Cycler": build("cycler", "2.0", "Cycler"), "Cell": build("battery_cell", "2.0", "Cell")}
    spec = SimulationSpec(step_size=1e-3, stop_time=3600.0, parameters=constant_current(0.1))
    received: list[object] = []
    started = time.perf_counter()
    result = run_in_subprocess(fmus, CELL_TO_CYCLER, spec, received.append, batch_rows=1, timeout_s=6.0, grace_s=2.0)
    assert result.status == "failed" and result.end_cause == "timeout", result.reason
    assert time.perf_counter() - started < 30.0  # not the hour of simulated time at 1 ms steps
    assert received and result.stopped_at < 3600.0

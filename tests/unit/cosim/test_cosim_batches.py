"""Live metrics: every recorded sample reaches ``on_batch`` exactly once, in order, with gapless
``seq``; decimation keeps every n-th point and the last; batches become ``MetricsBatch`` messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastlims.benches.cosim import Batch, RunResult, SimulationSpec, run
from fastlims.messaging.schemas import MetricsBatch

from .conftest import BuildFmu
from .cosim_testkit import cell_system, constant_current, profile


def assert_batches_are_the_results(batches: list[Batch], result: RunResult) -> None:
    assert [b.seq for b in batches] == list(range(len(batches)))
    first_rows = np.cumsum([0] + [b.rows for b in batches])[:-1]
    assert [b.first_row for b in batches] == first_rows.tolist()
    np.testing.assert_array_equal(np.concatenate([b.time for b in batches]), result.columns["time"])
    for name, values in result.columns.items():
        if name != "time":
            np.testing.assert_array_equal(np.concatenate([b.signals[name] for b in batches]), values)
    assert result.batches == len(batches)
    assert np.all(np.diff(np.concatenate([b.time for b in batches])) > 0)  # in order, no repeats


@pytest.mark.parametrize("fmi_version", ["2.0", "3.0"])
def test_fixed_size_batches_carry_every_sample_once_in_order(build: BuildFmu, fmi_version: str) -> None:
    batches: list[Batch] = []
    with cell_system(build, fmi_version) as system:
        result = run(
            system,
            SimulationSpec(step_size=1.0, stop_time=100.0, parameters=constant_current(2.0)),
            batches.append,
            batch_rows=7,
        )
    assert result.rows == 101
    assert [b.rows for b in batches] == [7] * 14 + [3]
    assert_batches_are_the_results(batches, result)


def test_timed_batches_carry_every_sample_once_in_order(build: BuildFmu) -> None:
    batches: list[Batch] = []
    with cell_system(build, "2.0") as system:
        spec = SimulationSpec(step_size=0.01, stop_time=60.0, parameters=constant_current(2.0))
        result = run(system, spec, batches.append, batch_every_s=1e-6)
    assert result.rows == 6001 and len(batches) > 5
    assert_batches_are_the_results(batches, result)


def test_a_run_that_fails_still_delivers_its_samples(build: BuildFmu) -> None:
    batches: list[Batch] = []
    spec = SimulationSpec(
        step_size=1.0, stop_time=100.0, parameters={**constant_current(5.0), "Cell.fault_time_s": 50.5}
    )
    with cell_system(build, "2.0", cell="battery_cell_error") as system:
        result = run(system, spec, batches.append, batch_rows=16)
    assert result.status == "failed" and result.rows == 51
    assert_batches_are_the_results(batches, result)


def test_decimation_keeps_every_nth_point_and_the_last(build: BuildFmu) -> None:
    batches: list[Batch] = []
    with cell_system(build, "2.0") as system:
        spec = SimulationSpec(step_size=1.0, stop_time=95.0, decimation=10, parameters=constant_current(5.0))
        result = run(system, spec, batches.append, batch_rows=4)
        full = run(system, spec.model_copy(update={"decimation": 1}))
    expected = [*range(0, 91, 10), 95]
    np.testing.assert_array_equal(result.columns["time"], expected)
    np.testing.assert_array_equal(result.columns["Cell.SOC"], full.columns["Cell.SOC"][expected])
    assert result.steps == 95
    assert_batches_are_the_results(batches, result)


def test_only_the_requested_outputs_and_driven_inputs_are_recorded(build: BuildFmu) -> None:
    ramp = profile("current_setpoint", [(0, 0.0), (10, 1.0)])  # a port name only the cycler has
    with cell_system(build, "2.0") as system:
        result = run(system, SimulationSpec(step_size=1.0, profiles=[ramp], outputs=("Cell.V",)))
    # Cell.V was asked for; the profile's input and the connection (its output and input) always are.
    assert list(result.columns) == ["time", "Cycler.current_setpoint", "Cycler.current", "Cell.I", "Cell.V"]


def test_a_batch_becomes_a_valid_metrics_message(build: BuildFmu) -> None:
    batches: list[Batch] = []
    with cell_system(build, "3.0") as system:
        run(
            system,
            SimulationSpec(step_size=1.0, stop_time=20.0, parameters=constant_current(5.0)),
            batches.append,
            batch_rows=8,
        )
    message = batches[1].to_message(run_id="run-7", test_uuid="3f2a", t0_utc="2026-11-27 10:00:00")
    assert isinstance(message, MetricsBatch) and message.seq == 1
    assert message.timestamps == [8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    assert message.signals["Cell.V"].unit == "V" and len(message.signals["Cell.V"].values) == 8
    again = MetricsBatch.model_validate(json.loads(message.model_dump_json()))
    assert again.signals["Cell.SOC"].values == batches[1].signals["Cell.SOC"].tolist()

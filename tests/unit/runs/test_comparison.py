"""The residual core: measured − predicted on the measured time axis, per step and overall."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastlims.runs.comparison import ComparisonError, Series, compare, exceeds, series_from


def _run(time: list[float], voltage: list[float], temperature: list[float] | None = None,
         steps: list[int] | None = None) -> Series:  # fmt: skip
    return Series(
        time=np.asarray(time, dtype=float),
        voltage=np.asarray(voltage, dtype=float),
        temperature=None if temperature is None else np.asarray(temperature, dtype=float),
        step_count=None if steps is None else np.asarray(steps, dtype=float),
        step_id=None if steps is None else np.asarray([s + 10 for s in steps], dtype=float),
    )


def test_a_constant_offset_gives_that_offset_as_rms_max_and_bias() -> None:
    t = np.linspace(0.0, 100.0, 101)
    predicted = _run(list(t), list(3.7 - 0.001 * t), list(25 + 0.01 * t))
    measured = _run(list(t), list(3.7 - 0.001 * t + 0.02), list(25 + 0.01 * t - 1.5))
    got = compare(measured, predicted)
    assert got.overall.samples == 101 and got.uncovered == 0
    assert got.overall.rms_voltage_error_V == pytest.approx(0.02)
    assert got.overall.max_voltage_error_V == pytest.approx(0.02)
    assert got.overall.mean_voltage_error_V == pytest.approx(0.02)
    assert got.overall.rms_temperature_error_K == pytest.approx(1.5)
    assert got.overall.max_temperature_error_K == pytest.approx(1.5)
    assert got.overall.temperature_samples == 101


def test_the_prediction_is_interpolated_onto_the_measured_time() -> None:
    predicted = _run([0.0, 10.0], [4.0, 3.0])  # a straight line, sampled at its ends only
    measured = _run([2.5, 5.0, 7.5], [3.75 + 0.1, 3.5 - 0.1, 3.25 + 0.1])
    got = compare(measured, predicted)
    assert got.overall.rms_voltage_error_V == pytest.approx(0.1)
    assert got.overall.mean_voltage_error_V == pytest.approx(0.1 / 3)
    assert got.overall.rms_temperature_error_K is None and got.overall.temperature_samples == 0


def test_per_step_residuals_follow_the_measured_steps() -> None:
    predicted = _run([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [4.0] * 6)
    # step 1: +0.01 V twice; step 2: errors 0.03 and -0.04 (rms 0.0354, max 0.04)
    measured = _run([0.0, 1.0, 2.0, 3.0], [4.01, 4.01, 4.03, 3.96], steps=[1, 1, 2, 2])
    got = compare(measured, predicted)
    assert [s.step_count for s in got.steps] == [1, 2]
    assert [s.step_id for s in got.steps] == [11, 12]
    assert [s.start_time_s for s in got.steps] == [0.0, 2.0]
    assert got.steps[0].residual.rms_voltage_error_V == pytest.approx(0.01)
    assert got.steps[1].residual.rms_voltage_error_V == pytest.approx(math.sqrt((0.03**2 + 0.04**2) / 2))
    assert got.steps[1].residual.max_voltage_error_V == pytest.approx(0.04)
    errors = np.array([0.01, 0.01, 0.03, -0.04])
    assert got.overall.rms_voltage_error_V == pytest.approx(float(np.sqrt(np.mean(errors**2))))
    assert got.overall.max_voltage_error_V == pytest.approx(0.04)
    assert got.as_dict()["steps"][1]["max_voltage_error_V"] == pytest.approx(0.04)


def test_measured_samples_outside_the_prediction_are_not_extrapolated() -> None:
    predicted = _run([0.0, 10.0], [4.0, 4.0])
    measured = _run([0.0, 5.0, 10.0, 11.0, 12.0], [4.0, 4.1, 4.0, 0.0, 0.0])
    got = compare(measured, predicted)
    assert got.overall.samples == 3 and got.uncovered == 2
    assert got.overall.max_voltage_error_V == pytest.approx(0.1)


def test_temperature_is_compared_only_where_both_have_one() -> None:
    predicted = _run([0.0, 1.0, 2.0], [4.0] * 3, [25.0, 25.0, 25.0])
    measured = _run([0.0, 1.0, 2.0], [4.0] * 3, [26.0, math.nan, 27.0])
    got = compare(measured, predicted)
    assert got.overall.temperature_samples == 2
    assert got.overall.rms_temperature_error_K == pytest.approx(math.sqrt((1 + 4) / 2))
    assert got.overall.max_temperature_error_K == pytest.approx(2.0)


def test_the_alert_is_the_rms_voltage_error_above_the_threshold() -> None:
    predicted = _run([0.0, 1.0], [4.0, 4.0])
    got = compare(_run([0.0, 1.0], [4.06, 3.94]), predicted)
    assert exceeds(got, 0.05) and not exceeds(got, 0.07)


def test_columns_come_from_the_bdf_names_and_bad_input_is_named() -> None:
    columns = {"Test Time / s": [0.0, 1.0, math.nan], "Voltage / V": [4.0, 3.9, 3.8], "Step Count / 1": [1, 1, 2]}
    got = series_from(columns, "measured")
    assert (
        list(got.time) == [0.0, 1.0]
        and got.temperature is None
        and got.step_count is not None
        and list(got.step_count) == [1, 1]
    )
    with pytest.raises(ComparisonError, match="the predicted run's results have no 'Voltage / V' column"):
        series_from({"Test Time / s": [0.0]}, "predicted")
    with pytest.raises(ComparisonError, match="goes back in time"):
        series_from({"Test Time / s": [0.0, 2.0, 1.0], "Voltage / V": [4.0] * 3}, "measured")
    with pytest.raises(ComparisonError, match="different lengths"):
        series_from({"Test Time / s": [0.0, 1.0], "Voltage / V": [4.0]}, "measured")
    with pytest.raises(ComparisonError, match="no measured sample lies within"):
        compare(_run([20.0, 21.0], [4.0, 4.0]), _run([0.0, 10.0], [4.0, 4.0]))
    with pytest.raises(ComparisonError, match="at least 2"):
        compare(_run([0.0], [4.0]), _run([0.0], [4.0]))

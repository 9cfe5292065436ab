"""The residual of a hybrid run: what the physical bench measured minus what the Digital Twin
predicted for the same procedure and factors (its twin run on a virtual bench).

Pure: columns in, numbers out (no I/O). Both runs' results have the Battery Data Format columns;
the prediction is interpolated linearly onto the measured ``Test Time / s`` (the two runs sample at
different instants and rates), and a measured sample outside the prediction's time span is not
compared (no extrapolation: it is counted as ``uncovered``). The residuals are grouped by the
measured run's step executions (``Step Count / 1``), so the Digital Twin sees in which step its
model departs from the cell. Temperatures are compared only where both runs have a finite UUT
temperature (``Temperature T1 / degC``): a difference in °C is a difference in K.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

TIME = "Test Time / s"
VOLTAGE = "Voltage / V"
TEMPERATURE = "Temperature T1 / degC"
STEP_COUNT = "Step Count / 1"
STEP_ID = "Step ID"

Array = npt.NDArray[np.float64]


class ComparisonError(ValueError):
    """The two runs cannot be compared; the message says which run and what is missing."""


@dataclass(frozen=True)
class Series:
    """The columns of one run that the comparison reads (all the same length, time ascending)."""

    time: Array
    voltage: Array
    temperature: Array | None = None
    step_count: Array | None = None
    step_id: Array | None = None


@dataclass(frozen=True)
class Residual:
    """Measured − predicted over a set of samples. Voltage errors in V, temperature errors in K
    (None when the samples have no temperature on both sides); ``mean_voltage_error_V`` is the
    bias (positive: the cell reads higher than the model)."""

    samples: int
    rms_voltage_error_V: float
    max_voltage_error_V: float
    mean_voltage_error_V: float
    temperature_samples: int = 0
    rms_temperature_error_K: float | None = None
    max_temperature_error_K: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "rms_voltage_error_V": self.rms_voltage_error_V,
            "max_voltage_error_V": self.max_voltage_error_V,
            "mean_voltage_error_V": self.mean_voltage_error_V,
            "temperature_samples": self.temperature_samples,
            "rms_temperature_error_K": self.rms_temperature_error_K,
            "max_temperature_error_K": self.max_temperature_error_K,
        }


@dataclass(frozen=True)
class StepResidual:
    """The residual over one step execution of the measured run."""

    step_count: int
    step_id: int | None
    start_time_s: float
    residual: Residual

    def as_dict(self) -> dict[str, Any]:
        return {
            "step_count": self.step_count,
            "step_id": self.step_id,
            "start_time_s": self.start_time_s,
            **self.residual.as_dict(),
        }


@dataclass(frozen=True)
class Comparison:
    """The whole run's residual, each step's, and the measured samples left uncompared."""

    overall: Residual
    steps: list[StepResidual] = field(default_factory=list)
    uncovered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**self.overall.as_dict(), "uncovered_samples": self.uncovered,
                "steps": [step.as_dict() for step in self.steps]}  # fmt: skip


def _column(columns: Mapping[str, Any], name: str, which: str, *, required: bool) -> Array | None:
    if name not in columns:
        if required:
            raise ComparisonError(f"the {which} run's results have no {name!r} column")
        return None
    return np.asarray(columns[name], dtype=np.float64)


def series_from(columns: Mapping[str, Any], which: str) -> Series:
    """The comparison's columns of one run's results (``which``: "measured" or "predicted", for
    the error message). Rows whose time or voltage is not finite are dropped; the rest must have
    a time that never goes back."""
    time = _column(columns, TIME, which, required=True)
    voltage = _column(columns, VOLTAGE, which, required=True)
    assert time is not None and voltage is not None
    optional = {name: _column(columns, name, which, required=False) for name in (TEMPERATURE, STEP_COUNT, STEP_ID)}
    lengths = {len(time), len(voltage), *(len(v) for v in optional.values() if v is not None)}
    if len(lengths) != 1:
        raise ComparisonError(f"the {which} run's columns have different lengths: {sorted(lengths)}")
    keep = np.isfinite(time) & np.isfinite(voltage)
    time = time[keep]
    if len(time) and bool(np.any(np.diff(time) < 0)):
        raise ComparisonError(f"the {which} run's {TIME!r} goes back in time")
    kept = {name: (column[keep] if column is not None else None) for name, column in optional.items()}
    return Series(
        time=time,
        voltage=voltage[keep],
        temperature=kept[TEMPERATURE],
        step_count=kept[STEP_COUNT],
        step_id=kept[STEP_ID],
    )


def _residual(voltage_error: Array, temperature_error: Array | None) -> Residual:
    n = len(voltage_error)
    if n == 0:
        return Residual(samples=0, rms_voltage_error_V=math.nan, max_voltage_error_V=math.nan,
                        mean_voltage_error_V=math.nan)  # fmt: skip
    rms_t = max_t = None
    count_t = 0
    if temperature_error is not None:
        finite = temperature_error[np.isfinite(temperature_error)]
        count_t = len(finite)
        if count_t:
            rms_t = float(np.sqrt(np.mean(finite**2)))
            max_t = float(np.max(np.abs(finite)))
    return Residual(
        samples=n,
        rms_voltage_error_V=float(np.sqrt(np.mean(voltage_error**2))),
        max_voltage_error_V=float(np.max(np.abs(voltage_error))),
        mean_voltage_error_V=float(np.mean(voltage_error)),
        temperature_samples=count_t,
        rms_temperature_error_K=rms_t,
        max_temperature_error_K=max_t,
    )


def compare(measured: Series, predicted: Series) -> Comparison:
    """Measured − predicted at each measured sample inside the prediction's time span, overall and
    per measured step execution (in order of first appearance). Raises :class:`ComparisonError`
    when no measured sample falls inside the prediction's span (nothing to compare)."""
    if len(predicted.time) < 2:
        raise ComparisonError(f"the predicted run has {len(predicted.time)} sample(s): at least 2 are needed")
    inside = (measured.time >= predicted.time[0]) & (measured.time <= predicted.time[-1])
    if not bool(np.any(inside)):
        raise ComparisonError(
            f"no measured sample lies within the prediction's test time "
            f"({predicted.time[0]:g} to {predicted.time[-1]:g} s)"
        )
    time = measured.time[inside]
    voltage_error = measured.voltage[inside] - np.interp(time, predicted.time, predicted.voltage)
    temperature_error: Array | None = None
    if measured.temperature is not None and predicted.temperature is not None:
        usable = np.isfinite(predicted.temperature)
        if int(np.count_nonzero(usable)) >= 2:
            predicted_t = np.interp(time, predicted.time[usable], predicted.temperature[usable])
            temperature_error = measured.temperature[inside] - predicted_t
    steps: list[StepResidual] = []
    if measured.step_count is not None:
        counts = measured.step_count[inside]
        ids = measured.step_id[inside] if measured.step_id is not None else None
        finite_counts = counts[np.isfinite(counts)]
        _, first = np.unique(finite_counts, return_index=True)
        for value in finite_counts[np.sort(first)]:
            mask = counts == value
            step_id = ids[mask][0] if ids is not None else math.nan
            steps.append(
                StepResidual(
                    step_count=int(value),
                    step_id=int(step_id) if math.isfinite(step_id) else None,
                    start_time_s=float(time[mask][0]),
                    residual=_residual(
                        voltage_error[mask], temperature_error[mask] if temperature_error is not None else None
                    ),
                )
            )
    return Comparison(
        overall=_residual(voltage_error, temperature_error),
        steps=steps,
        uncovered=int(len(measured.time) - int(np.count_nonzero(inside))),
    )


def exceeds(comparison: Comparison, threshold_v: float) -> bool:
    """The alert: the whole run's RMS voltage error is above ``threshold_v`` (V)."""
    return comparison.overall.rms_voltage_error_V > threshold_v

"""What the demo e2e test reads of a run: its samples from the results CSV download (Battery Data
Format columns) and, computed from them independently of the LIMS's outcome code, the figures a
battery engineer checks: the steps of one procedure leaf, a step's charge, a CV step's current and
the DCIR at each pulse's edge."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.csv as pa_csv

TIME, VOLTAGE, CURRENT = "Test Time / s", "Voltage / V", "Current / A"
AMBIENT, STEP_ID, STEP_COUNT = "Ambient Temperature / degC", "Step ID", "Step Count / 1"
DISCHARGE_AH = "Discharge Capacity / Ah"


def read_csv(text: bytes) -> dict[str, np.ndarray]:
    """The download's columns by name, without the ``[unit]`` the CSV header adds."""
    table = pa_csv.read_csv(io.BytesIO(text))
    return {name.rsplit(" [", 1)[0]: table.column(name).to_numpy() for name in table.column_names}


def leaves(steps: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A procedure's leaf steps in document order (a repeat's body once): what ``Step ID`` counts."""
    found: list[Mapping[str, Any]] = []
    for step in steps:
        if step.get("type") == "repeat":
            found += leaves(step["steps"])
        else:
            found.append(step)
    return found


@dataclass(frozen=True)
class Execution:
    """One execution of a leaf: the sample rows ``[start, stop)`` it ran."""

    start: int
    stop: int


def executions(columns: Mapping[str, np.ndarray], leaf: int) -> list[Execution]:
    """Each run of leaf ``leaf`` through the procedure (one per ``Step Count / 1`` value)."""
    rows = np.flatnonzero(columns[STEP_ID] == leaf)
    out: list[Execution] = []
    for count in np.unique(columns[STEP_COUNT][rows]):
        mine = rows[columns[STEP_COUNT][rows] == count]
        out.append(Execution(int(mine[0]), int(mine[-1]) + 1))
    return out


def discharged_ah(columns: Mapping[str, np.ndarray], run: Execution) -> float:
    """The charge a step took out (the cumulative column counts up to each sample's time)."""
    end = min(run.stop, len(columns[DISCHARGE_AH]) - 1)
    return float(columns[DISCHARGE_AH][end] - columns[DISCHARGE_AH][run.start])


def pulse_resistances(columns: Mapping[str, np.ndarray], pulses: Sequence[int]) -> Iterator[float]:
    """(V just before - V at the pulse's first sample) / |I| for every execution of the pulse leaves."""
    voltage, current = columns[VOLTAGE], columns[CURRENT]
    for leaf in pulses:
        for run in executions(columns, leaf):
            yield abs(float(voltage[run.start - 1] - voltage[run.start]) / float(current[run.start]))

"""A small equivalent-circuit cell in Python (OCV(SOC) + R0 + one RC branch + lumped thermal), and
a harness that runs a program on it with both executors side by side.

The cell is exact for a current held over a step (the RC branch and SOC are integrated in closed
form), so tests can compare what the executors measure with analytic values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fastlims.procedures.interpreter import Interpreter, Sample
from fastlims.procedures.native import OUT_COLUMNS, NativeController, RowLayout
from fastlims.procedures.program import Code, Program


@dataclass
class Cell:
    """``I`` positive charges (BDF). OCV is linear from ``ocv_empty`` to ``ocv_full``."""

    capacity_Ah: float = 5.0
    r0: float = 0.015
    r1: float = 0.01
    c1: float = 2000.0
    soc: float = 0.5
    ocv_empty: float = 3.0
    ocv_full: float = 4.2
    t_ambient: float = 25.0
    temperature: float = 25.0
    heat_capacity: float = 70.0
    thermal_resistance: float = 10.0
    v1: float = 0.0

    def ocv(self) -> float:
        return self.ocv_empty + (self.ocv_full - self.ocv_empty) * self.soc

    def voltage(self, current: float) -> float:
        return self.ocv() + current * self.r0 + self.v1

    def step(self, current: float, h: float) -> None:
        self.soc += current * h / (3600.0 * self.capacity_Ah)
        if self.r1 > 0:
            target = current * self.r1
            self.v1 = target + (self.v1 - target) * math.exp(-h / (self.r1 * self.c1))
        heat = current * current * (self.r0 + self.r1)
        final = self.t_ambient + heat * self.thermal_resistance
        tau = self.heat_capacity * self.thermal_resistance
        self.temperature = final + (self.temperature - final) * math.exp(-h / tau)


STRIDE = 4 + len(OUT_COLUMNS)  # time, voltage, temperature, current command, then the outputs
LAYOUT = RowLayout(
    stride=STRIDE,
    time=0,
    voltage=1,
    temperature=2,
    current_command=3,
    out=tuple(range(4, 4 + len(OUT_COLUMNS))),
)


@dataclass
class Trace:
    samples: list[Sample] = field(default_factory=list)
    native_rows: list[np.ndarray] = field(default_factory=list)
    code: Code = Code.CONTINUE
    native_code: Code = Code.CONTINUE
    cell: Cell | None = None

    def column(self, name: str) -> np.ndarray:
        index = LAYOUT.out[OUT_COLUMNS.index(name)]
        return np.array([row[index] for row in self.native_rows])


def run_both(program: Program, cell: Cell, *, tick: float = 1.0, limit: int = 2_000_000) -> Trace:
    """Run ``program`` on ``cell`` with the interpreter, feeding the native controller the same
    measurements; both must command the same currents (asserted sample by sample)."""
    interpreter = Interpreter(program)
    native = NativeController(program, LAYOUT, tick_s=tick)
    current = interpreter.begin(0.0, tick)
    assert native.command == current
    buffer = np.zeros((2, STRIDE))
    trace = Trace(cell=cell)
    for k in range(limit):
        t = k * tick
        voltage = cell.voltage(current)
        buffer[0, :] = 0.0
        buffer[0, 0], buffer[0, 1], buffer[0, 2] = t, voltage, cell.temperature
        sample = interpreter.sample(t, voltage, cell.temperature)
        code = native.row(buffer)
        trace.samples.append(sample)
        trace.native_rows.append(buffer[0].copy())
        assert code == sample.code, f"t={t}: native {code!r}, interpreter {sample.code!r}"
        if code is not Code.CONTINUE:
            trace.code = trace.native_code = code
            return trace
        assert buffer[1, 3] == sample.next_current, f"t={t}: native {buffer[1, 3]}, interpreter {sample.next_current}"
        cell.step(current, tick)
        current = sample.next_current
    raise AssertionError(f"the program did not end within {limit} samples")

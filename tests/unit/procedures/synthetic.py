"""Result columns built analytically for outcome tests: a linear-OCV cell with a series
resistance, run through a resolved procedure of rest, CC and pulse steps at a fixed period.

The executors' convention: sample k reports the voltage with I_k flowing and the cumulative
charge up to t_k; I_k flows over [t_k, t_k+1); a step that ends at sample k hands over at t_k+1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastlims.procedures.model import ResolvedCc, ResolvedProcedure, ResolvedPulse, ResolvedRepeat, ResolvedRest


@dataclass
class Cell:
    capacity_Ah: float
    v_min: float
    v_max: float
    r0_ohm: float = 0.0
    soc: float = 1.0
    fade_per_cycle: float = 0.0  # relative capacity lost at each cycle start
    temperature_C: float = 25.0
    heating_C_per_A: float = 0.0  # temperature above ambient per ampere

    def ocv(self) -> float:
        return self.v_min + (self.v_max - self.v_min) * self.soc


@dataclass
class Recorder:
    cell: Cell
    dt: float = 1.0
    stop_at_s: float | None = None  # a safety trip: stop recording at this time
    rows: dict[str, list[float]] = field(default_factory=dict)
    t: float = 0.0
    step_count: int = 0
    cycle: int = 0
    charge_ah: float = 0.0
    discharge_ah: float = 0.0
    charge_wh: float = 0.0
    discharge_wh: float = 0.0
    stopped: bool = False

    def sample(self, step_id: int, current: float) -> float:
        c = self.cell
        v = c.ocv() + current * c.r0_ohm
        for name, value in (
            ("Test Time / s", self.t),
            ("Voltage / V", v),
            ("Current / A", current),
            ("Step Count / 1", self.step_count),
            ("Cycle Count / 1", self.cycle),
            ("Step ID", step_id),
            ("Charge Capacity / Ah", self.charge_ah),
            ("Discharge Capacity / Ah", self.discharge_ah),
            ("Charge Energy / Wh", self.charge_wh),
            ("Discharge Energy / Wh", self.discharge_wh),
            ("Temperature T1 / degC", c.temperature_C + c.heating_C_per_A * abs(current)),
        ):
            self.rows.setdefault(name, []).append(float(value))
        # the interval [t, t + dt) with this current
        amp_hours = current * self.dt / 3600
        c.soc += amp_hours / c.capacity_Ah
        if current > 0:
            self.charge_ah += amp_hours
            self.charge_wh += amp_hours * v
        else:
            self.discharge_ah -= amp_hours
            self.discharge_wh -= amp_hours * v
        self.t += self.dt
        if self.stop_at_s is not None and self.t > self.stop_at_s:
            self.stopped = True
        return v

    def columns(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(values) for name, values in self.rows.items()}


def run(resolved: ResolvedProcedure, recorder: Recorder) -> dict[str, np.ndarray]:
    _block(resolved.steps, recorder)
    return recorder.columns()


def _block(steps: tuple, rec: Recorder) -> None:  # type: ignore[type-arg]
    for step in steps:
        if rec.stopped:
            return
        if isinstance(step, ResolvedRepeat):
            for _ in range(step.count):
                if step.cycle:
                    rec.cycle += 1
                    rec.cell.capacity_Ah *= 1 - rec.cell.fade_per_cycle
                _block(step.steps, rec)
            continue
        rec.step_count += 1
        if isinstance(step, ResolvedPulse):
            for _ in range(round(step.duration_s / rec.dt)):
                if rec.stopped:
                    return
                rec.sample(step.id, step.current_A)
            continue
        assert isinstance(step, ResolvedRest | ResolvedCc), step
        current = step.current_A if isinstance(step, ResolvedCc) else 0.0
        start = rec.t
        while not rec.stopped:
            v = rec.sample(step.id, current)
            done = False
            for term in step.until:
                if term.kind == "time_s":
                    done |= rec.t - start >= term.value - 1e-9
                elif term.kind == "voltage_below_V":
                    done |= v <= term.value + 1e-12
                elif term.kind == "voltage_above_V":
                    done |= v >= term.value - 1e-12
            if done:
                break

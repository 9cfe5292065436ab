"""How long a procedure will take (for booking benches) and what a DoE may vary in it.

:func:`expected_duration_s` walks a resolved procedure with a deliberately simple cell: charge
moves the state of charge (SOC) by current x time / NominalCapacityAh, and the open-circuit
voltage is linear in SOC between MinVoltageV (0) and MaxVoltageV (1), with no resistance. Time
terminations are exact; a CC/CP step ending at a voltage takes the charge between the two SOCs;
a CV taper takes 30 min per e-fold of the current; repeats multiply (the body is walked twice,
the second pass standing for every later one, so nested counts cost nothing); a profile lasts to
its last time; an external step its duration. A step only a temperature can end is booked
:data:`UNBOUNDED_STEP_S`. The figure is for booking, not physics: it errs long when the UUT's
resistance ends a step early.

:func:`factors` turns the procedure's variables into DoE parameters, clamped to the UUT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from fastlims.doe.models import Parameter
from fastlims.procedures.model import Procedure
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.resolved import (
    AnyResolved,
    ResolvedAmbient,
    ResolvedCc,
    ResolvedCp,
    ResolvedCv,
    ResolvedExternal,
    ResolvedProcedure,
    ResolvedProfile,
    ResolvedPulse,
    ResolvedRepeat,
    ResolvedRest,
    ResolvedTermination,
)

__all__ = ["TAPER_TIME_CONSTANT_S", "UNBOUNDED_STEP_S", "expected_duration_s", "factors"]

UNBOUNDED_STEP_S = 3600.0
TAPER_TIME_CONSTANT_S = 1800.0
START_SOC = 0.5


@dataclass
class _Cell:
    soc: float
    last_current_A: float


def expected_duration_s(resolved: ResolvedProcedure, ratings: UutRatings) -> float:
    """The expected test time of the procedure in seconds (see the module docstring)."""
    cell = _Cell(soc=START_SOC, last_current_A=ratings.nominal_capacity_Ah / 3)
    return _block(resolved.steps, ratings, cell)


def _block(steps: Sequence[AnyResolved], r: UutRatings, cell: _Cell) -> float:
    return sum(_step(step, r, cell) for step in steps)


def _step(step: AnyResolved, r: UutRatings, cell: _Cell) -> float:
    if isinstance(step, ResolvedRepeat):
        first = _block(step.steps, r, cell)
        if step.count == 1:
            return first
        later = _block(step.steps, r, cell)
        return first + (step.count - 1) * later
    if isinstance(step, ResolvedPulse | ResolvedExternal):
        seconds = step.duration_s
        if isinstance(step, ResolvedPulse):
            _move(cell, step.current_A, seconds, r)
        return seconds
    if isinstance(step, ResolvedRest):
        return _bounded(step.until, None)
    if isinstance(step, ResolvedAmbient):
        return _bounded(step.until, None) if step.until else 0.0
    if isinstance(step, ResolvedCc):
        seconds = _bounded(step.until, _cc_time(step.until, step.current_A, r, cell))
        _move(cell, step.current_A, seconds, r)
        return seconds
    if isinstance(step, ResolvedCp):
        current = step.power_W / r.nominal_voltage_V
        seconds = _bounded(step.until, _cc_time(step.until, current, r, cell))
        _move(cell, current, seconds, r)
        return seconds
    if isinstance(step, ResolvedCv):
        return _cv(step, r, cell)
    assert isinstance(step, ResolvedProfile)
    end = step.points[-1][0]
    limit = _min_time(step.until)
    seconds = min(end, limit) if limit is not None else end
    _move(cell, _mean_current(step, r, seconds), seconds, r)
    return seconds


def _min_time(until: Sequence[ResolvedTermination]) -> float | None:
    times = [t.value for t in until if t.kind == "time_s"]
    return min(times) if times else None


def _bounded(until: Sequence[ResolvedTermination], estimate: float | None) -> float:
    """The step's time: its shortest time limit, or the estimate if shorter, or the fallback."""
    limit = _min_time(until)
    candidates = [x for x in (limit, estimate) if x is not None]
    return min(candidates) if candidates else UNBOUNDED_STEP_S


def _target_soc(volts: float, r: UutRatings) -> float:
    return (volts - r.min_voltage_V) / (r.max_voltage_V - r.min_voltage_V)


def _cc_time(until: Sequence[ResolvedTermination], current: float, r: UutRatings, cell: _Cell) -> float | None:
    amps = abs(current)
    if amps == 0:
        return None
    cell.last_current_A = amps
    capacity_s = r.nominal_capacity_Ah * 3600 / amps  # seconds per unit of SOC
    estimates: list[float] = []
    for term in until:
        if term.kind == "charge_Ah":
            estimates.append(term.value * 3600 / amps)
        elif term.kind == "voltage_above_V" and current > 0:
            estimates.append(max(0.0, _target_soc(term.value, r) - cell.soc) * capacity_s)
        elif term.kind == "voltage_below_V" and current < 0:
            estimates.append(max(0.0, cell.soc - _target_soc(term.value, r)) * capacity_s)
    return min(estimates) if estimates else None


def _cv(step: ResolvedCv, r: UutRatings, cell: _Cell) -> float:
    target = _target_soc(step.voltage_V, r)
    estimates: list[float] = []
    start = max(cell.last_current_A, 1e-9)
    for term in step.until:
        if term.kind == "current_below_A" and term.value > 0:
            estimates.append(TAPER_TIME_CONSTANT_S * math.log(max(start / term.value, 1.0)))
        elif term.kind == "charge_Ah":
            limit = step.charge_limit_A if target >= cell.soc else step.discharge_limit_A
            estimates.append(term.value * 3600 / limit)
    seconds = _bounded(step.until, min(estimates) if estimates else None)
    cell.soc = target if seconds > 0 else cell.soc
    return seconds


def _mean_current(step: ResolvedProfile, r: UutRatings, seconds: float) -> float:
    if step.quantity == "voltage" or seconds <= 0:
        return 0.0
    points = step.points
    charge = 0.0
    for index, (t, value) in enumerate(points):
        end = points[index + 1][0] if index + 1 < len(points) else t
        end = min(end, seconds)
        if end > t:
            charge += value * (end - t)
    mean = charge / seconds
    return mean / r.nominal_voltage_V if step.quantity == "power" else mean


def _move(cell: _Cell, current: float, seconds: float, r: UutRatings) -> None:
    cell.soc += current * seconds / 3600 / r.nominal_capacity_Ah


# --------------------------------------------------------------------------- DoE factors


def factors(procedure: Procedure, ratings: UutRatings) -> list[Parameter]:
    """The procedure's variables as DoE parameters, their ranges clamped to the UUT: an ambient
    temperature (unit degC) within MinTemperatureC..MaxTemperatureC, a C-rate (unit C) within the
    current ratings, a current (A) within them, a voltage (V) within the voltage limits, a SOC (%)
    within 0..100. A variable without both bounds, or whose clamped range is empty, is left out
    (it keeps its value in every run)."""
    out: list[Parameter] = []
    r = ratings
    for name, variable in procedure.variables.items():
        if variable.min is None or variable.max is None or not variable.min < variable.max:
            continue
        low, high = variable.min, variable.max
        unit = variable.unit.strip()
        lowered = name.lower()
        charge = "charge" in lowered and "discharge" not in lowered
        if unit in ("degC", "°C"):
            low, high = max(low, r.min_temperature_C), min(high, r.max_temperature_C)
        elif unit == "C":
            limit = (r.max_charge_current_A if charge else r.max_discharge_current_A) / r.nominal_capacity_Ah
            low, high = max(low, 0.0), min(high, limit)
        elif unit == "A":
            limit = r.max_charge_current_A if charge else r.max_discharge_current_A
            low, high = max(low, 0.0), min(high, limit)
        elif unit == "V":
            low, high = max(low, r.min_voltage_V), min(high, r.max_voltage_V)
        elif unit == "%":
            low, high = max(low, 0.0), min(high, 100.0)
        if not low < high:
            continue
        out.append(
            Parameter(
                name=name,
                unit=unit,
                min=low,
                max=high,
                start=min(max(variable.value, low), high),
                description=variable.description,
            )
        )
    return out

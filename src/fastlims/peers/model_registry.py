"""The reference Digital Twin's model registry: the parameters of an FMU set that fits the unit
under test, derived from the ``UUT_ratings`` of the request message (pure: ratings in, start
values out).

A real DT keeps calibrated models per cell, module and pack; the reference DT has one calibrated
cell, a 5 Ah NMC/graphite cylindrical cell (the ``battery_cell`` FMU's defaults), and scales it
the way a battery of identical cells scales:

- the cell: capacity = the UUT's rated capacity / its parallel count; its resistances inversely
  proportional to its capacity (R0 15 mOhm at 5 Ah), its capacitances proportional (the time
  constants stay the calibrated cell's); its heat capacity proportional to its capacity and its
  thermal resistance inversely (the same temperature rise at the same C-rate);
- the battery of ``s`` x ``p`` cells: ``series_cells = s``; capacity x p; R x s/p; C x p/s; heat
  capacity x s.p; thermal resistance / s.p;
- the cell's open-circuit window: the UUT's voltage limits / s (the OCV table's shape, stretched);
- the start: half charged (``SOC0`` 0.5) at 25 degC, so a procedure may charge or discharge first;
- the cycler: a channel rated 1.5 x the UUT's pulse current, so the procedure and the safety
  limits, not the channel, bound the current.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fastlims.messaging.schemas import UutRatingsMessage

# The calibrated cell: the battery_cell FMU's defaults (battery_cell.c, battery_cell.fmi*.xml).
CELL_CAPACITY_AH = 5.0
CELL_R0_OHM, CELL_R1_OHM, CELL_R2_OHM = 0.015, 0.010, 0.008
CELL_C1_F, CELL_C2_F = 2000.0, 50000.0
CELL_HEAT_CAPACITY_J_PER_K, CELL_THERMAL_RESISTANCE_K_PER_W = 70.0, 10.0
START_SOC = 0.5
START_TEMPERATURE_K = 298.15
CHANNEL_HEADROOM = 1.5  # the cycler's current limit over the UUT's pulse rating
# What the FMU accepts (its declared ranges); outside them the registry has no model.
_CELL_OCV_RANGE_V = (0.1, 10.0)
_LIMITS = {"capacity_Ah": (0.001, 1000.0), "R0_ohm": (0.0, 10.0), "heat_capacity_J_per_K": (0.001, 1e6)}


class ModelUnavailable(ValueError):
    """The registry has no model for these ratings (the message names the rating)."""


@dataclass(frozen=True)
class ModelChoice:
    """The start values of each FMU of the set (by FMU name in the set) and how they were chosen."""

    uut: str
    start_values: dict[str, dict[str, float]]
    basis: str
    notes: tuple[str, ...] = field(default=())

    def as_record(self) -> dict[str, Any]:
        """For ``inter_connection.json`` and the log: what the DT chose, readable without the FMUs."""
        return {"uut": self.uut, "basis": self.basis, "start_values": self.start_values, "notes": list(self.notes)}


def default_choice() -> ModelChoice:
    """A request without ``UUT_ratings`` (made before requests carried them): the calibrated cell."""
    return ModelChoice(
        uut="",
        start_values={"Cell": {"SOC0": START_SOC}, "Cycler": {}},
        basis=f"no UUT ratings in the request: the calibrated {CELL_CAPACITY_AH:g} Ah cell, half charged",
    )


def choose(ratings: UutRatingsMessage | None, cell: str = "Cell", cycler: str = "Cycler") -> ModelChoice:
    """The FMU set's start values for a UUT with ``ratings`` (module docstring); raises
    :class:`ModelUnavailable` naming the rating the model cannot represent."""
    if ratings is None:
        return default_choice()
    _check(ratings)
    s, p = ratings.series_count, ratings.parallel_count
    cell_capacity = ratings.nominal_capacity_Ah / p
    size = CELL_CAPACITY_AH / cell_capacity  # the calibrated cell's resistance over this cell's
    cells = s * p
    values = {
        "capacity_Ah": ratings.nominal_capacity_Ah,
        "R0_ohm": CELL_R0_OHM * size * s / p,
        "R1_ohm": CELL_R1_OHM * size * s / p,
        "C1_F": CELL_C1_F / size * p / s,
        "R2_ohm": CELL_R2_OHM * size * s / p,
        "C2_F": CELL_C2_F / size * p / s,
        "series_cells": float(s),
        "cell_OCV_min_V": ratings.min_voltage_V / s,
        "cell_OCV_max_V": ratings.max_voltage_V / s,
        "SOC0": START_SOC,
        "T0_K": START_TEMPERATURE_K,
        "T_ambient_K": START_TEMPERATURE_K,
        "heat_capacity_J_per_K": CELL_HEAT_CAPACITY_J_PER_K / size * cells,
        "thermal_resistance_K_per_W": CELL_THERMAL_RESISTANCE_K_PER_W * size / cells,
    }
    for name, (low, high) in _LIMITS.items():
        if not low <= values[name] <= high:
            raise ModelUnavailable(
                f"{ratings.code}: the model's {name} would be {values[name]:g}, outside {low:g}..{high:g}"
            )
    channel = CHANNEL_HEADROOM * ratings.max_pulse_current_A
    basis = (
        f"{ratings.code} ({ratings.format}, {s}s{p}p, {ratings.nominal_capacity_Ah:g} Ah, "
        f"{ratings.min_voltage_V:g}-{ratings.max_voltage_V:g} V): the calibrated {CELL_CAPACITY_AH:g} Ah cell "
        f"scaled to {cell_capacity:g} Ah cells, {s} in series x {p} in parallel: capacity "
        f"{values['capacity_Ah']:g} Ah, R0 {values['R0_ohm'] * 1000:.4g} mOhm, OCV "
        f"{ratings.min_voltage_V:g}-{ratings.max_voltage_V:g} V, SOC0 {START_SOC:g}; cycler limit {channel:g} A"
    )
    notes = (
        f"the OCV table is NMC/graphite-shaped, stretched to {values['cell_OCV_min_V']:.4g}-"
        f"{values['cell_OCV_max_V']:.4g} V per cell; chemistry {ratings.chemistry!r} is represented by it",
    )
    return ModelChoice(
        uut=ratings.code,
        start_values={cell: values, cycler: {"current_limit_A": channel}},
        basis=basis,
        notes=notes,
    )


def _check(r: UutRatingsMessage) -> None:
    problems: list[str] = []
    if r.series_count < 1 or r.parallel_count < 1:
        problems.append(f"series_count and parallel_count must be >= 1, got {r.series_count} and {r.parallel_count}")
    for name in ("nominal_capacity_Ah", "max_pulse_current_A", "min_voltage_V", "max_voltage_V"):
        value = getattr(r, name)
        if not (math.isfinite(value) and value > 0):
            problems.append(f"{name} must be a positive number, got {value!r}")
    if not problems:
        if r.min_voltage_V >= r.max_voltage_V:
            problems.append(f"min_voltage_V {r.min_voltage_V:g} must be below max_voltage_V {r.max_voltage_V:g}")
        low, high = _CELL_OCV_RANGE_V
        per_cell = (r.min_voltage_V / r.series_count, r.max_voltage_V / r.series_count)
        if not all(low <= v <= high for v in per_cell):
            problems.append(
                f"the voltage window per cell {per_cell[0]:.4g}-{per_cell[1]:.4g} V (limits / series_count) is "
                f"outside what a cell model covers ({low:g}-{high:g} V)"
            )
    if problems:
        raise ModelUnavailable(f"no model for UUT {r.code!r}: " + "; ".join(problems))

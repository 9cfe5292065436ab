"""Systems and independent reference physics for the co-simulation master's tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from fastlims.benches.cosim import CosimSystem, load_system

from .conftest import BuildFmu

CELL_TO_CYCLER = [{"OutSignalReference": "Cycler/current", "InSignalReference": "Cell/I"}]

# The cell's OCV table, copied from battery_cell.c on purpose: the tests check the simulation
# against this independent copy, not against the FMU's own numbers.
OCV_SOC = np.linspace(0.0, 1.0, 21)
OCV_V = np.array(
    [2.500, 3.300, 3.450, 3.510, 3.550, 3.585, 3.615, 3.640, 3.665, 3.690, 3.720,
     3.755, 3.795, 3.840, 3.885, 3.930, 3.975, 4.020, 4.070, 4.130, 4.200]
)  # fmt: skip
# The cell's defaults (battery_cell.fmi2.xml).
CAPACITY_AH = 5.0
R0, R1, C1, R2, C2 = 0.015, 0.010, 2000.0, 0.008, 50000.0
HEAT_CAPACITY_J_PER_K, THERMAL_RESISTANCE_K_PER_W = 70.0, 10.0

# The second set: lfp_cell, one FMU in mA (positive = charge), mV, %, degC. Its OCV table (V at
# SOC 0, 5, ..., 100 %) is copied from lfp_cell.c on purpose, as the one above.
LFP_OCV_PCT = np.linspace(0.0, 100.0, 21)
LFP_OCV_V = np.array(
    [2.000, 2.900, 3.150, 3.200, 3.220, 3.240, 3.255, 3.265, 3.275, 3.283, 3.290,
     3.296, 3.303, 3.310, 3.325, 3.330, 3.335, 3.340, 3.350, 3.400, 3.600]
)  # fmt: skip
# Its defaults (lfp_cell.fmi2.xml), in SI: 2500 mAh, 20 mOhm, 12 mOhm, 60 s, 80 J/K, 8 K/W.
LFP_CAPACITY_AH = 2.5
LFP_R_SERIES, LFP_R_POL, LFP_TAU_POL = 0.020, 0.012, 60.0
LFP_HEAT_CAPACITY_J_PER_K, LFP_THERMAL_RESISTANCE_K_PER_W = 80.0, 8.0


def ocv(soc: np.ndarray | float) -> np.ndarray:
    return np.interp(soc, OCV_SOC, OCV_V)


@dataclass(frozen=True)
class CellModel:
    """What a test expects of an equivalent-circuit cell: OCV(SOC) in series with R0 and RC branches
    ``(R, tau)``, a lumped thermal time constant; currents in A, positive = charge (BDF)."""

    capacity_Ah: float
    r0: float
    branches: tuple[tuple[float, float], ...]
    ocv_soc: np.ndarray  # SOC as a fraction
    ocv_v: np.ndarray
    thermal_tau_s: float

    @property
    def r_total(self) -> float:
        """The resistance once every branch has settled under a constant current."""
        return self.r0 + sum(r for r, _ in self.branches)

    def ocv(self, soc: np.ndarray | float) -> np.ndarray:
        return np.asarray(np.interp(soc, self.ocv_soc, self.ocv_v))

    def soc_at(self, ocv: float) -> float:
        return float(np.interp(ocv, self.ocv_v, self.ocv_soc))

    def voltage(self, elapsed: np.ndarray, current: float, soc0: float) -> np.ndarray:
        """Terminal voltage ``elapsed`` seconds into a constant ``current`` from rest at ``soc0``."""
        soc = soc0 + current * elapsed / 3600.0 / self.capacity_Ah
        polarisation = sum(current * r * (1.0 - np.exp(-elapsed / tau)) for r, tau in self.branches)
        return self.ocv(soc) + current * self.r0 + polarisation


BATTERY_CELL = CellModel(
    CAPACITY_AH, R0, ((R1, R1 * C1), (R2, R2 * C2)), OCV_SOC, OCV_V, HEAT_CAPACITY_J_PER_K * THERMAL_RESISTANCE_K_PER_W
)
LFP_CELL = CellModel(
    LFP_CAPACITY_AH,
    LFP_R_SERIES,
    ((LFP_R_POL, LFP_TAU_POL),),
    LFP_OCV_PCT / 100.0,
    LFP_OCV_V,
    LFP_HEAT_CAPACITY_J_PER_K * LFP_THERMAL_RESISTANCE_K_PER_W,
)


def lfp_system(build: BuildFmu, fmi_version: str, *, cell: str = "lfp_cell") -> CosimSystem:
    """The second set: one FMU named ``Akku``, no connections (the procedure drives its i_mA)."""
    return load_system([build(cell, fmi_version, "Akku")])


def cell_system(
    build: BuildFmu,
    fmi_version: str,
    *,
    cell: str = "battery_cell",
    cycler: str = "cycler",
    start_values: Mapping[str, Mapping[str, float]] | None = None,
) -> CosimSystem:
    """Cycler.current -> Cell.I, the two-FMU system of the issue; ``start_values`` by FMU name
    (``{"Cell": {...}, "Cycler": {...}}``) as the reference Digital Twin chooses them for a UUT."""
    chosen = start_values or {}
    fmus = [
        build(cycler, fmi_version, "Cycler", chosen.get("Cycler")),
        build(cell, fmi_version, "Cell", chosen.get("Cell")),
    ]
    return load_system(fmus, CELL_TO_CYCLER)


def battery_cell_model(start: Mapping[str, float]) -> CellModel:
    """What a test expects of the battery_cell FMU built with the start values ``start`` (its model
    description's; the defaults for the others): ``series_cells`` times the independent copy of the
    OCV table above, stretched onto the cell's OCV window; its capacity, R0 and RC branches."""
    defaults = {
        "capacity_Ah": CAPACITY_AH, "R0_ohm": R0, "R1_ohm": R1, "C1_F": C1, "R2_ohm": R2, "C2_F": C2,
        "heat_capacity_J_per_K": HEAT_CAPACITY_J_PER_K, "thermal_resistance_K_per_W": THERMAL_RESISTANCE_K_PER_W,
        "series_cells": 1.0, "cell_OCV_min_V": OCV_V[0], "cell_OCV_max_V": OCV_V[-1],
    }  # fmt: skip
    p = {**defaults, **start}
    window = (OCV_V - OCV_V[0]) / (OCV_V[-1] - OCV_V[0])
    cell_ocv = p["cell_OCV_min_V"] + window * (p["cell_OCV_max_V"] - p["cell_OCV_min_V"])
    return CellModel(
        p["capacity_Ah"],
        p["R0_ohm"],
        ((p["R1_ohm"], p["R1_ohm"] * p["C1_F"]), (p["R2_ohm"], p["R2_ohm"] * p["C2_F"])),
        OCV_SOC,
        p["series_cells"] * cell_ocv,
        p["heat_capacity_J_per_K"] * p["thermal_resistance_K_per_W"],
    )


def constant_current(amps: float) -> dict[str, float]:
    """DoE-style parameters putting the cycler in constant-current mode."""
    return {"Cycler.mode": 1, "Cycler.current_A": amps}


def profile(name: str, points: Iterable[tuple[float, float]], unit: str = "A") -> dict[str, object]:
    """A seed-style custom_profile (values as strings, as the seed's sample writes them)."""
    return {
        "Name": name,
        "type": "input",
        "unit": unit,
        "values": [{"timestamp": t, "value": repr(float(v))} for t, v in points],
    }

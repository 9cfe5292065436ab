"""Systems and independent reference physics for the co-simulation master's tests."""

from __future__ import annotations

from collections.abc import Iterable

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


def ocv(soc: np.ndarray | float) -> np.ndarray:
    return np.interp(soc, OCV_SOC, OCV_V)


def cell_system(
    build: BuildFmu, fmi_version: str, *, cell: str = "battery_cell", cycler: str = "cycler"
) -> CosimSystem:
    """Cycler.current -> Cell.I, the two-FMU system of the issue."""
    return load_system(
        [build(cycler, fmi_version, "Cycler"), build(cell, fmi_version, "Cell")],
        CELL_TO_CYCLER,
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

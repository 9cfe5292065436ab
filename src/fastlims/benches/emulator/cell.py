"""An equivalent-circuit UUT for the bench emulator, built from the UUT's ratings alone.

OCV(SOC) follows a typical lithium-ion shape stretched over the rated voltage window, one series
resistance, one RC branch and a lumped thermal mass. The cell, module or pack is the cell model
scaled by its series and parallel counts. The state moves in closed form for a current held over
an interval (SOC by coulomb counting, the RC branch and the temperature exponentially), so a run
on the emulator has analytic answers: the coulombs a test moves are exactly the integral of its
current, whatever the speed. ``noise`` adds measurement noise (voltage and temperature), seeded.

Pure: no I/O.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from fastlims.procedures.ratings import UutRatings

# A typical NMC/graphite OCV shape, normalised: (SOC, share of the rated window) pairs.
OCV_SHAPE = (
    (0.0, 0.0),
    (0.02, 0.16),
    (0.05, 0.30),
    (0.10, 0.40),
    (0.20, 0.48),
    (0.30, 0.54),
    (0.40, 0.59),
    (0.50, 0.64),
    (0.60, 0.70),
    (0.70, 0.77),
    (0.80, 0.84),
    (0.90, 0.92),
    (1.0, 1.0),
)
CELL_R0_AH = 0.075  # ohm x Ah of one cell: 15 mOhm for a 5 Ah cell, 1.5 mOhm for 50 Ah
CELL_R1_SHARE = 0.6  # the RC branch's resistance as a share of R0
RC_TAU_S = 60.0
CELL_HEAT_J_PER_K_AH = 14.0  # heat capacity per Ah of one cell (a 5 Ah cell: 70 J/K)
CELL_THERMAL_RESISTANCE_K_W = 10.0


def _shape(soc: float) -> float:
    s = min(1.0, max(0.0, soc))
    for (s0, v0), (s1, v1) in zip(OCV_SHAPE, OCV_SHAPE[1:], strict=False):
        if s <= s1:
            return v0 + (v1 - v0) * (s - s0) / (s1 - s0)
    return 1.0


@dataclass
class EmulatedUut:
    """The UUT's state; ``current`` positive charges (the Battery Data Format's sign)."""

    capacity_Ah: float
    min_voltage_V: float
    max_voltage_V: float
    r0_ohm: float
    r1_ohm: float
    tau_s: float
    heat_capacity_J_K: float
    thermal_resistance_K_W: float
    soc: float = 0.5
    temperature_C: float = 25.0
    ambient_C: float = 25.0
    v1: float = 0.0
    noise: bool = False
    seed: int = 0
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @classmethod
    def from_ratings(
        cls,
        ratings: UutRatings,
        *,
        soc: float = 0.5,
        ambient_C: float = 25.0,  # noqa: N803 - the unit-suffixed name used throughout
        noise: bool = False,
        seed: int = 0,
    ) -> EmulatedUut:
        """The UUT of ``ratings``: a cell of capacity/parallel Ah scaled by series x parallel."""
        cell_Ah = ratings.nominal_capacity_Ah / ratings.parallel_count
        scale = ratings.series_count / ratings.parallel_count
        cells = ratings.series_count * ratings.parallel_count
        r0 = CELL_R0_AH / cell_Ah * scale
        return cls(
            capacity_Ah=ratings.nominal_capacity_Ah,
            min_voltage_V=ratings.min_voltage_V,
            max_voltage_V=ratings.max_voltage_V,
            r0_ohm=r0,
            r1_ohm=r0 * CELL_R1_SHARE,
            tau_s=RC_TAU_S,
            heat_capacity_J_K=CELL_HEAT_J_PER_K_AH * cell_Ah * cells,
            thermal_resistance_K_W=CELL_THERMAL_RESISTANCE_K_W / cells,
            soc=soc,
            temperature_C=ambient_C,
            ambient_C=ambient_C,
            noise=noise,
            seed=seed,
        )

    def ocv(self) -> float:
        return self.min_voltage_V + (self.max_voltage_V - self.min_voltage_V) * _shape(self.soc)

    def voltage(self, current: float) -> float:
        """The terminal voltage with ``current`` flowing (measured: with noise when asked)."""
        value = self.ocv() + current * self.r0_ohm + self.v1
        if self.noise:
            value += self._random.gauss(0.0, 0.0005 * max(1.0, self.max_voltage_V / 4.2))
        return value

    def temperature(self) -> float:
        return self.temperature_C + (self._random.gauss(0.0, 0.05) if self.noise else 0.0)

    def hold(self, current: float, seconds: float) -> None:
        """Advance the state by ``seconds`` with ``current`` held (exact for a held current)."""
        if seconds <= 0:
            return
        self.soc += current * seconds / (3600.0 * self.capacity_Ah)
        target = current * self.r1_ohm
        self.v1 = target + (self.v1 - target) * math.exp(-seconds / self.tau_s)
        heat = current * current * (self.r0_ohm + self.r1_ohm)
        final = self.ambient_C + heat * self.thermal_resistance_K_W
        tau = self.heat_capacity_J_K * self.thermal_resistance_K_W
        self.temperature_C = final + (self.temperature_C - final) * math.exp(-seconds / tau)

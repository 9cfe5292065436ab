"""Pass/fail criteria of the standards, as data the outcomes can evaluate.

A :class:`Criterion` quotes the standard's criterion (as summarised in the seed catalog; the
purchased standard text always governs) and says which part of it the recorded data can decide:
an OCV retention, a temperature, a voltage, capacity stability, a current interruption, the
operating region. What only an operator can see (fire, explosion, leakage, venting, rupture,
disassembly, projectiles) is named in ``observed`` and never decided from data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Check = Literal[
    "observation",  # nothing in the data decides it: the operator's observation
    "ocv_retention",  # OCV after (tag ocv_post) / OCV before (tag ocv_pre) >= threshold
    "max_temperature",  # the UUT's max temperature <= threshold (degC)
    "max_voltage",  # the max voltage <= threshold (V)
    "min_voltage",  # the min voltage >= threshold (V)
    "capacity_stable",  # |last - previous| / previous discharge capacity < threshold (cycles)
    "current_interrupted",  # the step tagged bms_check ended by its current condition, not its time limit
    "operating_region",  # voltages, temperature within the ratings and no safety limit tripped
]


@dataclass(frozen=True)
class Criterion:
    """One standard's criterion for one test, and the part of it the data decides.

    ``threshold``: the number the ``check`` compares with (its unit follows the check);
    ``limits``: for ``operating_region``, ``(min_voltage_V, max_voltage_V, max_temperature_C)``;
    ``observed``: what the operator judges and the data cannot.
    """

    text: str
    check: Check
    threshold: float | None = None
    limits: tuple[float, float, float] | None = None
    observed: str = ""
    source: str = ""  # the standard (catalog code) the criterion comes from

    def as_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "check": self.check,
            "threshold": self.threshold,
            "observed": self.observed,
            "source": self.source,
        }

"""What a resolved procedure asks of the bench that runs it: the scheduler books a run only on a
bench whose ratings cover these (``fastlims benches add ... --max-current A``).

The current is the largest magnitude the procedure *commands*: constant-current steps, pulses,
current profiles, and constant-power steps and power profiles at the lowest voltage the safety
window allows (the current a power step draws grows as the voltage falls). A CV hold is not
counted: its current decays from the step before, and a cycler caps a CV step at its own range.
The voltage window is the run's safety window, which the bench must measure to stop the run. A
procedure that sets the ambient temperature needs a temperature chamber.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastlims.procedures.resolved import (
    ResolvedAmbient,
    ResolvedCc,
    ResolvedCp,
    ResolvedProcedure,
    ResolvedProfile,
    ResolvedPulse,
)


@dataclass(frozen=True)
class BenchNeeds:
    """A run's demands on its bench, in SI units (current a magnitude)."""

    uut_format: str
    current_A: float
    min_voltage_V: float
    max_voltage_V: float
    temperature_chamber: bool


def bench_needs(resolved: ResolvedProcedure, uut_format: str) -> BenchNeeds:
    """The demands of ``resolved`` (a procedure resolved for a UUT of ``uut_format``)."""
    floor_V = max(resolved.safety.min_voltage_V, 1e-3)  # a power step's current at the lowest allowed voltage
    current = 0.0
    chamber = False
    for step in resolved.walk():
        if isinstance(step, ResolvedCc | ResolvedPulse):
            current = max(current, abs(step.current_A))
        elif isinstance(step, ResolvedCp):
            current = max(current, abs(step.power_W) / floor_V)
        elif isinstance(step, ResolvedProfile) and step.quantity != "voltage":
            scale = 1.0 if step.quantity == "current" else 1.0 / floor_V
            current = max(current, max((abs(value) * scale for _, value in step.points), default=0.0))
        elif isinstance(step, ResolvedAmbient):
            chamber = True
    return BenchNeeds(
        uut_format=uut_format,
        current_A=current,
        min_voltage_V=resolved.safety.min_voltage_V,
        max_voltage_V=resolved.safety.max_voltage_V,
        temperature_chamber=chamber,
    )

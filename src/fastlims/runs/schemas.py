"""REST shapes of a request's runs: the list (``RunOut``) and one run with its per-step and
per-cycle summaries (``RunDetailOut``). Units are in the field names (Battery Data Format
conventions: currents positive = charge, capacities and energies as magnitudes).

Outcomes, steps and cycles allow keys beyond those listed: a bench that measures more (OCV
retention, energy efficiency of a tagged pair of steps, ...) is passed through, not dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Verdict(BaseModel):
    """The run against the standard's criterion, where the standard states one."""

    model_config = ConfigDict(extra="allow")

    result: Literal["pass", "fail", "n/a"]
    criterion: str | None = Field(description="The standard's criterion, quoted; None when it states none")
    reason: str = Field(description="What was measured against it (or why the data cannot decide)")
    check: str | None = Field(default=None, description="What the data decides, e.g. max_temperature")


class RunOutcomes(BaseModel):
    """What the run measured (None: the procedure does not give it, e.g. no pulse for a DCIR)."""

    model_config = ConfigDict(extra="allow")

    discharge_capacity_Ah: float | None = Field(default=None, description="The reference discharge's capacity")
    charge_capacity_Ah: float | None = Field(default=None, description="The charge before the reference discharge")
    discharge_energy_Wh: float | None = None
    coulombic_efficiency: float | None = Field(default=None, description="discharge / charge capacity")
    dcir_ohm: float | None = Field(default=None, description="Mean over the pulses of ΔV / |I| at the pulse edge")
    capacity_retention: float | None = Field(default=None, description="Last / first capacity measurement")
    max_temperature_C: float | None = None
    min_voltage_V: float | None = None
    max_voltage_V: float | None = None
    verdict: Verdict | None = None


class StepSummary(BaseModel):
    """One step execution (one value of ``Step Count / 1``)."""

    model_config = ConfigDict(extra="allow")

    step_count: int
    step_id: int = Field(description="The procedure leaf (``Step ID``), in document order")
    type: str = Field(description="rest, cc, cv, cp, pulse, profile, ambient or external")
    label: str | None = None
    text: str = Field(description="The step in the procedure's text form")
    path: str
    tags: list[str]
    start_time_s: float
    end_time_s: float
    duration_s: float
    end_reason: str = Field(description="The termination met (e.g. voltage_below_V, time_s) or why it stopped")
    charge_Ah: float
    discharge_Ah: float
    charge_Wh: float
    discharge_Wh: float
    voltage_start_V: float
    voltage_end_V: float
    voltage_min_V: float
    voltage_max_V: float
    mean_current_A: float
    max_temperature_C: float | None = None
    dcir_ohm: float | None = Field(default=None, description="A pulse's resistance at its edge")


class CycleSummary(BaseModel):
    """One cycle (one value of ``Cycle Count / 1``)."""

    model_config = ConfigDict(extra="allow")

    cycle_count: int
    start_time_s: float
    charge_Ah: float
    discharge_Ah: float
    charge_Wh: float
    discharge_Wh: float
    coulombic_efficiency: float | None = None
    max_temperature_C: float | None = None


class ComparisonOut(BaseModel):
    """A hybrid run's residual, measured − predicted (its twin's prediction interpolated onto the
    measured test time): voltage errors in V, temperature errors in K. ``problem`` instead of the
    numbers when the two runs could not be compared."""

    model_config = ConfigDict(extra="ignore")

    twin_run_id: str
    rms_voltage_error_V: float | None = None
    max_voltage_error_V: float | None = Field(default=None, description="The largest absolute voltage error")
    mean_voltage_error_V: float | None = Field(default=None, description="The bias: the cell reads higher if > 0")
    rms_temperature_error_K: float | None = None
    max_temperature_error_K: float | None = None
    samples: int | None = Field(default=None, description="Measured samples compared")
    threshold_V: float | None = Field(default=None, description="FASTLIMS_TWIN_RESIDUAL_ALERT_V when compared")
    alert: bool = Field(default=False, description="The RMS voltage error exceeds the threshold")
    problem: str | None = Field(default=None, description="Why the runs could not be compared")


class StepResidual(BaseModel):
    """The residual over one step execution of the measured run."""

    model_config = ConfigDict(extra="allow")

    step_count: int
    step_id: int | None
    start_time_s: float
    samples: int
    rms_voltage_error_V: float | None
    max_voltage_error_V: float | None
    rms_temperature_error_K: float | None = None
    max_temperature_error_K: float | None = None


class ComparisonDetailOut(ComparisonOut):
    """The residual with each step's."""

    steps: list[StepResidual] = Field(default_factory=list)


class RunOut(BaseModel):
    """One run of a request: where and when it ran, how it ended, its factors and outcomes."""

    run_id: str
    bench: str
    kind: str = Field(description="The bench kind: virtual or physical")
    state: str = Field(description="scheduled, dispatched, running, completed, failed or cancelled")
    planned_start: datetime = Field(description="The booked start of the test (after any set-up), lab time")
    planned_end: datetime = Field(description="The end of the booking (teardown included), lab time")
    started_at: datetime | None
    ended_at: datetime | None
    end_cause: str | None = Field(
        description="How the run ended: procedure_complete, safety_limit, error, timeout or cancelled"
    )
    reason: str | None = Field(description="Why it ended other than complete, e.g. the safety limit, value and time")
    factors: dict[str, float] = Field(
        description="The run's DoE values: its procedure variable values and any FMU parameter values"
    )
    outcomes: RunOutcomes | None = Field(description="None until the run has ended with results")
    twin_of: str | None = Field(
        default=None, description="A twin run: the physical run whose prediction it is (docs/benches.md, Hybrid runs)"
    )
    comparison: ComparisonOut | None = Field(
        default=None, description="A physical run with a twin: the residual, None until both runs completed"
    )


class RunDetailOut(RunOut):
    """One run with its per-step and per-cycle summaries (empty before results exist)."""

    steps: list[StepSummary]
    cycles: list[CycleSummary]
    comparison: ComparisonDetailOut | None = Field(  # type: ignore[assignment]
        default=None, description="A physical run with a twin: the residual with each step's, None until computed"
    )

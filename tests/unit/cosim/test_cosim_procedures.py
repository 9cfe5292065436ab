"""Test procedures run in closed loop on real FMUs: the physics a battery engineer checks.

The reference pair (a cycler channel driving an equivalent-circuit cell, 5 Ah, R0 15 mOhm) runs
the IEC 62660-1-style capacity test, a DCIR pulse, a CV hold and a safety trip; the expected values
come from the cell's parameters (its model description's start values) and an independent copy of
its OCV table, not from the simulation.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastlims.benches.cosim import SimulationSpec, run
from fastlims.benches.cosim.spec import ProcedureRun
from fastlims.procedures.compiler import compile_procedure
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.resolve import resolve
from fastlims.procedures.text import load

from .conftest import BuildFmu
from .cosim_testkit import CAPACITY_AH, OCV_SOC, OCV_V, R0, R1, R2, cell_system

PORTS = {
    "current": "Cycler/current_setpoint",
    "voltage": "Cell/V",
    "temperature": "Cell/T",
    "soc": "Cell/SOC",
    "ambient_temperature": "Cell/T_ambient_K",
}
RATINGS = UutRatings(
    code="ref-cell",
    chemistry="NMC/graphite",
    format="cell",
    series_count=1,
    parallel_count=1,
    nominal_capacity_Ah=5.0,
    nominal_voltage_V=3.65,
    min_voltage_V=2.5,
    max_voltage_V=4.2,
    max_charge_current_A=5.0,
    max_discharge_current_A=15.0,
    max_pulse_current_A=30.0,
    min_temperature_C=-20.0,
    max_temperature_C=60.0,
)


def soc_at(ocv: float) -> float:
    return float(np.interp(ocv, OCV_V, OCV_SOC))


def simulate(build: BuildFmu, text: str, *, fmi: str = "2.0", step: float = 1.0, limit_s: float = 200_000.0):  # type: ignore[no-untyped-def]
    parsed = load(text)
    resolved = resolve(parsed.procedure, RATINGS, lines=parsed.lines)
    program = compile_procedure(resolved)
    procedure = ProcedureRun(program=program, ports=PORTS, current_sign="discharge_positive")
    spec = SimulationSpec(step_size=step, stop_time=limit_s, procedure=procedure, parameters={"Cell.SOC0": 0.5})
    with cell_system(build, fmi) as system:
        return run(system, spec)


@pytest.mark.parametrize("fmi", ["2.0", "3.0"])
def test_the_capacity_test_measures_the_cells_capacity_within_1_percent(build: BuildFmu, fmi: str) -> None:
    result = simulate(
        build,
        """
        Charge at C/3 until 4.2 V
        Hold at 4.2 V until C/20
        Rest for 1 hour
        Discharge at C/3 until 2.5 V
        Rest for 30 minutes
        """,
        fmi=fmi,
    )
    assert result.status == "completed", result.reason
    assert result.end_cause == "procedure_complete"
    columns = result.columns
    step = columns["Step ID"]
    discharge = columns["Discharge Capacity / Ah"]
    first = int(np.flatnonzero(step == 3)[0])
    after = int(np.flatnonzero(step == 4)[0])
    measured = discharge[after] - discharge[first]
    # Analytically: the CV ends with C/20 flowing at 4.2 V, the RC branches settled at that current;
    # the discharge ends at 2.5 V with C/3 flowing and the branches settled at it.
    taper, load_current = CAPACITY_AH / 20, CAPACITY_AH / 3
    soc_full = soc_at(4.2 - taper * (R0 + R1 + R2))
    soc_empty = soc_at(2.5 + load_current * (R0 + R1 + R2))
    assert measured == pytest.approx(CAPACITY_AH * (soc_full - soc_empty), rel=0.01)
    # nothing left the cell's window, and the current really flowed
    assert columns["Voltage / V"].min() >= 2.5 - 0.02
    assert columns["Voltage / V"].max() <= 4.2 + 0.005
    assert columns["Current / A"].min() == pytest.approx(-CAPACITY_AH / 3)
    assert columns["Cell.SOC"].min() > 0.0


def test_the_cv_hold_stays_within_5_mV_and_tapers(build: BuildFmu) -> None:
    result = simulate(build, "Charge at 1C until 4.1 V\nHold at 4.1 V until C/20\n")
    assert result.end_cause == "procedure_complete", result.reason
    cv = result.columns["Step ID"] == 1
    voltage = result.columns["Voltage / V"][cv]
    current = result.columns["Current / A"][cv]
    assert np.abs(voltage[1:] - 4.1).max() < 0.005
    assert current[-1] <= CAPACITY_AH / 20 + 1e-9
    assert current[0] > 4.0  # it started at the CC current and tapered


def test_a_pulse_from_rest_measures_r0_within_2_percent(build: BuildFmu) -> None:
    result = simulate(build, "Rest for 2 hours\nPulse discharge at 2C for 10 s\nRest for 10 minutes\n")
    assert result.end_cause == "procedure_complete", result.reason
    step = result.columns["Step ID"]
    voltage = result.columns["Voltage / V"]
    before = voltage[np.flatnonzero(step == 0)[-1]]
    during = voltage[np.flatnonzero(step == 1)[0]]
    assert (before - during) / (2 * CAPACITY_AH) == pytest.approx(R0, rel=0.02)


def test_a_safety_limit_ends_the_run_as_failed_naming_the_limit_value_and_time(build: BuildFmu) -> None:
    text = """
    # abuse: true
    # safety: max_voltage_V=4.25 delay_s=1
    Charge at 1C for 2 hours   # tags=abuse
    """
    result = simulate(build, text)
    assert result.status == "failed"
    assert result.end_cause == "safety_limit"
    assert "max_voltage_V = 4.25 V" in result.reason and "test time" in result.reason
    voltage = result.columns["Voltage / V"]
    first_above = int(np.argmax(voltage > 4.25))
    test_time = result.columns["Test Time / s"]
    assert test_time[-1] == pytest.approx(test_time[first_above] + 1.0)  # held for the 1 s delay
    assert f"{test_time[-1]:.10g} s" in result.reason


def test_a_procedure_that_does_not_end_in_time_fails_with_timeout(build: BuildFmu) -> None:
    result = simulate(build, "Rest for 2 hours\n", limit_s=600.0)
    assert result.status == "failed" and result.end_cause == "timeout"
    assert "time limit of 600 s" in result.reason

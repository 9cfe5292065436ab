"""Test procedures run in closed loop on real FMUs: the physics a battery engineer checks.

Each test runs on three FMU sets; the first two differ in every name, unit and convention the port
roles map, the third is the first scaled to a module:

* ``reference``: a cycler channel driving an equivalent-circuit cell (``Cycler/current_setpoint`` in
  A, positive = discharge; ``Cell/V`` in V; ``Cell/T`` in K; the ambient ``Cell/T_ambient_K`` a
  tunable parameter in K), an NMC cell of 5 Ah, R0 15 mOhm;
* ``lfp``: one LFP cell FMU ``Akku`` (``i_mA`` in mA, positive = charge; ``u_mV`` in mV;
  ``soc_pct`` in %; ``t_cell_degC`` and the ambient *input* ``t_amb_degC`` in degC), 2.5 Ah,
  R_series 20 mOhm;
* ``module``: the reference set with the parameters the reference Digital Twin's model registry
  chooses for a 12s4p module of 20 Ah whose cells span 3.0..4.3 V (``series_cells`` 12, the OCV
  window stretched, R0 45 mOhm, the cycler's limit above the pulse rating), built with those
  start values.

They run the IEC 62660-1-style capacity test, a DCIR pulse, a CV hold, a safety trip, an ambient
set-point and a timeout; the expected values come from each cell's parameters (its model
description's start values) and an independent copy of its OCV table, not from the simulation.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from fastlims.benches.cosim import CosimSystem, RunResult, SimulationSpec, run
from fastlims.benches.cosim.spec import ProcedureRun
from fastlims.messaging.schemas import UutRatingsMessage
from fastlims.peers.model_registry import choose
from fastlims.procedures.compiler import compile_procedure
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.resolve import resolve
from fastlims.procedures.text import load

from .conftest import BuildFmu
from .cosim_testkit import BATTERY_CELL, LFP_CELL, CellModel, battery_cell_model, cell_system, lfp_system


@dataclass(frozen=True)
class CellSet:
    """One Digital Twin's FMU set as a procedure sees it, and what its tests expect of it."""

    name: str
    system: Callable[..., CosimSystem]  # (build, fmi_version, *, cell=model) -> system
    model: str  # the cell FMU's model (its fault variants are model + "_error", ...)
    ports: dict[str, str]  # UUT_ports
    current_sign: str
    ratings: UutRatings
    start: dict[str, float]  # half charged, in the FMU's own parameter and unit
    soc_column: str  # the SOC signal in the results
    soc_per_fraction: float  # 1 for a fraction, 100 for %
    cell: CellModel
    top_V: float  # the OCV of a full cell: where the capacity test's CV holds
    cv_V: float  # the CV test's set-point
    safety_max_V: float  # the safety test's tightened max_voltage_V


REFERENCE = CellSet(
    name="reference",
    system=cell_system,
    model="battery_cell",
    ports={
        "current": "Cycler/current_setpoint",
        "voltage": "Cell/V",
        "temperature": "Cell/T",
        "soc": "Cell/SOC",
        "ambient_temperature": "Cell/T_ambient_K",
    },
    current_sign="discharge_positive",
    ratings=UutRatings(
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
    ),
    start={"Cell.SOC0": 0.5},
    soc_column="Cell.SOC",
    soc_per_fraction=1.0,
    cell=BATTERY_CELL,
    top_V=4.2,
    cv_V=4.1,
    safety_max_V=4.25,
)
LFP = CellSet(
    name="lfp",
    system=lfp_system,
    model="lfp_cell",
    ports={
        "current": "Akku/i_mA",
        "voltage": "Akku/u_mV",
        "temperature": "Akku/t_cell_degC",
        "soc": "Akku/soc_pct",
        "ambient_temperature": "Akku/t_amb_degC",
    },
    current_sign="charge_positive",
    ratings=UutRatings(
        code="lfp-cell",
        chemistry="LFP/graphite",
        format="cell",
        series_count=1,
        parallel_count=1,
        nominal_capacity_Ah=2.5,
        nominal_voltage_V=3.2,
        min_voltage_V=2.0,
        max_voltage_V=3.65,
        max_charge_current_A=2.5,
        max_discharge_current_A=7.5,
        max_pulse_current_A=15.0,
        min_temperature_C=-20.0,
        max_temperature_C=60.0,
    ),
    start={"Akku.soc_init_pct": 50.0},
    soc_column="Akku.soc_pct",
    soc_per_fraction=100.0,
    cell=LFP_CELL,
    top_V=3.6,  # the model's OCV at 100 %: a CV at the rated 3.65 V would over-charge it
    cv_V=3.5,
    safety_max_V=3.643,  # between two 1 s samples, so the expected first sample above it is unambiguous
)
MODULE_RATINGS = UutRatings(
    code="ref-module",
    chemistry="NMC/Li-metal",
    format="module",
    series_count=12,
    parallel_count=4,
    nominal_capacity_Ah=20.0,
    nominal_voltage_V=44.4,
    min_voltage_V=36.0,
    max_voltage_V=51.6,
    max_charge_current_A=20.0,
    max_discharge_current_A=60.0,
    max_pulse_current_A=120.0,
    min_temperature_C=-20.0,
    max_temperature_C=60.0,
)
MODULE_CHOICE = choose(UutRatingsMessage.model_validate(dataclasses.asdict(MODULE_RATINGS)))
MODULE = CellSet(
    name="module",
    system=functools.partial(cell_system, start_values=MODULE_CHOICE.start_values),
    model="battery_cell",
    ports=REFERENCE.ports,
    current_sign="discharge_positive",
    ratings=MODULE_RATINGS,
    start={"Cell.SOC0": 0.5},
    soc_column="Cell.SOC",
    soc_per_fraction=1.0,
    cell=battery_cell_model(MODULE_CHOICE.start_values["Cell"]),
    top_V=51.6,
    cv_V=50.0,
    safety_max_V=51.3,
)
SETS = [REFERENCE, LFP, MODULE]
each_set = pytest.mark.parametrize("cell_set", SETS, ids=[s.name for s in SETS])


def simulate(
    build: BuildFmu,
    cell_set: CellSet,
    text: str,
    *,
    fmi: str = "2.0",
    step: float = 1.0,
    limit_s: float = 200_000.0,
    model: str | None = None,
    parameters: dict[str, float] | None = None,
) -> RunResult:
    parsed = load(text)
    resolved = resolve(parsed.procedure, cell_set.ratings, lines=parsed.lines)
    program = compile_procedure(resolved)
    procedure = ProcedureRun(program=program, ports=cell_set.ports, current_sign=cell_set.current_sign)
    spec = SimulationSpec(
        step_size=step,
        stop_time=limit_s,
        procedure=procedure,
        parameters={**cell_set.start, **(parameters or {})},
    )
    with cell_set.system(build, fmi, cell=model or cell_set.model) as system:
        return run(system, spec)


def assert_rows_are_the_controllers(result: RunResult) -> None:
    """Every kept row is a point the procedure's controller saw: its own test time, the time of the row."""
    test_time = result.columns["Test Time / s"]
    assert np.array_equal(test_time, result.columns["time"])  # the runs start at t=0
    assert np.all(np.diff(test_time) > 0)


@each_set
@pytest.mark.parametrize("fmi", ["2.0", "3.0"])
def test_the_capacity_test_measures_the_cells_capacity_within_1_percent(
    build: BuildFmu, cell_set: CellSet, fmi: str
) -> None:
    cut_off = cell_set.ratings.min_voltage_V
    result = simulate(
        build,
        cell_set,
        f"""
        Charge at C/3 until {cell_set.top_V} V
        Hold at {cell_set.top_V} V until C/20
        Rest for 1 hour
        Discharge at C/3 until {cut_off} V
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
    # Analytically: the CV ends with C/20 flowing at the set-point, the RC branches settled at that
    # current; the discharge ends at the cut-off with C/3 flowing and the branches settled at it.
    cell = cell_set.cell
    taper, load_current = cell.capacity_Ah / 20, cell.capacity_Ah / 3
    soc_full = cell.soc_at(cell_set.top_V - taper * cell.r_total)
    soc_empty = cell.soc_at(cut_off + load_current * cell.r_total)
    expected = cell.capacity_Ah * (soc_full - soc_empty)
    assert measured == pytest.approx(expected, rel=0.01)
    # nothing left the cell's window, and the current really flowed
    assert columns["Voltage / V"].min() >= cut_off - 0.02 * cell_set.ratings.series_count  # a sample late
    assert columns["Voltage / V"].max() <= cell_set.top_V + 0.005
    assert columns["Current / A"].min() == pytest.approx(-cell.capacity_Ah / 3)
    assert columns[cell_set.soc_column].min() > 0.0
    # the SOC the FMU reports, in its own unit, moved by what was measured
    soc = columns[cell_set.soc_column] / cell_set.soc_per_fraction
    assert soc[first] - soc[after] == pytest.approx(measured / cell.capacity_Ah, rel=1e-6)


@each_set
def test_the_cv_hold_stays_within_5_mV_and_tapers(build: BuildFmu, cell_set: CellSet) -> None:
    target, capacity = cell_set.cv_V, cell_set.cell.capacity_Ah
    result = simulate(build, cell_set, f"Charge at 1C until {target} V\nHold at {target} V until C/20\n")
    assert result.end_cause == "procedure_complete", result.reason
    cv = result.columns["Step ID"] == 1
    voltage = result.columns["Voltage / V"][cv]
    current = result.columns["Current / A"][cv]
    assert np.abs(voltage[1:] - target).max() < 0.005
    assert current[-1] <= capacity / 20 + 1e-9
    assert current[0] > 0.8 * capacity  # it started at the CC current (1C) and tapered


@each_set
def test_a_pulse_from_rest_measures_r0_within_2_percent(build: BuildFmu, cell_set: CellSet) -> None:
    capacity = cell_set.cell.capacity_Ah
    result = simulate(build, cell_set, "Rest for 2 hours\nPulse discharge at 2C for 10 s\nRest for 10 minutes\n")
    assert result.end_cause == "procedure_complete", result.reason
    step = result.columns["Step ID"]
    voltage = result.columns["Voltage / V"]
    before = voltage[np.flatnonzero(step == 0)[-1]]
    during = voltage[np.flatnonzero(step == 1)[0]]
    assert (before - during) / (2 * capacity) == pytest.approx(cell_set.cell.r0, rel=0.02)
    assert result.columns["Current / A"][np.flatnonzero(step == 1)[0]] == pytest.approx(-2 * capacity)


@each_set
def test_a_safety_limit_ends_the_run_as_failed_naming_the_limit_value_and_time(
    build: BuildFmu, cell_set: CellSet
) -> None:
    limit = cell_set.safety_max_V
    text = f"""
    # abuse: true
    # safety: max_voltage_V={limit} delay_s=1
    Charge at 1C for 2 hours   # tags=abuse
    """
    result = simulate(build, cell_set, text)
    assert result.status == "failed"
    assert result.end_cause == "safety_limit"
    assert f"max_voltage_V = {limit:g} V" in result.reason and "test time" in result.reason
    voltage = result.columns["Voltage / V"]
    first_above = int(np.argmax(voltage > limit))
    test_time = result.columns["Test Time / s"]
    assert test_time[-1] == pytest.approx(test_time[first_above] + 1.0)  # held for the 1 s delay
    assert f"{test_time[-1]:.10g} s" in result.reason
    # At the right time: the first 1 s sample above the limit from the cell's own equations (the
    # charge starts after the opening sample at t=0 and the voltage answers at once through R0).
    cell = cell_set.cell
    elapsed = np.arange(0.0, 7200.0)
    expected = cell.voltage(elapsed, cell.capacity_Ah, soc0=0.5)
    first_expected = int(np.argmax(expected > limit))
    assert np.min(np.abs(expected - limit)) > 1e-5  # no sample sits on the limit: the answer is unambiguous
    assert test_time[first_above] == 1.0 + first_expected
    assert test_time[-1] == 2.0 + first_expected


@each_set
@pytest.mark.parametrize("fmi", ["2.0", "3.0"])
def test_an_ambient_set_point_reaches_the_fmu_and_the_ambient_column(
    build: BuildFmu, cell_set: CellSet, fmi: str
) -> None:
    """The chamber set to 40 degC: the cell at rest warms from 25 degC as T = 40 - 15 exp(-t/tau),
    its thermal time constant from its parameters, whatever unit and causality the ambient port has
    (the reference's a tunable parameter in K, the LFP cell's an input in degC)."""
    result = simulate(build, cell_set, "Set ambient to 40 degC and rest for 2 hours\n", fmi=fmi)
    assert result.end_cause == "procedure_complete", result.reason
    ambient = result.columns["Ambient Temperature / degC"]
    temperature = result.columns["Temperature T1 / degC"]
    test_time = result.columns["Test Time / s"]
    assert ambient[0] == pytest.approx(25.0)  # the opening sample: the chamber as the model starts
    assert np.all(ambient[1:] == 40.0)
    assert temperature[0] == pytest.approx(25.0) and temperature[1] == pytest.approx(25.0)
    since = test_time[1:] - test_time[1]  # the set-point holds from the first step on
    expected = 40.0 - 15.0 * np.exp(-since / cell_set.cell.thermal_tau_s)
    assert np.max(np.abs(temperature[1:] - expected)) < 1e-6
    assert temperature[-1] == pytest.approx(40.0, abs=0.01)
    assert result.columns["Current / A"].max() == 0.0 and result.columns["Current / A"].min() == 0.0


@each_set
def test_a_procedure_that_does_not_end_in_time_fails_with_timeout(build: BuildFmu, cell_set: CellSet) -> None:
    result = simulate(build, cell_set, "Rest for 2 hours\n", limit_s=600.0)
    assert result.status == "failed" and result.end_cause == "timeout"
    assert "time limit of 600 s" in result.reason
    # The run's last point (t=600 s, an exchange without a step) is not one the controller saw.
    assert_rows_are_the_controllers(result)
    assert result.columns["Voltage / V"].min() > 3.0  # no zeros from an unwritten row
    assert result.columns["Test Time / s"][-1] == 599.0


@each_set
def test_an_fmu_failing_mid_procedure_ends_the_run_with_its_reason(build: BuildFmu, cell_set: CellSet) -> None:
    """The rows kept are the points the controller saw; the failing point's BDF columns were never
    written, so it is not among them."""
    fault = f"{cell_set.ports['voltage'].split('/')[0]}.fault_time_s"
    result = simulate(
        build,
        cell_set,
        "Discharge at 1C for 1 hour\n",
        model=f"{cell_set.model}_error",
        parameters={fault: 30.5},
    )
    assert result.status == "failed" and result.end_cause == "error"
    assert "doStep at t=30 s" in result.reason and "deliberate error" in result.reason
    assert_rows_are_the_controllers(result)
    assert result.columns["Test Time / s"][-1] == 29.0
    assert result.columns["Current / A"][-1] == pytest.approx(-cell_set.cell.capacity_Ah)

"""The battery cell FMU against analytic solutions and an independent numeric integration, FMI 2 and 3 alike."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import fmpy
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from fastlims.peers.fmus import FMI_VERSIONS

from .fmu_testkit import Cosim, FMICallException, ocv_reference

pytestmark = pytest.mark.parametrize("fmi_version", FMI_VERSIONS)

FmuPath = Callable[[str, str], Path]

# The FMU's defaults, restated so a silent change of a default shows up here.
CAPACITY_AH = 5.0
R0, R1, C1, R2, C2 = 0.015, 0.010, 2000.0, 0.008, 50000.0
HEAT_CAPACITY, THERMAL_RESISTANCE = 70.0, 10.0
ROOM_K = 298.15


def cell(fmu: FmuPath, fmi_version: str) -> Cosim:
    return Cosim(fmu("battery_cell", fmi_version), instance_name="cell")


def test_the_defaults_describe_a_5_Ah_nmc_cell_at_room_temperature(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version).initialize() as c:
        assert c.get("capacity_Ah", "R0_ohm", "R1_ohm", "C1_F", "R2_ohm", "C2_F") == [CAPACITY_AH, R0, R1, C1, R2, C2]
        assert c.get("series_cells", "cell_OCV_min_V", "cell_OCV_max_V") == [1.0, 2.5, 4.2]  # one cell, the table
        assert c.get("SOC", "T", "OCV", "V", "P", "heat_W") == [1.0, ROOM_K, 4.2, 4.2, 0.0, 0.0]


def test_one_c_discharge_for_half_an_hour_takes_half_the_charge(fmu: FmuPath, fmi_version: str) -> None:
    """Through fmpy.simulate_fmu with an input table, as a master would run it."""
    profile = np.array([(0.0, CAPACITY_AH), (1800.0, CAPACITY_AH)], dtype=[("time", float), ("I", float)])
    result = fmpy.simulate_fmu(
        str(fmu("battery_cell", fmi_version)), stop_time=1800.0, output_interval=1.0, input=profile,
        output=["SOC", "V", "OCV"],
    )  # fmt: skip
    assert result["time"][-1] == pytest.approx(1800.0)
    assert result["SOC"][-1] == pytest.approx(0.5, abs=1e-3)  # the bench issue's tolerance
    assert result["SOC"][-1] == pytest.approx(0.5, abs=1e-9)  # coulomb counting is exact here
    expected_soc = 1.0 - result["time"] / 3600.0
    assert np.max(np.abs(result["SOC"] - expected_soc)) < 1e-9
    assert result["OCV"][-1] == pytest.approx(ocv_reference(0.5), abs=1e-9)
    assert np.all(np.diff(result["V"]) < 0)  # discharging: the terminal voltage only falls


@pytest.mark.parametrize(
    ("capacity", "soc0", "current", "duration"), [(2.5, 0.9, 2.5, 1800.0), (50.0, 0.3, -25.0, 2880.0)]
)
def test_soc_follows_coulomb_counting_for_any_capacity_and_sign(
    fmu: FmuPath, fmi_version: str, capacity: float, soc0: float, current: float, duration: float
) -> None:
    with cell(fmu, fmi_version).initialize(capacity_Ah=capacity, SOC0=soc0, I=current) as c:
        c.run(duration, 7.5)
        assert c.value("SOC") == pytest.approx(soc0 - current * duration / 3600.0 / capacity, abs=1e-9)


def test_voltage_right_after_a_current_step_drops_by_i_times_r0(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version).initialize(SOC0=0.8) as c:
        c.run(60.0, 1.0)  # at rest: nothing moves
        assert c.get("SOC", "V") == [0.8, pytest.approx(ocv_reference(0.8), abs=1e-12)]
        c.set(I=10.0)  # direct feedthrough: visible before the next step
        expected = ocv_reference(0.8) - 10.0 * R0
        assert c.value("V") == pytest.approx(expected, rel=1e-6)
        assert c.value("V") == pytest.approx(expected, abs=1e-12)
        assert c.value("P") == pytest.approx(10.0 * expected, abs=1e-12)
        assert c.value("heat_W") == pytest.approx(100.0 * R0, abs=1e-12)


@pytest.mark.parametrize("branches", ["1RC", "2RC"])
@pytest.mark.parametrize("h", [1.0, 0.37, 5.0])
def test_rc_branches_charge_and_relax_exponentially(fmu: FmuPath, fmi_version: str, branches: str, h: float) -> None:
    """V = OCV(SOC) - I R0 - sum of v_k, with v_k = I R_k (1 - exp(-t/tau_k)) under current and
    v_k(t1) exp(-(t - t1)/tau_k) at rest; exact for any communication step."""
    r2 = R2 if branches == "2RC" else 0.0
    rc = [(R1, R1 * C1)] + ([(r2, r2 * C2)] if r2 else [])
    current, soc0, t_load = 5.0, 0.9, 60.0 * h  # whole steps

    def soc_at(t: float) -> float:
        return soc0 - current * min(t, t_load) / 3600.0 / CAPACITY_AH

    def branch_voltage(t: float) -> float:
        under_load = sum(current * r * (1.0 - math.exp(-min(t, t_load) / tau)) for r, tau in rc)
        if t <= t_load:
            return under_load
        return sum(current * r * (1.0 - math.exp(-t_load / tau)) * math.exp(-(t - t_load) / tau) for r, tau in rc)

    with cell(fmu, fmi_version).initialize(R2_ohm=r2, SOC0=soc0, I=current) as c:
        loaded = c.run(t_load, h, ("V",))
        c.set(I=0.0)
        relaxing = c.run(40.0 * h, h, ("V",))

    for t, v in loaded:
        assert v == pytest.approx(ocv_reference(soc_at(t)) - current * R0 - branch_voltage(t), abs=1e-9), t
    for t, v in relaxing:
        assert v == pytest.approx(ocv_reference(soc_at(t)) - branch_voltage(t), abs=1e-9), t
    # The relaxation is visible, not numerically negligible: the first RC branch alone gives tens of mV.
    assert ocv_reference(soc_at(t_load)) - relaxing[0, 1] > 0.01


def test_joule_heat_in_r0_warms_the_cell_exponentially_to_i2_r_rth(fmu: FmuPath, fmi_version: str) -> None:
    """With R1 = R2 = 0 the heat is the constant I^2 R0: T(t) = Ta + Q Rth (1 - exp(-t / (Cth Rth)))."""
    current = 20.0
    heat = current**2 * R0
    tau = HEAT_CAPACITY * THERMAL_RESISTANCE
    with cell(fmu, fmi_version).initialize(capacity_Ah=1000.0, R1_ohm=0.0, R2_ohm=0.0, I=current) as c:
        rows = c.run(10 * tau, 10.0, ("T", "heat_W"))
    expected = ROOM_K + heat * THERMAL_RESISTANCE * (1.0 - np.exp(-rows[:, 0] / tau))
    assert np.max(np.abs(rows[:, 1] - expected)) < 1e-9
    assert np.all(rows[:, 2] == pytest.approx(heat, abs=1e-12))
    assert rows[-1, 1] - ROOM_K == pytest.approx(heat * THERMAL_RESISTANCE, rel=1e-4)  # 6 K above ambient


def test_temperature_with_rc_branches_matches_an_independent_integration(fmu: FmuPath, fmi_version: str) -> None:
    """Heat from R0, R1 and R2 against scipy's integration of the same equations; the long-run rise is
    I^2 (R0 + R1 + R2) Rth."""
    current, t_ambient, t0 = 10.0, 288.15, 293.15

    def rhs(_t: float, y: np.ndarray) -> list[float]:
        v1, v2, temperature = y
        heat = current**2 * R0 + v1**2 / R1 + v2**2 / R2
        return [
            -v1 / (R1 * C1) + current / C1,
            -v2 / (R2 * C2) + current / C2,
            (heat - (temperature - t_ambient) / THERMAL_RESISTANCE) / HEAT_CAPACITY,
        ]

    times = np.arange(1.0, 6001.0, 1.0)
    reference = solve_ivp(rhs, (0.0, times[-1]), [0.0, 0.0, t0], t_eval=times, rtol=1e-11, atol=1e-12, method="DOP853")
    with cell(fmu, fmi_version).initialize(capacity_Ah=1000.0, T_ambient_K=t_ambient, T0_K=t0, I=current) as c:
        rows = c.run(6000.0, 1.0, ("T",))
    assert np.max(np.abs(rows[:, 1] - reference.y[2])) < 1e-6  # K (measured ~1e-7)
    assert rows[-1, 1] - t_ambient == pytest.approx(current**2 * (R0 + R1 + R2) * THERMAL_RESISTANCE, rel=2e-3)


def test_ambient_temperature_is_tunable_between_steps(fmu: FmuPath, fmi_version: str) -> None:
    tau = HEAT_CAPACITY * THERMAL_RESISTANCE
    with cell(fmu, fmi_version).initialize() as c:
        c.run(100.0, 10.0)
        assert c.value("T") == ROOM_K  # no current, no heat, no drift
        c.set(T_ambient_K=ROOM_K + 10.0)
        rows = c.run(700.0, 10.0, ("T",))
    expected = ROOM_K + 10.0 * (1.0 - np.exp(-(rows[:, 0] - 100.0) / tau))
    assert np.max(np.abs(rows[:, 1] - expected)) < 1e-9


def test_over_discharge_is_an_error_at_the_time_soc_would_go_negative(fmu: FmuPath, fmi_version: str) -> None:
    # SOC 0.01 of 5 Ah at 5 A lasts 36 s.
    with cell(fmu, fmi_version).initialize(SOC0=0.01, I=5.0) as c:
        c.run(36.0, 1.0)
        assert c.value("SOC") == pytest.approx(0.0, abs=1e-9)
        with pytest.raises(FMICallException, match="DoStep failed with status 3"):
            c.step(1.0)
        (message,) = c.errors()
        assert "over-discharged at t=36 s" in message
        assert "valid for SOC in [0, 1]" in message
        assert 0.0 <= c.value("SOC") < 1e-6  # outputs remain readable for the report
        with pytest.raises(FMICallException):
            c.step(1.0)  # no stepping on after an error


def test_over_charge_is_an_error_too(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version).initialize(SOC0=1.0, I=-1.0) as c:
        with pytest.raises(FMICallException):
            c.step(1.0)
        assert "over-charged at t=0 s" in c.errors()[0]


def test_every_meaningless_parameter_is_reported_at_the_end_of_initialization(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version) as c:
        c.instantiate()
        c.enter_initialization()
        c.set(capacity_Ah=0.0, SOC0=1.5, R1_ohm=0.01, C1_F=0.0)
        with pytest.raises(FMICallException):
            c.exit_initialization()
        assert c.errors() == [
            "cell: capacity_Ah must be > 0, got 0",
            "cell: C1_F must be > 0 when R1_ohm > 0, got 0",
            "cell: SOC0 must be in [0, 1], got 1.5",
        ]


def test_series_cells_multiply_the_cell_ocv_and_the_other_parameters_stay_the_whole_batterys(
    fmu: FmuPath, fmi_version: str
) -> None:
    """A 12s4p module of the 5 Ah cell: 20 Ah, R0 = 15 mOhm x 12 / 4; its OCV is 12 cells' and a
    current step drops the terminal voltage by I x R0 (the whole battery's R0, not per cell)."""
    r0 = R0 * 12 / 4
    with cell(fmu, fmi_version).initialize(series_cells=12, capacity_Ah=20.0, R0_ohm=r0, SOC0=0.8) as c:
        assert c.get("OCV", "V") == [pytest.approx(12 * ocv_reference(0.8), abs=1e-12)] * 2
        c.set(I=20.0)
        assert c.value("V") == pytest.approx(12 * ocv_reference(0.8) - 20.0 * r0, abs=1e-12)
        c.run(1800.0, 5.0)
        assert c.value("SOC") == pytest.approx(0.8 - 20.0 * 1800.0 / 3600.0 / 20.0, abs=1e-9)
        assert c.value("OCV") == pytest.approx(12 * ocv_reference(0.3), abs=1e-9)  # SOC after 360 sub-steps


@pytest.mark.parametrize("soc", [0.0, 0.025, 0.5, 0.93, 1.0])
def test_the_cell_ocv_window_stretches_the_table_linearly(fmu: FmuPath, fmi_version: str, soc: float) -> None:
    """A cell with a 3.0..4.3 V window (Gen4): the table's shape, its ends moved."""
    expected = 3.0 + (ocv_reference(soc) - 2.5) * (4.3 - 3.0) / (4.2 - 2.5)
    with cell(fmu, fmi_version).initialize(cell_OCV_min_V=3.0, cell_OCV_max_V=4.3, SOC0=soc, series_cells=2) as c:
        assert c.value("OCV") == pytest.approx(2 * expected, abs=1e-12)
    if soc in (0.0, 1.0):
        assert expected == pytest.approx(3.0 if soc == 0.0 else 4.3, abs=1e-15)


def test_a_meaningless_series_count_or_ocv_window_is_reported(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version) as c:
        c.instantiate()
        c.enter_initialization()
        c.set(series_cells=2.5, cell_OCV_min_V=4.3, cell_OCV_max_V=3.0)
        with pytest.raises(FMICallException):
            c.exit_initialization()
        assert c.errors() == [
            "cell: series_cells must be a whole number >= 1, got 2.5",
            "cell: cell_OCV_min_V must be > 0 and below cell_OCV_max_V, got 4.3 and 3",
        ]


def test_non_finite_inputs_are_refused(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version).initialize() as c:
        with pytest.raises(FMICallException):
            c.set(I=float("nan"))
        assert c.errors() == ["cell: 'I' must be finite, got nan"]


def test_a_step_must_start_where_the_last_one_ended(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version).initialize() as c:
        c.step(1.0)
        c.time = 5.0  # a master that lost track of time
        with pytest.raises(FMICallException):
            c.step(1.0)
        assert "doStep from t=5 s but the FMU is at t=1 s" in c.errors()[0]


def test_a_saved_state_replays_the_same_future(fmu: FmuPath, fmi_version: str) -> None:
    outputs = ("V", "SOC", "T", "heat_W")
    with cell(fmu, fmi_version).initialize(I=5.0) as c:
        c.run(30.0, 1.0)
        state = c.save_state()
        serialized = c.serialize(state)
        first = c.run(30.0, 1.0, outputs)
        c.restore_state(state, time=30.0)
        again = c.run(30.0, 1.0, outputs)
        c.restore_state(c.deserialize(serialized), time=30.0)
        from_bytes = c.run(30.0, 1.0, outputs)
        c.free_state(state)
    assert np.array_equal(first, again)
    assert np.array_equal(first, from_bytes)

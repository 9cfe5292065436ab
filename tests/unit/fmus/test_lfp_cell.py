"""The LFP cell FMU (mA positive = charge, mV, %, degC, ambient as an input) against analytic
solutions and an independent numeric integration, FMI 2 and 3 alike."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import fmpy
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from fastlims.peers.fmus import FMI_VERSIONS

from .fmu_testkit import LFP_OCV_PCT, Cosim, FMICallException, lfp_ocv_reference

pytestmark = pytest.mark.parametrize("fmi_version", FMI_VERSIONS)

FmuPath = Callable[[str, str], Path]

# The FMU's defaults, restated (in SI where the physics below uses them) so a silent change shows up here.
CAPACITY_MAH = 2500.0
CAPACITY_AS = CAPACITY_MAH * 3.6
R_SERIES, R_POL, TAU_POL = 0.020, 0.012, 60.0  # Ohm, Ohm, s
HEAT_CAPACITY, THERMAL_RESISTANCE = 80.0, 8.0  # J/K, K/W
ROOM_C = 25.0
# A capacity large enough that SOC stays inside [0, 100] % for the thermal tests.
HUGE_MAH = 1e7


def cell(fmu: FmuPath, fmi_version: str) -> Cosim:
    return Cosim(fmu("lfp_cell", fmi_version), instance_name="cell")


def test_the_defaults_describe_a_full_2500_mAh_lfp_cell_at_room_temperature(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version).initialize() as c:
        assert c.get("capacity_mAh", "r_series_mOhm", "r_pol_mOhm", "tau_pol_s", "c_th_J_per_K", "r_th_K_per_W") == [
            CAPACITY_MAH, 1000 * R_SERIES, 1000 * R_POL, TAU_POL, HEAT_CAPACITY, THERMAL_RESISTANCE,
        ]  # fmt: skip
        assert c.get("soc_pct", "t_cell_degC", "t_amb_degC", "ocv_mV", "u_mV", "heat_mW") == [
            100.0, ROOM_C, ROOM_C, pytest.approx(3600.0, abs=1e-9), pytest.approx(3600.0, abs=1e-9), 0.0,
        ]  # fmt: skip


def test_open_circuit_voltage_follows_the_lfp_table_with_steep_knees_around_a_flat_plateau(
    fmu: FmuPath, fmi_version: str
) -> None:
    """At rest u = OCV(SOC) of the independent table copy (linear in between); its shape as a battery
    engineer states it: 2.0 V empty, 3.6 V full, the 15-90 % plateau within 3.20-3.35 V, and each
    knee more than five times steeper than any part of the plateau."""
    socs = np.arange(0.0, 100.0 + 1e-9, 2.5)
    measured = []
    for soc in socs:
        with cell(fmu, fmi_version).initialize(soc_init_pct=soc) as c:
            c.run(10.0, 1.0)  # at rest nothing moves
            assert c.value("soc_pct") == soc
            assert c.value("u_mV") == pytest.approx(c.value("ocv_mV"), abs=1e-9)
            measured.append(c.value("ocv_mV") / 1000.0)
    assert measured == pytest.approx([lfp_ocv_reference(soc) for soc in socs], abs=1e-12)
    table = np.array(measured[::2])  # at 0, 5, ..., 100 %
    assert np.array_equal(socs[::2], LFP_OCV_PCT)
    slope = np.diff(table) / 5.0  # V per %
    assert table[0] == pytest.approx(2.0) and table[-1] == pytest.approx(3.6)
    assert np.all(slope > 0)
    plateau = (LFP_OCV_PCT >= 15) & (LFP_OCV_PCT <= 90)
    assert table[plateau].min() >= 3.2 - 1e-12 and table[plateau].max() <= 3.35 + 1e-12
    flat = slope[3:18].max()
    assert slope[0] > 5 * flat and slope[-1] > 5 * flat


def test_half_c_charge_for_an_hour_adds_half_the_charge(fmu: FmuPath, fmi_version: str) -> None:
    """Through fmpy.simulate_fmu with an input table in mA, positive = charge, as a master would run it."""
    profile = np.array([(0.0, 1250.0), (3600.0, 1250.0)], dtype=[("time", float), ("i_mA", float)])
    result = fmpy.simulate_fmu(
        str(fmu("lfp_cell", fmi_version)), stop_time=3600.0, output_interval=1.0, input=profile,
        start_values={"soc_init_pct": 20.0}, output=["soc_pct", "u_mV", "ocv_mV"],
    )  # fmt: skip
    assert result["time"][-1] == pytest.approx(3600.0)
    assert result["soc_pct"][-1] == pytest.approx(70.0, abs=1e-7)  # coulomb counting is exact here
    expected_soc = 20.0 + 50.0 * result["time"] / 3600.0
    assert np.max(np.abs(result["soc_pct"] - expected_soc)) < 1e-7
    assert result["ocv_mV"][-1] == pytest.approx(1000.0 * lfp_ocv_reference(70.0), abs=1e-6)
    assert np.all(np.diff(result["u_mV"][1:]) > 0)  # charging: the terminal voltage only rises


@pytest.mark.parametrize(
    ("capacity_mah", "soc0", "current_ma", "duration"),
    [(2500.0, 90.0, -2500.0, 1800.0), (50000.0, 30.0, 25000.0, 2880.0)],
)
def test_soc_follows_coulomb_counting_for_any_capacity_and_sign(
    fmu: FmuPath, fmi_version: str, capacity_mah: float, soc0: float, current_ma: float, duration: float
) -> None:
    with cell(fmu, fmi_version).initialize(capacity_mAh=capacity_mah, soc_init_pct=soc0, i_mA=current_ma) as c:
        c.run(duration, 7.5)
        # positive = charge: SOC rises with a positive current
        assert c.value("soc_pct") == pytest.approx(
            soc0 + 100.0 * current_ma * duration / 3600.0 / capacity_mah, abs=1e-7
        )


@pytest.mark.parametrize(("current_ma", "sign"), [(-5000.0, -1.0), (2500.0, 1.0)])
def test_voltage_right_after_a_current_step_moves_by_i_times_r_series(
    fmu: FmuPath, fmi_version: str, current_ma: float, sign: float
) -> None:
    with cell(fmu, fmi_version).initialize(soc_init_pct=50.0) as c:
        c.run(60.0, 1.0)
        rest = 1000.0 * lfp_ocv_reference(50.0)
        assert c.get("soc_pct", "u_mV") == [50.0, pytest.approx(rest, abs=1e-9)]
        c.set(i_mA=current_ma)  # direct feedthrough: visible before the next step
        current = current_ma / 1000.0
        assert c.value("u_mV") == pytest.approx(rest + 1000.0 * current * R_SERIES, abs=1e-9)
        assert sign * (c.value("u_mV") - rest) > 0  # a discharge pulls the voltage down, a charge lifts it
        assert c.value("heat_mW") == pytest.approx(1000.0 * current**2 * R_SERIES, abs=1e-9)


@pytest.mark.parametrize("h", [1.0, 0.37, 5.0])
def test_the_polarisation_branch_charges_and_relaxes_exponentially(fmu: FmuPath, fmi_version: str, h: float) -> None:
    """U = OCV(SOC) + I R_s + v_p, with v_p = I R_p (1 - exp(-t/tau)) under current and
    v_p(t1) exp(-(t - t1)/tau) at rest; exact for any communication step."""
    current, soc0, t_load = -5.0, 90.0, 60.0 * h  # a 2C discharge for whole steps

    def soc_at(t: float) -> float:
        return soc0 + 100.0 * current * min(t, t_load) / CAPACITY_AS

    def pol(t: float) -> float:
        under_load = current * R_POL * (1.0 - math.exp(-min(t, t_load) / TAU_POL))
        return under_load if t <= t_load else under_load * math.exp(-(t - t_load) / TAU_POL)

    with cell(fmu, fmi_version).initialize(soc_init_pct=soc0, i_mA=1000.0 * current) as c:
        loaded = c.run(t_load, h, ("u_mV",))
        c.set(i_mA=0.0)
        relaxing = c.run(40.0 * h, h, ("u_mV",))

    for t, u in loaded:
        assert u == pytest.approx(1000.0 * (lfp_ocv_reference(soc_at(t)) + current * R_SERIES + pol(t)), abs=1e-6), t
    for t, u in relaxing:
        assert u == pytest.approx(1000.0 * (lfp_ocv_reference(soc_at(t)) + pol(t)), abs=1e-6), t
    # The relaxation is visible, not numerically negligible: the branch holds back over 10 mV.
    assert 1000.0 * lfp_ocv_reference(soc_at(t_load)) - relaxing[0, 1] > 10.0


def test_joule_heat_in_r_series_warms_the_cell_exponentially_to_i2_r_rth(fmu: FmuPath, fmi_version: str) -> None:
    """With r_pol = 0 the heat is the constant I^2 R_s: T(t) = Ta + Q Rth (1 - exp(-t / (Cth Rth)))."""
    current = 10.0
    heat = current**2 * R_SERIES
    tau = HEAT_CAPACITY * THERMAL_RESISTANCE
    start = {"capacity_mAh": HUGE_MAH, "soc_init_pct": 50.0, "r_pol_mOhm": 0.0, "i_mA": 1000.0 * current}
    with cell(fmu, fmi_version).initialize(**start) as c:
        rows = c.run(10 * tau, 10.0, ("t_cell_degC", "heat_mW"))
    expected = ROOM_C + heat * THERMAL_RESISTANCE * (1.0 - np.exp(-rows[:, 0] / tau))
    assert np.max(np.abs(rows[:, 1] - expected)) < 1e-9
    assert np.all(rows[:, 2] == pytest.approx(1000.0 * heat, abs=1e-9))
    assert rows[-1, 1] - ROOM_C == pytest.approx(heat * THERMAL_RESISTANCE, rel=1e-4)  # 16 K above ambient


def test_temperature_with_the_polarisation_branch_matches_an_independent_integration(
    fmu: FmuPath, fmi_version: str
) -> None:
    """Heat from R_s and R_p against scipy's integration of the same equations; the long-run rise is
    I^2 (R_s + R_p) Rth."""
    current, t_ambient, t0 = -10.0, 15.0, 20.0

    def rhs(_t: float, y: np.ndarray) -> list[float]:
        v_pol, temperature = y
        heat = current**2 * R_SERIES + v_pol**2 / R_POL
        return [
            (current * R_POL - v_pol) / TAU_POL,
            (heat - (temperature - t_ambient) / THERMAL_RESISTANCE) / HEAT_CAPACITY,
        ]

    times = np.arange(1.0, 6001.0, 1.0)
    reference = solve_ivp(rhs, (0.0, times[-1]), [0.0, t0], t_eval=times, rtol=1e-11, atol=1e-12, method="DOP853")
    start = {"capacity_mAh": HUGE_MAH, "soc_init_pct": 50.0, "t_amb_degC": t_ambient, "t_cell_init_degC": t0}
    with cell(fmu, fmi_version).initialize(**start, i_mA=1000.0 * current) as c:
        rows = c.run(6000.0, 1.0, ("t_cell_degC",))
    assert np.max(np.abs(rows[:, 1] - reference.y[1])) < 1e-6  # K
    assert rows[-1, 1] - t_ambient == pytest.approx(current**2 * (R_SERIES + R_POL) * THERMAL_RESISTANCE, rel=1e-4)


def test_the_ambient_temperature_is_an_input_the_cell_follows(fmu: FmuPath, fmi_version: str) -> None:
    """Set between steps like any input: at rest T = Ta + (T1 - Ta) exp(-(t - t1) / (Cth Rth))."""
    tau = HEAT_CAPACITY * THERMAL_RESISTANCE
    with cell(fmu, fmi_version).initialize(soc_init_pct=50.0) as c:
        c.run(100.0, 10.0)
        assert c.value("t_cell_degC") == ROOM_C  # no current, no heat, no drift
        c.set(t_amb_degC=40.0)
        warming = c.run(700.0, 10.0, ("t_cell_degC",))
        c.set(t_amb_degC=-10.0)
        t1, cell_at_t1 = c.time, c.value("t_cell_degC")
        cooling = c.run(700.0, 10.0, ("t_cell_degC",))
    assert np.max(np.abs(warming[:, 1] - (40.0 - 15.0 * np.exp(-(warming[:, 0] - 100.0) / tau)))) < 1e-9
    assert np.max(np.abs(cooling[:, 1] - (-10.0 + (cell_at_t1 + 10.0) * np.exp(-(cooling[:, 0] - t1) / tau)))) < 1e-9


def test_an_ambient_below_absolute_zero_fails_the_step(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version).initialize() as c:
        c.step(1.0)
        c.set(t_amb_degC=-300.0)
        with pytest.raises(FMICallException):
            c.step(1.0)
        assert c.errors() == ["cell: t_amb_degC must be above -273.15 degC, got -300 (at t=1 s)"]


def test_over_discharge_is_an_error_at_the_time_soc_would_go_negative(fmu: FmuPath, fmi_version: str) -> None:
    # 1 % of 2500 mAh at 2500 mA (1C discharge: negative) lasts 36 s.
    with cell(fmu, fmi_version).initialize(soc_init_pct=1.0, i_mA=-2500.0) as c:
        c.run(36.0, 1.0)
        assert c.value("soc_pct") == pytest.approx(0.0, abs=1e-7)
        expected = 2000.0 - 2500.0 * R_SERIES - 2500.0 * R_POL * (1 - math.exp(-36 / TAU_POL))  # mA * Ohm = mV
        assert c.value("u_mV") == pytest.approx(expected, abs=1e-6)
        with pytest.raises(FMICallException, match="DoStep failed with status 3"):
            c.step(1.0)
        (message,) = c.errors()
        assert "over-discharged at t=36 s" in message
        assert "positive = charge" in message and "valid for SOC in [0, 100] %" in message
        assert 0.0 <= c.value("soc_pct") < 1e-4  # outputs remain readable for the report
        with pytest.raises(FMICallException):
            c.step(1.0)  # no stepping on after an error


def test_over_charge_is_an_error_too(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version).initialize(soc_init_pct=100.0, i_mA=100.0) as c:
        with pytest.raises(FMICallException):
            c.step(1.0)
        assert "over-charged at t=0 s" in c.errors()[0]


def test_every_meaningless_parameter_is_reported_at_the_end_of_initialization(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version) as c:
        c.instantiate()
        c.enter_initialization()
        c.set(capacity_mAh=0.0, soc_init_pct=150.0, r_pol_mOhm=5.0, tau_pol_s=0.0, t_amb_degC=-280.0)
        with pytest.raises(FMICallException):
            c.exit_initialization()
        assert c.errors() == [
            "cell: capacity_mAh must be > 0, got 0",
            "cell: tau_pol_s must be > 0 when r_pol_mOhm > 0, got 0",
            "cell: soc_init_pct must be in [0, 100] %, got 150",
            "cell: t_amb_degC must be above -273.15 degC, got -280",
        ]


def test_non_finite_inputs_are_refused(fmu: FmuPath, fmi_version: str) -> None:
    with cell(fmu, fmi_version).initialize() as c:
        with pytest.raises(FMICallException):
            c.set(i_mA=float("nan"))
        with pytest.raises(FMICallException):
            c.set(t_amb_degC=float("inf"))
        assert c.errors() == ["cell: 'i_mA' must be finite, got nan", "cell: 't_amb_degC' must be finite, got inf"]


def test_a_saved_state_replays_the_same_future(fmu: FmuPath, fmi_version: str) -> None:
    outputs = ("u_mV", "soc_pct", "t_cell_degC", "heat_mW")
    with cell(fmu, fmi_version).initialize(soc_init_pct=50.0, i_mA=-5000.0) as c:
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

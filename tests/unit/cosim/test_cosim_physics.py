"""The two-FMU battery + cycler system gives the physically expected result, FMI 2 and 3 alike,
checked against analytic or independently computed references."""

from __future__ import annotations

import numpy as np
import pytest

from fastlims.benches.cosim import SimulationSpec, load_system, run

from .conftest import BuildFmu
from .cosim_testkit import C1, C2, CAPACITY_AH, R0, R1, R2, cell_system, constant_current, ocv, profile

VERSIONS = ("2.0", "3.0")


def reference_cell(
    times: np.ndarray, current: np.ndarray, *, soc0: float = 1.0, r0: float = R0, r1: float = R1, r2: float = R2
) -> dict[str, np.ndarray]:
    """An independent equivalent-circuit cell: ``current[k]`` held from ``times[k]`` to ``times[k+1]``,
    SOC by coulomb counting, each RC branch by its exact exponential solution."""
    soc = np.empty_like(times)
    v1 = np.zeros_like(times)
    v2 = np.zeros_like(times)
    soc[0] = soc0
    for k in range(len(times) - 1):
        h = times[k + 1] - times[k]
        soc[k + 1] = soc[k] - current[k] * h / (3600.0 * CAPACITY_AH)
        v1[k + 1] = current[k] * r1 + (v1[k] - current[k] * r1) * np.exp(-h / (r1 * C1)) if r1 else 0.0
        v2[k + 1] = current[k] * r2 + (v2[k] - current[k] * r2) * np.exp(-h / (r2 * C2)) if r2 else 0.0
    return {"SOC": soc, "V": ocv(soc) - current * r0 - v1 - v2, "v1": v1, "v2": v2}


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_constant_current_discharge_follows_coulomb_counting(build: BuildFmu, fmi_version: str) -> None:
    with cell_system(build, fmi_version) as system:
        result = run(system, SimulationSpec(step_size=1.0, stop_time=1800.0, parameters=constant_current(5.0)))
    assert result.status == "completed", result.reason
    assert result.end_cause == "stop_time" and result.stopped_at == 1800.0 and result.steps == 1800
    t = result.columns["time"]
    np.testing.assert_array_equal(t, np.arange(1801.0))
    # 5 A from a 5 Ah cell: SOC falls by 1/3600 per second, exactly.
    np.testing.assert_allclose(result.columns["Cell.SOC"], 1.0 - t / 3600.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(result.columns["Cell.I"], 5.0)
    assert result.columns["Cycler.charge_Ah"][-1] == pytest.approx(2.5, abs=1e-12)
    assert result.units["Cell.V"] == "V" and result.units["Cell.SOC"] == "1" and result.units["time"] == "s"


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_current_pulse_gives_the_r0_drop_then_rc_relaxation(build: BuildFmu, fmi_version: str) -> None:
    """0 A for 10 s, 5 A for 100 s, rest to 400 s: V drops by I·R0 at the step, follows the 2RC
    response during the pulse and relaxes with the two time constants after it."""
    pulse = profile("Cycler/current_setpoint", [(0, 0.0), (10, 5.0), (110, 0.0), (400, 0.0)])
    spec = SimulationSpec(step_size=1.0, profiles=[pulse], profile_interpolation="previous")
    with cell_system(build, fmi_version) as system:
        result = run(system, spec)
    assert result.status == "completed" and result.end_cause == "profile_end" and result.stopped_at == 400.0
    t, v, current = result.columns["time"], result.columns["Cell.V"], result.columns["Cell.I"]
    np.testing.assert_array_equal(current, np.where((t >= 10) & (t < 110), 5.0, 0.0))
    # At the step the RC branches have not moved yet: the whole drop is across R0.
    assert v[9] == pytest.approx(4.2, abs=1e-12)
    assert v[9] - v[10] == pytest.approx(5.0 * R0, abs=1e-12)
    # Relaxation after the pulse: V = OCV(SOC_end) - v1(110) e^{-(t-110)/tau1} - v2(110) e^{-(t-110)/tau2}.
    after = t >= 110
    soc_end = 1.0 - 5.0 * 100.0 / (3600.0 * CAPACITY_AH)
    v1_end = 5.0 * R1 * (1 - np.exp(-100.0 / (R1 * C1)))
    v2_end = 5.0 * R2 * (1 - np.exp(-100.0 / (R2 * C2)))
    relaxed = (
        ocv(soc_end) - v1_end * np.exp(-(t[after] - 110) / (R1 * C1)) - v2_end * np.exp(-(t[after] - 110) / (R2 * C2))
    )
    np.testing.assert_allclose(v[after], relaxed, rtol=0, atol=1e-9)
    # The whole trajectory against the independent cell.
    reference = reference_cell(t, current)
    np.testing.assert_allclose(result.columns["Cell.SOC"], reference["SOC"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(v, reference["V"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_profile_in_milliamps_is_interpolated_and_converted_to_amps(build: BuildFmu, fmi_version: str) -> None:
    ramp = profile("Cycler/current_setpoint", [(0, 0.0), (100, 10_000.0)], unit="mA")
    with cell_system(build, fmi_version) as system:
        result = run(system, SimulationSpec(step_size=0.5, profiles=[ramp]))
    t = result.columns["time"]
    assert result.status == "completed" and t[-1] == 100.0
    np.testing.assert_allclose(result.columns["Cycler.current_setpoint"], t / 10.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.columns["Cell.I"], t / 10.0, rtol=0, atol=1e-12)
    assert result.units["Cycler.current_setpoint"] == "A"
    # Each value is held over its step: SOC(100) = 1 - sum(I_k h) / (3600 C).
    held = np.sum(t[:-1] / 10.0 * 0.5)
    assert result.columns["Cell.SOC"][-1] == pytest.approx(1.0 - held / (3600.0 * CAPACITY_AH), abs=1e-12)


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_initial_values_are_propagated_before_the_first_step(build: BuildFmu, fmi_version: str) -> None:
    """FMPy's SSP simulation starts every connector at 0.0; here the first step already sees 3 A."""
    constant = profile("Cycler/current_setpoint", [(0, 3.0), (10, 3.0)])
    with cell_system(build, fmi_version) as system:
        result = run(system, SimulationSpec(step_size=1.0, profiles=[constant]))
    assert result.columns["Cell.I"][0] == 3.0
    assert result.columns["Cell.V"][0] == pytest.approx(4.2 - 3.0 * R0, abs=1e-12)
    assert result.columns["Cell.SOC"][1] == pytest.approx(1.0 - 3.0 / (3600.0 * CAPACITY_AH), abs=1e-15)


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_doe_parameters_are_applied_by_bare_and_qualified_name(build: BuildFmu, fmi_version: str) -> None:
    parameters = {"capacity_Ah": 2.0, "Cell.R0_ohm": 0.05, "current_A": 4.0, "mode": 1, "Cell.R1_ohm": 0.0}
    with cell_system(build, fmi_version) as system:
        result = run(system, SimulationSpec(step_size=1.0, stop_time=60.0, parameters=parameters))
    assert result.parameters == {
        "Cell.capacity_Ah": 2.0, "Cell.R0_ohm": 0.05, "Cycler.current_A": 4.0, "Cycler.mode": 1, "Cell.R1_ohm": 0.0,
    }  # fmt: skip
    t = result.columns["time"]
    np.testing.assert_allclose(result.columns["Cell.SOC"], 1.0 - 4.0 * t / (3600.0 * 2.0), rtol=0, atol=1e-12)
    assert result.columns["Cell.V"][0] == pytest.approx(4.2 - 4.0 * 0.05, abs=1e-12)


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_voltage_cut_off_from_the_test_procedure_stops_at_the_right_point(build: BuildFmu, fmi_version: str) -> None:
    variables = {
        "test_procedures": [
            "Discharge at 1C to the cut-off",
            {"signal": "Cell.V", "op": "<=", "value": 3412.3, "unit": "mV"},
        ],
    }
    parameters = {**constant_current(5.0), "Cell.SOC0": 0.3, "Cell.R1_ohm": 0.0, "Cell.R2_ohm": 0.0}
    spec = SimulationSpec.from_request(variables, step_size=1.0, duration_s=3600.0, parameters=parameters)
    with cell_system(build, fmi_version) as system:
        result = run(system, spec)
    # Independently: V = OCV(0.3 - t/3600) - 5 A * R0 on the 1 s grid; the first point at or below
    # 3.4123 V (a level between two points, so rounding cannot move it).
    grid = np.arange(0.0, 3601.0)
    expected = grid[np.argmax(ocv(0.3 - grid / 3600.0) - 5.0 * R0 <= 3.4123)]
    assert result.status == "completed" and result.end_cause == "stop_condition", result.reason
    assert abs(result.stopped_at - expected) <= 1.0 and result.stopped_at == expected
    v = result.columns["Cell.V"]
    assert v[-1] <= 3.4123 < v[-2]
    assert "Cell.V <= 3412.3 mV met at t=" in result.reason


@pytest.mark.parametrize("fmi_version", VERSIONS)
def test_jacobi_and_gauss_seidel_differ_by_one_step_of_the_upstream_signal(build: BuildFmu, fmi_version: str) -> None:
    """Source (1 A constant) -charge_Ah-> Cycler.current_setpoint, Cycler.current -> Cell.I. Jacobi feeds
    the cell q(t_k) over each step, Gauss-Seidel q(t_k+1): the SOC difference at T is exactly
    q(T)·h/(3600·C), so it shrinks with the step size."""
    fmus = {
        "Source": build("cycler", fmi_version, "Source"),
        "Cycler": build("cycler", fmi_version, "Cycler"),
        "Cell": build("battery_cell", fmi_version, "Cell"),
    }
    connections = [
        {"OutSignalReference": "Source/charge_Ah", "InSignalReference": "Cycler/current_setpoint"},
        {"OutSignalReference": "Cycler/current", "InSignalReference": "Cell/I"},
    ]
    T = 600.0
    differences = []
    with load_system(fmus, connections) as system:
        assert system.order == ("Source", "Cycler", "Cell")
        for h in (1.0, 0.5):
            soc = {}
            for algorithm in ("jacobi", "gauss_seidel"):
                spec = SimulationSpec(
                    step_size=h,
                    stop_time=T,
                    algorithm=algorithm,
                    parameters={"Source.mode": 1, "Source.current_A": 1.0},
                )
                result = run(system, spec)
                assert result.status == "completed", result.reason
                assert any("'Ah' but Cycler/current_setpoint expects 'A'" in note for note in result.notes)
                soc[algorithm] = result.columns["Cell.SOC"][-1]
            t = np.arange(0.0, T, h)
            jacobi = 1.0 - np.sum(t / 3600.0 * h) / (3600.0 * CAPACITY_AH)
            assert soc["jacobi"] == pytest.approx(jacobi, abs=1e-12)
            difference = soc["jacobi"] - soc["gauss_seidel"]
            assert difference == pytest.approx(T / 3600.0 * h / (3600.0 * CAPACITY_AH), rel=1e-9)
            differences.append(difference)
    assert differences[1] == pytest.approx(differences[0] / 2, rel=1e-9)

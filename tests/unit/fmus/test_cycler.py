"""The cycler FMU alone, and wired to the battery cell as the virtual bench will wire them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fastlims.peers.fmus import FMI_VERSIONS

from .fmu_testkit import Cosim, FMICallException, ocv_reference

FmuPath = Callable[[str, str], Path]
CONSTANT_CURRENT, FOLLOW_SETPOINT = 1, 2


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_follows_the_setpoint_immediately_and_integrates_the_charge(fmu: FmuPath, fmi_version: str) -> None:
    profile = [(10.0, 3.0), (5.0, -2.0), (20.0, 0.5), (1.0, 0.0)]  # (duration s, setpoint A)
    with Cosim(fmu("cycler", fmi_version)).initialize() as c:
        assert c.get("mode", "current", "charge_Ah") == [FOLLOW_SETPOINT, 0.0, 0.0]
        for duration, setpoint in profile:
            c.set(current_setpoint=setpoint)
            assert c.value("current") == setpoint  # direct feedthrough, no step needed
            c.run(duration, 0.5)
            assert c.value("current") == setpoint
        assert c.value("charge_Ah") == pytest.approx(sum(d * s for d, s in profile) / 3600.0, abs=1e-15)


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_constant_current_mode_ignores_the_setpoint_and_tunes_between_steps(fmu: FmuPath, fmi_version: str) -> None:
    with Cosim(fmu("cycler", fmi_version)).initialize(mode=CONSTANT_CURRENT, current_A=2.0, current_setpoint=9.0) as c:
        assert c.value("current") == 2.0
        c.run(10.0, 1.0)
        c.set(current_A=-1.0)
        assert c.value("current") == -1.0
        c.run(10.0, 1.0)
        assert c.value("charge_Ah") == pytest.approx((20.0 - 10.0) / 3600.0, abs=1e-15)


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_the_channel_limits_the_current_magnitude(fmu: FmuPath, fmi_version: str) -> None:
    with Cosim(fmu("cycler", fmi_version)).initialize(current_limit_A=20.0) as c:
        for setpoint, current in [(150.0, 20.0), (-150.0, -20.0), (19.5, 19.5)]:
            c.set(current_setpoint=setpoint)
            assert c.value("current") == current


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_an_unknown_mode_is_refused_at_the_end_of_initialization(fmu: FmuPath, fmi_version: str) -> None:
    with Cosim(fmu("cycler", fmi_version), instance_name="channel 3") as c:
        c.instantiate()
        c.enter_initialization()
        c.set(mode=3)
        with pytest.raises(FMICallException):
            c.exit_initialization()
        assert c.errors() == ["channel 3: mode must be 1 (constant_current) or 2 (follow_setpoint), got 3"]


@pytest.mark.parametrize(("cycler_version", "cell_version"), [("2.0", "2.0"), ("3.0", "3.0"), ("3.0", "2.0")])
def test_cycler_driving_the_cell_through_a_profile_gives_the_coulomb_counted_soc(
    fmu: FmuPath, cycler_version: str, cell_version: str
) -> None:
    """A Jacobi co-simulation of cycler.current -> cell.I over discharge, rest and charge phases."""
    profile = [(1800.0, 5.0), (600.0, 0.0), (720.0, -2.5)]  # (duration s, setpoint A): 1C, rest, C/2 charge
    h = 2.0
    with (
        Cosim(fmu("cycler", cycler_version), instance_name="cycler").initialize() as cycler,
        Cosim(fmu("battery_cell", cell_version), instance_name="cell").initialize(R2_ohm=0.0) as cell,
    ):
        first_step_drop = None
        for duration, setpoint in profile:
            for _ in range(round(duration / h)):
                cycler.set(current_setpoint=setpoint)
                current = cycler.value("current")
                before = cell.value("V")
                cell.set(I=current)
                if first_step_drop is None and current:
                    first_step_drop = before - cell.value("V")
                cycler.step(h)
                cell.step(h)
        charge_Ah = cycler.value("charge_Ah")
        soc, voltage, ocv = cell.get("SOC", "V", "OCV")

    expected_charge = sum(d * s for d, s in profile) / 3600.0  # 2.5 - 0.5 = 2.0 Ah
    assert charge_Ah == pytest.approx(expected_charge, abs=1e-12)
    assert soc == pytest.approx(1.0 - expected_charge / 5.0, abs=1e-9)  # 0.6
    assert first_step_drop == pytest.approx(5.0 * 0.015, abs=1e-12)  # I * R0 at the step
    assert ocv == pytest.approx(ocv_reference(0.6), abs=1e-12)
    # Charging: the terminal voltage sits above OCV by I R0 plus the (1RC) polarization.
    tau = 0.010 * 2000.0
    polarization = 2.5 * 0.010 * (1.0 - np.exp(-720.0 / tau))
    assert voltage == pytest.approx(ocv + 2.5 * 0.015 + polarization, abs=1e-9)

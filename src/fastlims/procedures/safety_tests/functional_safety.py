"""Functional safety of the battery management system (IEC 62619, UL 1973, UL 9540): overcharge
control of voltage and current, overheating and overdischarge control, operating limits, cooling
failure and EMC immunity of the safety controls."""

from __future__ import annotations

from fastlims.procedures.blocks import (
    ABUSE,
    BATTERIES,
    BMS_CHECK,
    HOUR,
    IEC_19,
    PACKS,
    UL1973,
    UL9540,
    TestSpec,
    builder,
    num,
    observation,
)
from fastlims.procedures.criteria import Criterion
from fastlims.procedures.model import Procedure
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.safety_tests.common import fixture, operating_region


def _fs_overcharge_voltage(r: UutRatings, std: str) -> Procedure:
    supply = 1.1 * r.max_voltage_V
    what = (
        f"overcharge control of voltage: charged from a supply set above the system's limit ({num(supply)} V); "
        "the BMS must stop charging before any cell exceeds its upper limit charging voltage."
    )
    b = builder(r, "FS-OVERCHARGE-VOLTAGE", std, "Overcharge control of voltage", what, abuse=True)
    b.safety(max_voltage_V=supply * 1.02)
    b.soak(25.0)
    b.standard_charge()
    b.to_soc(1.0, 0.5)
    b.rest(HOUR)
    b.line(
        f"Hold at {num(supply)} V limited to {num(r.max_charge_current_A)} A until C/20 or 4 hours",
        label="charge with the charger's voltage limit above the system's",
        tags=(ABUSE, BMS_CHECK),
    )
    b.rest(HOUR, label="post-test observation")
    return b.build()


def _fs_overcharge_voltage_criterion(r: UutRatings, std: str) -> Criterion:
    return Criterion(
        text="the BMS must stop charging before any cell exceeds its upper limit charging voltage.",
        check="max_voltage",
        threshold=r.max_voltage_V,
        observed="cell voltages (the data holds the terminal voltage: above MaxVoltageV some cell exceeded its limit)",
        source=std,
    )


def _fs_overcharge_current(r: UutRatings, std: str) -> Procedure:
    current = 1.2 * r.max_charge_current_A
    what = (
        f"overcharge control of current: charged at {num(current)} A (1.2x the maximum specified charging current); "
        "the BMS must detect it and reduce or interrupt the charging current."
    )
    b = builder(r, "FS-OVERCHARGE-CURRENT", std, "Overcharge control of current", what, abuse=True)
    b.safety(max_charge_current_A=max(current * 1.05, r.max_pulse_current_A))
    b.soak(25.0)
    b.standard_charge()
    b.to_soc(1.0, 0.5)
    b.rest(HOUR)
    b.line(
        f"Hold at {num(r.max_voltage_V)} V limited to {num(current)} A until {num(0.8 * r.max_charge_current_A)} A "
        "or 1 hours",
        label="charge above the maximum charging current",
        tags=(ABUSE, BMS_CHECK),
    )
    b.rest(HOUR, label="post-test observation")
    return b.build()


def _fs_overcharge_current_criterion(r: UutRatings, std: str) -> Criterion:
    return Criterion(
        text="the BMS must detect it and reduce or interrupt the charging current.",
        check="current_interrupted",
        observed="BMS actions (logged by the BMS)",
        source=std,
    )


def _fs_overheat(r: UutRatings, std: str) -> Procedure:
    ambient = r.max_temperature_C - 5.0
    what = (
        f"overheating control: charged at an elevated ambient ({num(ambient)} degC) with cooling disabled (set up "
        "before the run); the BMS must stop charging before cells exceed their upper limit temperature."
    )
    b = builder(r, "FS-OVERHEAT", std, "Overheating control", what, abuse=True)
    b.safety(max_temperature_C=r.max_temperature_C + 15.0)
    b.soak(25.0)
    b.discharge_to_min(label="start discharged")
    b.rest(HOUR)
    b.soak(ambient)
    b.line(
        f"Charge at {num(r.max_charge_current_A)} A until {num(r.max_voltage_V)} V",
        label="charge while hot",
        tags=(ABUSE, BMS_CHECK),
    )
    b.line(f"Hold at {num(r.max_voltage_V)} V until C/20 or 3 hours", label="charge while hot (CV)", tags=(ABUSE,))
    b.soak(25.0, seconds=HOUR)
    return b.build()


def _fs_overheat_criterion(r: UutRatings, std: str) -> Criterion:
    return Criterion(
        text="the BMS must stop charging before cells exceed their upper limit temperature.",
        check="max_temperature",
        threshold=r.max_temperature_C,
        observed="BMS actions (logged by the BMS); cell temperatures inside the pack",
        source=std,
    )


def _fs_overdischarge(r: UutRatings, std: str) -> Procedure:
    floor = 0.8 * r.min_voltage_V
    what = (
        f"over-discharge protection: discharged with the load's own cut-off disabled (down to {num(floor)} V, "
        "0.8x the end-of-discharge voltage); the protective controls must terminate the discharge."
    )
    b = builder(r, "FS-OVERDISCHARGE", std, "Over-discharge protection", what, abuse=True)
    b.safety(min_voltage_V=floor * 0.98)
    b.soak(25.0)
    b.standard_charge()
    b.rest(HOUR)
    b.discharge_to_min(label="normal discharge")
    b.line(
        f"Hold at {num(floor)} V limited to {b.current(1 / 3, 'discharge')} until C/50 or 2 hours",
        label="discharge past the end-of-discharge voltage",
        tags=(ABUSE, BMS_CHECK),
    )
    b.rest(HOUR, label="post-test observation")
    return b.build()


def _fs_overdischarge_criterion(r: UutRatings, std: str) -> Criterion:
    return Criterion(
        text="Pass: no fire, explosion, rupture or leakage; cells stay within specified limits.",
        check="min_voltage",
        threshold=r.min_voltage_V,
        observed="no fire, explosion, rupture or leakage; individual cell voltages",
        source=std,
    )


def _fs_operating_limits(r: UutRatings, std: str) -> Procedure:
    ambient = r.max_temperature_C - 10.0
    what = (
        f"temperature and operating limits: charged and discharged at the maximum rated currents at the upper end "
        f"of the ambient operating range ({num(ambient)} degC); voltages, currents and temperatures must stay "
        "within the specified operating region."
    )
    b = builder(r, "FS-OPERATING-LIMITS", std, "Temperature and operating limits check", what)
    b.soak(ambient)
    with b.repeat(2):
        b.line(f"Charge at {num(r.max_charge_current_A)} A until {num(r.max_voltage_V)} V", label="maximum charge")
        b.line(f"Hold at {num(r.max_voltage_V)} V until C/20 or 3 hours", label="maximum charge (CV)")
        b.rest(30 * 60)
        b.line(
            f"Discharge at {num(r.max_discharge_current_A)} A until {num(r.min_voltage_V)} V", label="maximum discharge"
        )
        b.rest(30 * 60)
    return b.build()


def _fs_cooling_failure(r: UutRatings, std: str) -> Procedure:
    what = (
        "cooling system failure: operated at the maximum rated charge/discharge with fans, liquid cooling or HVAC "
        "disabled (set up before the run: by the operator, or in the Digital Twin's model); protective controls "
        "must keep cells within limits or shut down safely."
    )
    b = builder(r, "FS-COOLING-FAILURE", std, "Cooling system failure", what, abuse=True)
    b.safety(max_temperature_C=r.max_temperature_C + 15.0)
    b.soak(25.0)
    with b.repeat(3):
        b.line(
            f"Charge at {num(r.max_charge_current_A)} A until {num(r.max_voltage_V)} V",
            label="maximum charge, cooling off",
            tags=(ABUSE,),
        )
        b.line(f"Hold at {num(r.max_voltage_V)} V until C/20 or 3 hours", label="maximum charge (CV)", tags=(ABUSE,))
        b.line(
            f"Discharge at {num(r.max_discharge_current_A)} A until {num(r.min_voltage_V)} V",
            label="maximum discharge, cooling off",
            tags=(ABUSE,),
        )
    b.rest(HOUR, label="post-test observation")
    return b.build()


_EMC = fixture(
    "FS-EMC-IMMUNITY",
    "EMC immunity of safety controls",
    "other",
    {
        "*": (
            8 * HOUR,
            "protective controls exposed to immunity tests (ESD, radiated and conducted RF, fast "
            "transients, surge per the IEC 61000-4 series) while operating.",
        )
    },
)


TESTS: dict[str, TestSpec] = {
    "FS-OVERCHARGE-VOLTAGE": TestSpec(
        _fs_overcharge_voltage, (IEC_19,), _fs_overcharge_voltage_criterion, PACKS, "a battery-system (BMS) test"
    ),
    "FS-OVERCHARGE-CURRENT": TestSpec(
        _fs_overcharge_current, (IEC_19,), _fs_overcharge_current_criterion, PACKS, "a battery-system (BMS) test"
    ),
    "FS-OVERHEAT": TestSpec(_fs_overheat, (IEC_19,), _fs_overheat_criterion, PACKS, "a battery-system (BMS) test"),
    "FS-OVERDISCHARGE": TestSpec(
        _fs_overdischarge, (UL1973,), _fs_overdischarge_criterion, BATTERIES, "a battery test with protective controls"
    ),
    "FS-OPERATING-LIMITS": TestSpec(
        _fs_operating_limits,
        (UL1973,),
        operating_region(
            "cell voltages, currents and temperatures must stay within the cell manufacturer's specified operating "
            "region and component temperatures within ratings.",
            "individual cell voltages and component temperatures",
        ),
        BATTERIES,
        "a battery test",
    ),
    "FS-COOLING-FAILURE": TestSpec(
        _fs_cooling_failure,
        (UL1973, UL9540),
        observation("Pass: protective controls keep cells within limits or shut down safely; no fire or explosion."),
        BATTERIES,
        "a test of units with a cooling system",
    ),
    "FS-EMC-IMMUNITY": TestSpec(
        _EMC,
        (UL1973,),
        observation("Pass: the safety functions keep working or go to a safe state."),
        BATTERIES,
        "a test of the BMS",
    ),
}

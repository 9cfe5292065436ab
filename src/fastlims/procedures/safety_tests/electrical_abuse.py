"""Electrical abuse: external short circuit, overcharge and forced discharge (IEC 62660-2/-3,
IEC 62619, UL 1642, UL 1973), emulated on a cycler as ``abuse`` steps beyond the ratings."""

from __future__ import annotations

from fastlims.procedures.blocks import (
    ABUSE,
    BMS_CHECK,
    CELLS,
    HOUR,
    IEC_2,
    IEC_3,
    IEC_19,
    UL1642,
    UL1973,
    TestSpec,
    builder,
    charge_fully,
    duration,
    num,
)
from fastlims.procedures.criteria import Criterion
from fastlims.procedures.model import Procedure
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.safety_tests.common import NO_FIRE


def _short_circuit(r: UutRatings, std: str) -> Procedure:
    if std in (IEC_2, IEC_3):
        resistance, seconds, observe, temperature = 0.005, 10 * 60, HOUR, 25.0
        note = "5 mOhm or less for 10 min at room temperature, then 1 h observation"
    elif std == IEC_19:
        resistance, seconds, observe, temperature = 0.08, 6 * HOUR, HOUR, 25.0
        note = "80 +/- 20 mOhm at 25 +/- 5 degC for 6 h (or until the case temperature has fallen by 20 % of its rise)"
    elif std == UL1642:
        resistance, seconds, observe, temperature = 0.08, 6 * HOUR, HOUR, 20.0
        note = "80 +/- 20 mOhm at 20 +/- 5 degC (a second sample at 55 +/- 5 degC)"
    else:
        resistance, seconds, observe, temperature = 0.02, 2 * HOUR, HOUR, 25.0
        note = "across the main terminals with protective devices in circuit (20 mOhm assumed) until they operate"
    limit = r.max_voltage_V / resistance
    what = f"fully charged UUT short-circuited, {note}; emulated by a 0 V hold limited to MaxVoltageV / R."
    b = builder(r, "ELEC-EXT-SHORT", std, "External short circuit", what, abuse=True)
    b.safety(min_voltage_V=-1.0, max_discharge_current_A=max(limit * 1.2, r.max_pulse_current_A), max_temperature_C=200)
    charge_fully(b, temperature)
    b.line(f"Hold at 0 V limited to {num(limit)} A for {duration(seconds)}", label="short circuit", tags=(ABUSE,))
    b.rest(observe, label="post-test observation")
    return b.build()


def _short_criterion(r: UutRatings, std: str) -> Criterion:
    if std == UL1642:
        return Criterion(
            text="case temperature must stay at or below 150 degC. Pass: no fire, no explosion.",
            check="max_temperature",
            threshold=150.0,
            observed="no fire, no explosion",
            source=std,
        )
    return Criterion(
        text="Pass: no fire, no explosion.", check="observation", observed="no fire, no explosion", source=std
    )


def _overcharge(r: UutRatings, std: str) -> Procedure:
    C = r.nominal_capacity_Ah
    if std in (IEC_2, IEC_3):
        current, voltage, seconds = C, 2 * r.max_voltage_V, 2 * HOUR
        note = "constant current 1 C (BEV; 5 C for HEV) until 200 % SOC or twice the maximum voltage"
        until = f"until {num(2 * r.max_voltage_V)} V or {num(C)} Ah or {duration(seconds)}"
        step = f"Charge at {num(current)} A {until}"
    elif std == IEC_19:
        current, voltage, seconds = r.max_charge_current_A, 1.5 * r.max_voltage_V, 2 * HOUR
        note = "constant-current overcharge beyond the upper limit charging voltage at 25 +/- 5 degC (1.5x assumed)"
        step = f"Charge at {num(current)} A until {num(voltage)} V or {num(C)} Ah or {duration(seconds)}"
    elif std == UL1642:
        current = 3 * r.max_charge_current_A
        seconds = max(7 * HOUR, round(2.5 * C / current * HOUR))
        voltage = 2 * r.max_voltage_V
        note = "3x the maximum specified charging current for the calculated time (at least 7 h)"
        step = f"Hold at {num(voltage)} V limited to {num(current)} A for {duration(seconds)}"
    else:
        current, voltage, seconds = r.max_charge_current_A, 1.2 * r.max_voltage_V, 7 * HOUR
        note = "charged at the maximum charge current with the charge control failed until protection operates"
        step = f"Hold at {num(voltage)} V limited to {num(current)} A until C/20 or {duration(seconds)}"
    what = f"overcharge: {note}."
    b = builder(r, "ELEC-OVERCHARGE", std, "Overcharge", what, abuse=True)
    b.safety(
        max_voltage_V=voltage * 1.05,
        max_charge_current_A=max(current * 1.05, r.max_pulse_current_A),
        max_temperature_C=150,
    )
    charge_fully(b)
    b.line(step, label="overcharge", tags=(ABUSE, BMS_CHECK) if std == UL1973 else (ABUSE,))
    b.rest(HOUR, label="post-test observation")
    return b.build()


def _forced_discharge(r: UutRatings, std: str) -> Procedure:
    if std == UL1642:
        current = r.max_discharge_current_A
        seconds = round(r.nominal_capacity_Ah / current * HOUR)
        note = "a completely discharged cell discharged into reversal at the maximum specified discharge current"
    else:
        current, seconds = r.nominal_capacity_Ah, 90 * 60
        note = "forced discharge at 1 C (1 It) for 90 min"
    what = f"forced discharge: {note}."
    b = builder(r, "ELEC-FORCED-DISCH", std, "Forced discharge", what, abuse=True)
    b.safety(
        min_voltage_V=-r.max_voltage_V,
        max_discharge_current_A=max(current * 1.05, r.max_pulse_current_A),
        max_temperature_C=150,
    )
    b.soak(25.0)
    b.discharge_to_min(label="fully discharged")
    b.rest(HOUR)
    b.line(f"Discharge at {num(current)} A for {duration(seconds)}", label="forced discharge", tags=(ABUSE,))
    b.rest(HOUR, label="post-test observation")
    return b.build()


TESTS: dict[str, TestSpec] = {
    "ELEC-EXT-SHORT": TestSpec(_short_circuit, (IEC_2, IEC_3, IEC_19, UL1642, UL1973), _short_criterion),
    "ELEC-OVERCHARGE": TestSpec(_overcharge, (IEC_2, IEC_3, IEC_19, UL1642, UL1973), NO_FIRE),
    "ELEC-FORCED-DISCH": TestSpec(
        _forced_discharge, (IEC_2, IEC_3, IEC_19, UL1642), NO_FIRE, CELLS, "a cell-level test"
    ),
}

"""UN 38.3 / IEC 62281 transport tests T.1-T.8 and the 25-cycle pre-cycling before them: T.1-T.4
on fully charged units judged by open-circuit voltage retention (and no leakage, venting,
disassembly, rupture or fire), T.5-T.8 (short circuit, impact/crush, overcharge, forced discharge)
by their own criteria."""

from __future__ import annotations

from fastlims.procedures.blocks import (
    ABUSE,
    BATTERIES,
    CAPACITY,
    CELLS,
    HOUR,
    OCV_POST,
    OCV_PRE,
    UN,
    Builder,
    TestSpec,
    builder,
    duration,
    fixture_test,
    num,
    observation,
)
from fastlims.procedures.criteria import Criterion
from fastlims.procedures.model import Procedure
from fastlims.procedures.ratings import UutRatings

_UN_OCV_TEXT = (
    "Pass: no leakage, venting, disassembly, rupture or fire; open-circuit voltage at least 90 % of the pre-test value."
)


def _un_ocv(r: UutRatings, std: str) -> Criterion:
    return Criterion(
        text=_UN_OCV_TEXT,
        check="ocv_retention",
        threshold=0.90,
        observed="no leakage, venting, disassembly, rupture or fire",
        source=std,
    )


def _un_prelude(b: Builder) -> None:
    """UN 38.3 tests start on fully charged cells/batteries at 20 +/- 5 degC; the pre-test OCV is
    the voltage after a 1 h rest."""
    b.soak(20.0)
    b.standard_charge()
    b.rest(HOUR)
    b.ocv(OCV_PRE)


def _t1(r: UutRatings, std: str) -> Procedure:
    what = "T.1 altitude simulation: stored at 11.6 kPa or less for at least 6 h at 20 +/- 5 degC."
    b = builder(r, "UN383-T1", std, "Altitude simulation T.1", what)
    _un_prelude(b)
    b.external("altitude", 6 * HOUR, what)
    b.ocv(OCV_POST)
    return b.build()


def _t2(r: UutRatings, std: str) -> Procedure:
    dwell = 12 * HOUR if r.format != "cell" else 6 * HOUR  # 12 h for large cells and batteries
    what = (
        f"T.2 thermal cycling: {duration(dwell)} at 72 +/- 2 degC then {duration(dwell)} at -40 +/- 2 degC, "
        "10 cycles (at most 30 min between extremes: the chamber's ramp), then 24 h at 20 +/- 5 degC."
    )
    b = builder(r, "UN383-T2", std, "Thermal cycling T.2", what, abuse=True)
    b.safety(max_temperature_C=80, min_temperature_C=-45)
    _un_prelude(b)
    with b.repeat(10):
        b.soak(72.0, seconds=dwell, tags=(ABUSE,))
        b.soak(-40.0, seconds=dwell, tags=(ABUSE,))
    b.soak(20.0, seconds=24 * HOUR)
    b.ocv(OCV_POST)
    return b.build()


def _t3(r: UutRatings, std: str) -> Procedure:
    what = (
        "T.3 vibration: sinusoidal logarithmic sweep 7 Hz - 200 Hz - 7 Hz in 15 min, 12 sweeps (3 h) in each of "
        "three perpendicular axes; 1 gn peak 7-18 Hz, 0.8 mm amplitude to about 50 Hz, 8 gn peak to 200 Hz "
        "(reduced for large batteries)."
    )
    b = builder(r, "UN383-T3", std, "Vibration T.3", what)
    _un_prelude(b)
    b.external("vibration", 9 * HOUR, what)
    b.ocv(OCV_POST)
    return b.build()


def _t4(r: UutRatings, std: str) -> Procedure:
    large = r.format != "cell"
    what = (
        "T.4 shock: half-sine shocks of "
        + ("50 gn and 11 ms (large cells and batteries)" if large else "150 gn peak and 6 ms")
        + ", three in the positive and three in the negative direction of each of three perpendicular axes "
        "(18 shocks)."
    )
    b = builder(r, "UN383-T4", std, "Shock T.4", what)
    _un_prelude(b)
    b.external("shock", HOUR, what)
    b.ocv(OCV_POST)
    return b.build()


def _t5(r: UutRatings, std: str) -> Procedure:
    resistance = 0.1
    limit = r.max_voltage_V / resistance
    what = (
        "T.5 external short circuit: stabilised at 57 +/- 4 degC, short-circuited through less than 0.1 Ohm "
        "(emulated by a 0 V hold limited to MaxVoltageV / 0.1 Ohm), kept until 1 h after the case temperature "
        "has returned to 57 +/- 4 degC, then observed for 6 h."
    )
    b = builder(r, "UN383-T5", std, "External short circuit T.5", what, abuse=True)
    b.safety(
        min_voltage_V=-1.0,
        max_discharge_current_A=max(limit * 1.2, r.max_pulse_current_A),
        max_temperature_C=200,
    )
    b.soak(25.0)
    b.standard_charge()
    b.rest(HOUR)
    b.soak(57.0, tags=(ABUSE,))
    short = f"Hold at 0 V limited to {num(limit)} A"
    b.line(f"{short} for 10 minutes", label="short circuit", tags=(ABUSE,))
    b.line(
        f"{short} until below 61 degC or 6 hours", label="short circuit (until back to 57 +/- 4 degC)", tags=(ABUSE,)
    )
    b.line(f"{short} for 1 hour", label="short circuit (1 h after return)", tags=(ABUSE,))
    b.rest(6 * HOUR, label="post-test observation")
    return b.build()


def _t5_criterion(r: UutRatings, std: str) -> Criterion:
    return Criterion(
        text="Pass: external case temperature does not exceed 170 degC; no disassembly, rupture or fire within 6 h.",
        check="max_temperature",
        threshold=170.0,
        observed="no disassembly, rupture or fire within 6 h",
        source=std,
    )


def _t6(r: UutRatings, std: str) -> Procedure:
    what = (
        "T.6 crush (prismatic and pouch cells; impact for cylindrical cells of 18 mm or more): crushed between "
        "two flat surfaces at about 1.5 cm/s until 13 +/- 0.78 kN, a 100 mV voltage drop or 50 % deformation; "
        "cell at 50 % SOC; observed 6 h."
    )
    return fixture_test(r, "UN383-T6", std, "Impact/crush T.6", "crush", HOUR, what, observe_s=6 * HOUR, soc=0.5)


def _t6_criterion(r: UutRatings, std: str) -> Criterion:
    return Criterion(
        text="Pass: case temperature at most 170 degC; no disassembly or fire within 6 h.",
        check="max_temperature",
        threshold=170.0,
        observed="no disassembly or fire within 6 h",
        source=std,
    )


def _t7(r: UutRatings, std: str) -> Procedure:
    current = 2 * r.max_charge_current_A
    supply = min(2 * r.max_voltage_V, 22.0) if r.max_voltage_V <= 18.0 else 1.2 * r.max_voltage_V
    what = (
        f"T.7 overcharge: charged at twice the maximum continuous charge current ({num(current)} A) for 24 h at "
        f"ambient temperature from a supply of {num(supply)} V (the lesser of 2x the maximum charge voltage or "
        "22 V when that is 18 V or less, otherwise 1.2x the maximum charge voltage)."
    )
    b = builder(r, "UN383-T7", std, "Overcharge T.7", what, abuse=True)
    b.safety(
        max_voltage_V=supply * 1.02,
        max_charge_current_A=max(current * 1.05, r.max_pulse_current_A),
        max_temperature_C=150,
    )
    _un_prelude(b)
    b.line(
        f"Hold at {num(supply)} V limited to {num(current)} A for 24 hours",
        label="overcharge (current-limited supply)",
        tags=(ABUSE,),
    )
    b.rest(HOUR, label="post-test observation (the standard observes for 7 days)")
    return b.build()


def _t8(r: UutRatings, std: str) -> Procedure:
    current = r.max_discharge_current_A
    seconds = round(r.nominal_capacity_Ah / current * HOUR)
    what = (
        f"T.8 forced discharge: the fully discharged cell is forced-discharged at ambient temperature in series "
        f"with a 12 V DC supply at the maximum discharge current ({num(current)} A) for rated capacity / current "
        f"({duration(seconds)})."
    )
    b = builder(r, "UN383-T8", std, "Forced discharge T.8", what, abuse=True)
    b.safety(min_voltage_V=-12.0, max_temperature_C=150)
    b.soak(20.0)
    b.discharge_to_min(label="fully discharged")
    b.rest(HOUR)
    b.line(f"Discharge at {num(current)} A for {duration(seconds)}", label="forced discharge", tags=(ABUSE,))
    b.rest(HOUR, label="post-test observation (the standard observes for 7 days)")
    return b.build()


def _precycle(r: UutRatings, std: str) -> Procedure:
    what = (
        "25 full charge/discharge cycles (standard charge, C/2 discharge to MinVoltageV: the discharge_rate variable) "
        "before the second set "
        "of transport tests, ending fully charged; capacity and OCV are logged per cycle."
    )
    b = builder(r, "UN383-PRECYCLE", std, "Pre-cycling (25 cycles)", what)
    b.rate_variable(0.5, 1 / 3, 1.0)
    b.soak(20.0)
    with b.repeat(25):
        b.standard_charge()
        b.rest(30 * 60)
        b.discharge_to_min("{discharge_rate}", label="cycle discharge", tags=(CAPACITY,))
        b.rest(30 * 60)
    b.standard_charge()
    b.rest(HOUR)
    return b.build()


TESTS: dict[str, TestSpec] = {
    "UN383-T1": TestSpec(_t1, UN, _un_ocv),
    "UN383-T2": TestSpec(_t2, UN, _un_ocv),
    "UN383-T3": TestSpec(_t3, UN, _un_ocv),
    "UN383-T4": TestSpec(_t4, UN, _un_ocv),
    "UN383-T5": TestSpec(_t5, UN, _t5_criterion),
    "UN383-T6": TestSpec(_t6, UN, _t6_criterion, CELLS, "T.6 applies to cells only"),
    "UN383-T7": TestSpec(
        _t7,
        UN,
        observation("Pass: no disassembly and no fire during the test and within 7 days."),
        BATTERIES,
        "T.7 applies to rechargeable batteries (modules, packs), not cells",
    ),
    "UN383-T8": TestSpec(
        _t8, UN, observation("Pass: no disassembly and no fire within 7 days."), CELLS, "T.8 applies to cells only"
    ),
    "UN383-PRECYCLE": TestSpec(_precycle, UN),
}

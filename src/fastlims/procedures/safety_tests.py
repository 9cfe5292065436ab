"""Default procedures of the safety, transport, abuse, mechanical, environmental and functional-safety
test names (UN 38.3 / IEC 62281, IEC 62660-2/-3, IEC 62619, UL 1642, UL 1973, UL 9540).

Values are summarised from the standards; the purchased standard text always governs. See
:mod:`fastlims.procedures.defaults` for the rules every default follows.
"""

from __future__ import annotations

from collections.abc import Callable

from fastlims.procedures.blocks import (
    ABUSE,
    BATTERIES,
    BMS_CHECK,
    CAPACITY,
    CELLS,
    HOUR,
    IEC_1,
    IEC_2,
    IEC_3,
    IEC_19,
    OCV_POST,
    OCV_PRE,
    PACKS,
    UL1642,
    UL1973,
    UL9540,
    UN,
    Builder,
    TestSpec,
    builder,
    charge_fully,
    duration,
    fixture_test,
    num,
    observation,
)
from fastlims.procedures.criteria import Criterion
from fastlims.procedures.model import Procedure
from fastlims.procedures.ratings import UutRatings

# --------------------------------------------------------------------------- UN 38.3 / IEC 62281

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


# --------------------------------------------------------------------------- electrical abuse


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


# --------------------------------------------------------------------------- mechanical (fixtures)


def _fixture(
    code: str,
    title: str,
    action: str,
    texts: dict[str, tuple[float, str]],
    *,
    observe_s: int = HOUR,
    charged: bool = True,
) -> Callable[[UutRatings, str], Procedure]:
    def build(r: UutRatings, std: str) -> Procedure:
        seconds, what = texts.get(std, texts["*"])
        return fixture_test(r, code, std, title, action, seconds, what, observe_s=observe_s, charged=charged)

    return build


_VIBRATION = _fixture(
    "MECH-VIBRATION",
    "Vibration",
    "vibration",
    {
        IEC_2: (
            24 * HOUR,
            "random vibration per IEC 60068-2-64, vehicle-body profile (about 27.8 m/s2 RMS, "
            "10 Hz - 1 000 Hz), 8 h per axis, three axes.",
        ),
        UL1642: (
            5 * HOUR,
            "simple harmonic motion, 0.8 mm amplitude (1.6 mm total excursion), 10 Hz - 55 Hz - "
            "10 Hz at 1 Hz/min, 90 min to 100 min per axis, three axes.",
        ),
        UL1973: (9 * HOUR, "the motive/rail vibration profile required by UL 1973, three axes."),
        "*": (24 * HOUR, "random vibration per IEC 60068-2-64, vehicle-body profile, 8 h per axis, three axes."),
    },
)
_SHOCK = _fixture(
    "MECH-SHOCK",
    "Mechanical shock",
    "shock",
    {
        UL1642: (
            HOUR,
            "three shocks per axis, average acceleration at least 75 gn in the first 3 ms, peak 125 gn - 175 gn.",
        ),
        UL1973: (HOUR, "the motive/rail shock profile required by UL 1973."),
        "*": (HOUR, "half-sine shocks of 500 m/s2 peak, 6 ms, 10 shocks per direction of three perpendicular axes."),
    },
)
_CRUSH = _fixture(
    "MECH-CRUSH",
    "Crush",
    "crush",
    {
        UL1642: (HOUR, "crushed between two flat plates until 13 kN is reached, then released."),
        UL1973: (HOUR, "crush force as required for vehicle/rail installations by UL 1973."),
        "*": (
            HOUR,
            "crushed with a semi-cylindrical bar until an abrupt 1/3 voltage drop, 15 % deformation or a "
            "force of 1 000x the cell weight, then 1 h observation.",
        ),
    },
)
_IMPACT = _fixture(
    "MECH-IMPACT",
    "Impact (bar)",
    "impact",
    {
        "*": (
            HOUR,
            "a 15.8 mm bar across the centre of the fully charged cell, a 9.1 kg mass dropped onto it from "
            "61 +/- 2.5 cm; observed 6 h.",
        )
    },
    observe_s=6 * HOUR,
)
_DROP = _fixture(
    "MECH-DROP",
    "Drop",
    "drop",
    {
        UL1973: (
            HOUR,
            "dropped from the specified height onto concrete in the orientation most likely to cause "
            "damage; observed 1 h.",
        ),
        "*": (
            HOUR,
            "whole-unit or edge/corner drop onto concrete from a height depending on mass (1 m for light "
            "units); observed 1 h.",
        ),
    },
)
_ENCL_IMPACT = _fixture(
    "MECH-ENCL-IMPACT",
    "Enclosure impact",
    "impact",
    {
        "*": (
            HOUR,
            "a solid steel sphere dropped or swung onto the most vulnerable enclosure surfaces with the "
            "impact energy the standard specifies.",
        )
    },
)
_STATIC_FORCE = _fixture(
    "MECH-STATIC-FORCE",
    "Static force",
    "other",
    {
        "*": (
            HOUR,
            "a steady force (e.g. 250 N for 5 s) on enclosure surfaces, or the specified static load on the "
            "top of the unit.",
        )
    },
)
_WALL_MOUNT = _fixture(
    "MECH-WALL-MOUNT",
    "Wall mount fixture and handle strength",
    "other",
    {
        "*": (
            90 * 60,
            "mounting means loaded with a multiple of the unit's weight for the specified time; handles "
            "pulled with a multiple of the unit's weight.",
        )
    },
)


# --------------------------------------------------------------------------- thermal / environmental


def _hot_box(r: UutRatings, std: str) -> Procedure:
    if std == IEC_19:
        target, hold = 85.0, 3 * HOUR
        note = "5 degC/min to 85 degC, held (3 h assumed; the standard specifies)"
    elif std == UL1642:
        target, hold = 130.0, 10 * 60
        note = "5 +/- 2 degC/min to 130 +/- 2 degC, held 10 min"
    else:
        target, hold = 130.0, 30 * 60
        note = "5 degC/min to 130 degC, held 30 min"
    what = f"thermal abuse (hot box): fully charged cell heated in a convection oven, {note}; 1 h observation."
    b = builder(r, "THERM-HOT-BOX", std, "Thermal abuse (hot box)", what, abuse=True)
    b.safety(max_temperature_C=target + 50)
    charge_fully(b)
    # 5 degC/min as set-points 10 degC apart, 2 min each
    setpoint = 30.0
    while setpoint < target:
        tags = (ABUSE,) if setpoint > r.max_temperature_C else ()
        b.line(f"Set ambient to {num(setpoint)} degC and rest for 2 minutes", label="ramp 5 degC/min", tags=tags)
        setpoint += 10.0
    b.line(f"Set ambient to {num(target)} degC and rest for {duration(hold)}", label="hold", tags=(ABUSE,))
    b.line("Set ambient to 25 degC and rest for 1 hours", label="post-test observation")
    return b.build()


def _temp_cycle(r: UutRatings, std: str) -> Procedure:
    if std == UL1642:
        plan = [(70.0, 4 * HOUR), (20.0, 2 * HOUR), (-40.0, 4 * HOUR), (20.0, 2 * HOUR)]
        cycles, note = 10, "4 h at 70 +/- 2 degC, 2 h at 20 degC, 4 h at -40 +/- 2 degC, 2 h at 20 degC, 10 cycles"
    elif std == UL1973:
        plan = [(r.max_temperature_C, 6 * HOUR), (r.min_temperature_C, 6 * HOUR)]
        cycles = 10
        note = (
            f"cycling between the rated temperature extremes ({num(r.min_temperature_C)} / "
            f"{num(r.max_temperature_C)} degC assumed for storage), 6 h dwell, 10 cycles"
        )
    else:
        plan = [(85.0, 4 * HOUR), (-40.0, 4 * HOUR)]
        cycles = 15
        note = "per IEC 60068-2-14 between -40 degC and 85 degC (4 h dwell; 15 cycles assumed)"
    abuse = any(not r.min_temperature_C <= t <= r.max_temperature_C for t, _ in plan)
    what = f"temperature cycling: {note}."
    b = builder(r, "ENV-TEMP-CYCLE", std, "Temperature cycling", what, abuse=abuse)
    if abuse:
        b.safety(max_temperature_C=max(t for t, _ in plan) + 10, min_temperature_C=min(t for t, _ in plan) - 5)
    charge_fully(b)
    with b.repeat(cycles):
        for temperature, seconds in plan:
            inside = r.min_temperature_C <= temperature <= r.max_temperature_C
            b.soak(temperature, seconds=seconds, tags=() if inside else (ABUSE,))
    b.soak(25.0, seconds=HOUR)
    b.rest(HOUR, label="post-test observation")
    return b.build()


_LOW_PRESSURE = _fixture(
    "ENV-LOW-PRESSURE",
    "Low pressure (altitude simulation)",
    "altitude",
    {"*": (6 * HOUR, "cells stored for 6 h at an absolute pressure of 11.6 kPa at 20 +/- 3 degC.")},
)
_SALT_FOG = _fixture(
    "ENV-SALT-FOG",
    "Salt fog",
    "salt_fog",
    {
        "*": (
            600 * HOUR,
            "exposure to 5 % NaCl salt fog at 35 degC per ASTM B117 for the period the enclosure rating "
            "requires (600 h assumed).",
        )
    },
    charged=False,
)
_WATER_SPRAY = _fixture(
    "ENV-WATER-SPRAY",
    "Water spray (rain)",
    "water_spray",
    {
        "*": (
            HOUR,
            "the rain / water-spray test for the enclosure type (UL 50E style) for 1 h, then inspection and "
            "dielectric withstand.",
        )
    },
    charged=False,
)
_MOLD_STRESS = _fixture(
    "THERM-MOLD-STRESS",
    "Mold stress relief",
    "other",
    {
        "*": (
            7 * HOUR,
            "polymeric enclosure parts conditioned 7 h in a circulating-air oven at 10 degC above the "
            "maximum normal-operation temperature (at least 70 degC), then cooled.",
        )
    },
    charged=False,
)


def _normal_op(r: UutRatings, std: str) -> Procedure:
    ambient = r.max_temperature_C - 10.0
    what = (
        "normal operation temperature rise: charged and discharged at rated current at the maximum rated "
        f"ambient ({num(ambient)} degC: 10 degC below MaxTemperatureC) until thermal equilibrium (3 cycles)."
    )
    b = builder(r, "THERM-NORMAL-OP", std, "Normal operation temperature rise", what)
    b.soak(ambient)
    with b.repeat(3):
        b.line(f"Charge at {num(r.max_charge_current_A)} A until {num(r.max_voltage_V)} V", label="rated charge")
        b.line(f"Hold at {num(r.max_voltage_V)} V until C/20 or 3 hours", label="rated charge (CV)")
        b.line(
            f"Discharge at {num(r.max_discharge_current_A)} A until {num(r.min_voltage_V)} V",
            label="rated discharge",
            tags=(CAPACITY,),
        )
    b.rest(HOUR)
    return b.build()


def _operating_region(text: str, observed: str) -> Callable[[UutRatings, str], Criterion]:
    def make(r: UutRatings, std: str) -> Criterion:
        return Criterion(
            text=text,
            check="operating_region",
            limits=(r.min_voltage_V, r.max_voltage_V, r.max_temperature_C),
            observed=observed,
            source=std,
        )

    return make


# --------------------------------------------------------------------------- fire, propagation (fixtures)

_PROJECTILE = _fixture(
    "UL1642-PROJECTILE",
    "Fire exposure (projectile)",
    "fire",
    {
        "*": (
            HOUR,
            "the cell on a steel wire-mesh screen above a burner flame inside an octagonal aluminium "
            "wire-mesh cage, heated until it explodes or burns out.",
        )
    },
)
_FISC = _fixture(
    "ABUSE-FISC",
    "Forced internal short circuit",
    "other",
    {
        "*": (
            2 * HOUR,
            "the charged cell opened in a dry room, an L-shaped nickel particle inserted in the winding/"
            "stack, re-sealed and pressed (about 0.1 mm/s) until a 50 mV voltage drop or the limit force.",
        )
    },
)
_PROPAGATION = _fixture(
    "ABUSE-PROPAGATION",
    "Thermal propagation (single cell failure)",
    "nail",
    {
        "*": (
            8 * HOUR,
            "thermal runaway forced in one cell of the fully charged unit (heater, overcharge or nail "
            "penetration of that cell); the unit is observed.",
        )
    },
)
_EXT_FIRE = _fixture(
    "ABUSE-EXT-FIRE",
    "External fire exposure",
    "fire",
    {
        "*": (
            2 * HOUR,
            "the charged unit exposed to an external (hydrocarbon pool or burner) fire for the time the standard sets.",
        )
    },
)
_9540A_CELL = _fixture(
    "UL9540A-CELL",
    "UL 9540A cell-level thermal runaway",
    "other",
    {
        "*": (
            8 * HOUR,
            "the fully charged cell heated with a film heater at 4-7 degC/min in a pressure vessel until "
            "thermal runaway; venting/runaway temperatures, gas volume and composition measured.",
        )
    },
)
_9540A_MODULE = _fixture(
    "UL9540A-MODULE",
    "UL 9540A module-level propagation",
    "fire",
    {
        "*": (
            8 * HOUR,
            "thermal runaway initiated in one cell of the fully charged module; propagation, heat release, "
            "gas and debris measured.",
        )
    },
)
_9540A_UNIT = _fixture(
    "UL9540A-UNIT",
    "UL 9540A unit-level fire propagation",
    "fire",
    {
        "*": (
            12 * HOUR,
            "thermal runaway initiated in a module of the initiating unit next to target units and walls; "
            "heat flux, propagation, heat release, gas and deflagration hazards measured.",
        )
    },
)
_9540A_INSTALL = _fixture(
    "UL9540A-INSTALL",
    "UL 9540A installation-level fire test",
    "fire",
    {
        "*": (
            12 * HOUR,
            "the unit-level fire scenario repeated in the intended installation with its fire protection "
            "and suppression.",
        )
    },
)


# --------------------------------------------------------------------------- functional safety (BMS)


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


_EMC = _fixture(
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


def _imbalanced_charge(r: UutRatings, std: str) -> Procedure:
    what = (
        "imbalanced charging: one cell block brought to a higher SOC than the others (set up before the run: by "
        "the operator, or in the Digital Twin's initial state), then charged normally at the maximum rated current."
    )
    b = builder(r, "ELEC-IMBALANCED-CHARGE", std, "Imbalanced charging", what)
    b.soak(25.0)
    b.discharge_to_min(label="start discharged")
    b.rest(HOUR)
    b.line(f"Charge at {num(r.max_charge_current_A)} A until {num(r.max_voltage_V)} V", label="charge at maximum")
    b.line(f"Hold at {num(r.max_voltage_V)} V until C/20 or 3 hours", label="charge at maximum (CV)")
    b.rest(HOUR, label="post-test observation")
    return b.build()


def _imbalanced_criterion(r: UutRatings, std: str) -> Criterion:
    return Criterion(
        text="Pass: the BMS / charge control prevents any cell from exceeding its charging voltage limit; no fire or "
        "explosion.",
        check="max_voltage",
        threshold=r.max_voltage_V,
        observed="individual cell voltages; no fire or explosion",
        source=std,
    )


_DIELECTRIC = _fixture(
    "ELEC-DIELECTRIC",
    "Dielectric voltage withstand",
    "other",
    {
        "*": (
            30 * 60,
            "an AC (or equivalent DC) test voltage of about 1 000 V plus twice the rated voltage applied for "
            "1 min between live parts and accessible dead-metal parts / the enclosure.",
        )
    },
    charged=False,
)
_GROUND = _fixture(
    "ELEC-GROUND-CONTINUITY",
    "Protective grounding continuity",
    "other",
    {
        "*": (
            30 * 60,
            "resistance between accessible dead-metal parts and the protective grounding terminal measured "
            "with a test current through the bonding path.",
        )
    },
    charged=False,
)
_DIM_MASS = _fixture(
    "PERF-DIM-MASS",
    "Dimensions and mass",
    "other",
    {
        "*": (
            30 * 60,
            "cell dimensions (thickness, width, height or diameter) and mass measured with the specified accuracy.",
        )
    },
    charged=False,
)


_FIRE = observation("Pass: no fire, no explosion.")

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
    "ELEC-EXT-SHORT": TestSpec(_short_circuit, (IEC_2, IEC_3, IEC_19, UL1642, UL1973), _short_criterion),
    "ELEC-OVERCHARGE": TestSpec(_overcharge, (IEC_2, IEC_3, IEC_19, UL1642, UL1973), _FIRE),
    "ELEC-FORCED-DISCH": TestSpec(_forced_discharge, (IEC_2, IEC_3, IEC_19, UL1642), _FIRE, CELLS, "a cell-level test"),
    "MECH-VIBRATION": TestSpec(
        _VIBRATION, (IEC_2, IEC_3, UL1642, UL1973), observation("Pass: no leakage, rupture, fire or explosion.")
    ),
    "MECH-SHOCK": TestSpec(
        _SHOCK, (IEC_2, IEC_3, UL1642, UL1973), observation("Pass: no leakage, rupture, fire or explosion.")
    ),
    "MECH-CRUSH": TestSpec(_CRUSH, (IEC_2, IEC_3, UL1642, UL1973), _FIRE),
    "MECH-IMPACT": TestSpec(_IMPACT, (IEC_19, UL1642), _FIRE, CELLS, "a cell-level test"),
    "MECH-DROP": TestSpec(_DROP, (IEC_19, UL1973), _FIRE),
    "MECH-ENCL-IMPACT": TestSpec(
        _ENCL_IMPACT,
        (UL1973, UL9540),
        observation(
            "Pass: no cracks or openings exposing hazardous live parts or cells, no fire; dielectric "
            "withstand still met."
        ),
        PACKS,
        "an enclosure test of packs and systems",
    ),
    "MECH-STATIC-FORCE": TestSpec(
        _STATIC_FORCE,
        (UL1973, UL9540),
        observation("Pass: no reduction of spacings, no exposure of hazardous parts, enclosure integrity maintained."),
        PACKS,
        "an enclosure test of packs and systems",
    ),
    "MECH-WALL-MOUNT": TestSpec(
        _WALL_MOUNT,
        (UL1973,),
        observation("Pass: no breakage of mounting or handle, unit stays in place."),
        PACKS,
        "a test of wall-mounted units",
    ),
    "THERM-HOT-BOX": TestSpec(_hot_box, (IEC_2, IEC_3, IEC_19, UL1642), _FIRE, CELLS, "a cell-level test"),
    "ENV-TEMP-CYCLE": TestSpec(
        _temp_cycle,
        (IEC_2, IEC_3, UL1642, UL1973),
        observation("Pass: no leakage, venting, rupture, fire or explosion."),
    ),
    "ENV-LOW-PRESSURE": TestSpec(
        _LOW_PRESSURE, (UL1642,), observation("Pass: no explosion, fire, venting or leakage."), CELLS, "a cell test"
    ),
    "ENV-SALT-FOG": TestSpec(
        _SALT_FOG,
        (UL1973, UL9540),
        observation("Pass: no corrosion impairing enclosure integrity, grounding or safety functions."),
        PACKS,
        "an enclosure test",
    ),
    "ENV-WATER-SPRAY": TestSpec(
        _WATER_SPRAY,
        (UL9540,),
        observation("Pass: no water on live parts, insulation or cells."),
        PACKS,
        "an enclosure test",
    ),
    "THERM-MOLD-STRESS": TestSpec(
        _MOLD_STRESS,
        (UL1973, UL9540),
        observation("Pass: no warping, shrinkage or openings exposing hazardous parts."),
        PACKS,
        "an enclosure test",
    ),
    "THERM-NORMAL-OP": TestSpec(
        _normal_op,
        (UL9540,),
        _operating_region(
            "Pass: all temperatures within component and cell ratings, no protection trips in normal operation.",
            "component temperatures (busbars, insulation)",
        ),
    ),
    "UL1642-PROJECTILE": TestSpec(
        _PROJECTILE,
        (UL1642,),
        observation("Pass: no part or fragment of the cell penetrates the aluminium screen."),
        CELLS,
        "a cell test",
    ),
    "ABUSE-FISC": TestSpec(_FISC, (IEC_3, IEC_19), observation("Pass: no fire."), CELLS, "a cell-level test"),
    "ABUSE-PROPAGATION": TestSpec(
        _PROPAGATION,
        (IEC_19, UL1973),
        observation(
            "Pass: no fire outside the unit and no explosion (UL 1973: no propagation leading to fire or "
            "explosion of the battery)."
        ),
        BATTERIES,
        "a test of battery systems (modules, packs)",
    ),
    "ABUSE-EXT-FIRE": TestSpec(
        _EXT_FIRE,
        (UL1973,),
        observation("Pass: no explosion and no projectiles / no parts ejected beyond the test area."),
    ),
    "UL9540A-CELL": TestSpec(_9540A_CELL, (UL9540,), None, CELLS, "the UL 9540A cell-level test"),
    "UL9540A-MODULE": TestSpec(_9540A_MODULE, (UL9540,), None, ("module",), "the UL 9540A module-level test"),
    "UL9540A-UNIT": TestSpec(_9540A_UNIT, (UL9540,), None, PACKS, "the UL 9540A unit-level test"),
    "UL9540A-INSTALL": TestSpec(_9540A_INSTALL, (UL9540,), None, PACKS, "the UL 9540A installation-level test"),
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
        _operating_region(
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
    "ELEC-IMBALANCED-CHARGE": TestSpec(
        _imbalanced_charge, (UL1973,), _imbalanced_criterion, BATTERIES, "a test of series strings"
    ),
    "ELEC-DIELECTRIC": TestSpec(
        _DIELECTRIC,
        (UL1973, UL9540),
        observation("Pass: no dielectric breakdown."),
        BATTERIES,
        "a test of modules and packs",
    ),
    "ELEC-GROUND-CONTINUITY": TestSpec(
        _GROUND, (UL1973, UL9540), observation("Pass: resistance not above 0.1 Ohm."), PACKS, "a test of enclosures"
    ),
    "PERF-DIM-MASS": TestSpec(_DIM_MASS, (IEC_1,)),
}

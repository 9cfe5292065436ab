"""Thermal, environmental and fire tests: the hot box, temperature cycling and normal operation on a
cycler; low pressure, salt fog, water spray and mould stress on a fixture; and the fire and
propagation tests (projectile, field-induced internal short, propagation, external fire, UL 9540A
cell/module/unit/installation levels), all fixture actions."""

from __future__ import annotations

from fastlims.procedures.blocks import (
    ABUSE,
    BATTERIES,
    CAPACITY,
    CELLS,
    HOUR,
    IEC_2,
    IEC_3,
    IEC_19,
    PACKS,
    UL1642,
    UL1973,
    UL9540,
    TestSpec,
    builder,
    charge_fully,
    duration,
    num,
    observation,
)
from fastlims.procedures.model import Procedure
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.safety_tests.common import NO_FIRE, fixture, operating_region

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


_LOW_PRESSURE = fixture(
    "ENV-LOW-PRESSURE",
    "Low pressure (altitude simulation)",
    "altitude",
    {"*": (6 * HOUR, "cells stored for 6 h at an absolute pressure of 11.6 kPa at 20 +/- 3 degC.")},
)
_SALT_FOG = fixture(
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
_WATER_SPRAY = fixture(
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
_MOLD_STRESS = fixture(
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


# --------------------------------------------------------------------------- fire, propagation (fixtures)

_PROJECTILE = fixture(
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
_FISC = fixture(
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
_PROPAGATION = fixture(
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
_EXT_FIRE = fixture(
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
_9540A_CELL = fixture(
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
_9540A_MODULE = fixture(
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
_9540A_UNIT = fixture(
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
_9540A_INSTALL = fixture(
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


TESTS: dict[str, TestSpec] = {
    "THERM-HOT-BOX": TestSpec(_hot_box, (IEC_2, IEC_3, IEC_19, UL1642), NO_FIRE, CELLS, "a cell-level test"),
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
        operating_region(
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
}

"""Mechanical tests, run on a fixture (an ``external`` step between pre-conditioning and observation):
vibration, shock, crush, impact, drop, and the enclosure tests of packs and systems (enclosure
impact, static force, wall mounting)."""

from __future__ import annotations

from fastlims.procedures.blocks import (
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
    observation,
)
from fastlims.procedures.safety_tests.common import NO_FIRE, fixture

_VIBRATION = fixture(
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
_SHOCK = fixture(
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
_CRUSH = fixture(
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
_IMPACT = fixture(
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
_DROP = fixture(
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
_ENCL_IMPACT = fixture(
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
_STATIC_FORCE = fixture(
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
_WALL_MOUNT = fixture(
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


TESTS: dict[str, TestSpec] = {
    "MECH-VIBRATION": TestSpec(
        _VIBRATION, (IEC_2, IEC_3, UL1642, UL1973), observation("Pass: no leakage, rupture, fire or explosion.")
    ),
    "MECH-SHOCK": TestSpec(
        _SHOCK, (IEC_2, IEC_3, UL1642, UL1973), observation("Pass: no leakage, rupture, fire or explosion.")
    ),
    "MECH-CRUSH": TestSpec(_CRUSH, (IEC_2, IEC_3, UL1642, UL1973), NO_FIRE),
    "MECH-IMPACT": TestSpec(_IMPACT, (IEC_19, UL1642), NO_FIRE, CELLS, "a cell-level test"),
    "MECH-DROP": TestSpec(_DROP, (IEC_19, UL1973), NO_FIRE),
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
}

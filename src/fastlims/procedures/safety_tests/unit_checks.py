"""The remaining checks of battery systems and cells: imbalanced charging of a series string, dielectric
withstand and protective grounding continuity (UL 1973, UL 9540), and the dimensions and mass of a
cell (IEC 62660)."""

from __future__ import annotations

from fastlims.procedures.blocks import (
    BATTERIES,
    HOUR,
    IEC_1,
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
from fastlims.procedures.safety_tests.common import fixture


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


_DIELECTRIC = fixture(
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
_GROUND = fixture(
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
_DIM_MASS = fixture(
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


TESTS: dict[str, TestSpec] = {
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

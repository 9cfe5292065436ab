"""Every (test name, standard, UUT) pair of the seed catalog's applicability matrix resolves a
default procedure, or is refused with a reason, on each bench kind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import fastlims.catalog
from fastlims.procedures.defaults import (
    TEST_CODES,
    NoDefaultProcedure,
    bench_kinds,
    criterion,
    default_procedure,
    refusal,
)
from fastlims.procedures.model import ExternalStep, ResolvedCv, ResolvedPulse
from fastlims.procedures.resolve import resolve
from fastlims.procedures.text import format_text, parse_text

from .uuts import GEN3B_CELL, GEN3B_MODULE, GEN3B_PACK, GEN4_CELL, UUTS

SEED = Path(fastlims.catalog.__file__).with_name("seed_catalog.yaml")
CATALOG = yaml.safe_load(SEED.read_text())
BENCH_KIND = {t["code"]: t["bench_kind"] for t in CATALOG["test_names"]}
#: Catalog "both" tests whose default needs a fixture (an altitude chamber): physical only here.
FIXTURE_BOTH = {"UN383-T1", "ENV-LOW-PRESSURE"}


def _matrix(applicable: bool) -> list[tuple[str, str, str]]:
    pairs = set()
    for row in CATALOG["applicability"]:
        if row["applicable"] is applicable:
            for uut in row["uuts"]:
                pairs.add((row["test"], row["standard"], uut))
    return sorted(pairs)


def test_every_catalog_test_name_has_a_default() -> None:
    assert set(TEST_CODES) == set(BENCH_KIND)
    assert len(TEST_CODES) == 60


@pytest.mark.parametrize(("test", "standard", "uut"), _matrix(True))
def test_applicable_pair_resolves_or_is_refused_with_a_reason(test: str, standard: str, uut: str) -> None:
    ratings = UUTS[uut]
    procedure = default_procedure(test, ratings, standard=standard)
    resolved = resolve(procedure, ratings)
    assert resolved.standard == standard and resolved.uut == uut
    assert resolved.leaves()
    # the text form of every default round-trips (the defaults are written as text)
    assert parse_text(format_text(procedure)).procedure == procedure
    kinds = bench_kinds(procedure)
    assert refusal(test, ratings, "Physical", standard=standard) is None
    virtual = refusal(test, ratings, "virtual", standard=standard)
    if "virtual" in kinds:
        assert virtual is None
    else:
        assert (
            virtual is not None and "a virtual bench cannot run it unless the Digital Twin's models cover it" in virtual
        )
        actions = {s.action for _, s in procedure.walk() if isinstance(s, ExternalStep)}
        assert refusal(test, ratings, "virtual", standard=standard, dt_covers=actions) is None
    # the catalog's bench kind agrees (two catalog "both" tests need an altitude chamber here)
    if BENCH_KIND[test] == "physical" or test in FIXTURE_BOTH:
        assert kinds == {"physical"}
    else:
        assert kinds == {"physical", "virtual"}


@pytest.mark.parametrize(("test", "standard", "uut"), _matrix(False))
def test_excluded_pair_is_refused_with_a_reason(test: str, standard: str, uut: str) -> None:
    ratings = UUTS[uut]
    with pytest.raises(NoDefaultProcedure) as info:
        default_procedure(test, ratings, standard=standard)
    assert uut in info.value.reason
    for kind in ("virtual", "physical"):
        assert refusal(test, ratings, kind, standard=standard) == info.value.reason


def test_refusal_names_the_fixture() -> None:
    reason = refusal("MECH-VIBRATION", GEN3B_CELL, "virtual")
    assert reason == (
        "vibration needs a vibration table: a virtual bench cannot run it unless the Digital Twin's models cover it"
    )
    assert refusal("NO-SUCH-TEST", GEN3B_CELL, "physical") == "no default procedure for test name 'NO-SUCH-TEST'"
    assert "unknown bench kind" in str(refusal("PERF-CAPACITY-RT", GEN3B_CELL, "hybrid"))
    assert "has no default procedure for standard 'UL1642'" in str(
        refusal("PERF-CAPACITY-RT", GEN3B_CELL, "virtual", standard="UL1642")
    )


def test_capacity_at_room_temperature_follows_iec_62660_1() -> None:
    resolved = resolve(default_procedure("PERF-CAPACITY-RT", GEN3B_CELL), GEN3B_CELL)
    leaves = resolved.leaves()
    assert leaves[0].type == "ambient" and leaves[0].temperature_C == 25.0  # type: ignore[union-attr]
    charge, cv, _, discharge = leaves[1:5]
    assert charge.current_A == pytest.approx(50 / 3)  # type: ignore[union-attr]
    assert charge.until[0].kind == "voltage_above_V" and charge.until[0].value == 4.2  # type: ignore[union-attr]
    assert isinstance(cv, ResolvedCv) and cv.voltage_V == 4.2 and cv.until[0].value == pytest.approx(2.5)
    assert discharge.current_A == pytest.approx(-50 / 3) and "capacity" in discharge.tags  # type: ignore[union-attr]
    assert discharge.until[0].kind == "voltage_below_V" and discharge.until[0].value == 2.5  # type: ignore[union-attr]
    assert resolved.standard == "IEC62660"
    # the DoE's value replaces the C/3 default
    faster = resolve(default_procedure("PERF-CAPACITY-RT", GEN3B_CELL), GEN3B_CELL, {"discharge_rate": 1.0})
    assert faster.leaves()[4].current_A == -50.0  # type: ignore[union-attr]


def test_t7_overcharges_batteries_at_twice_the_maximum_charge_current() -> None:
    resolved = resolve(default_procedure("UN383-T7", GEN3B_MODULE), GEN3B_MODULE)
    overcharge = next(s for s in resolved.leaves() if s.label == "overcharge (current-limited supply)")
    assert isinstance(overcharge, ResolvedCv)
    assert overcharge.charge_limit_A == 2 * GEN3B_MODULE.max_charge_current_A
    assert overcharge.voltage_V == pytest.approx(1.2 * GEN3B_MODULE.max_voltage_V)  # 50.4 V > 18 V
    assert overcharge.until[0].kind == "time_s" and overcharge.until[0].value == 24 * 3600
    tags = [set(s.tags) for s in resolved.leaves()]
    assert any("ocv_pre" in t for t in tags)
    with pytest.raises(NoDefaultProcedure, match="not cells"):
        default_procedure("UN383-T7", GEN3B_CELL)


def test_power_test_pulses_stay_within_the_pulse_rating() -> None:
    resolved = resolve(default_procedure("PERF-POWER-IR", GEN4_CELL), GEN4_CELL)
    pulses = [s for s in resolved.leaves() if isinstance(s, ResolvedPulse)]
    assert pulses and max(abs(p.current_A) for p in pulses) == GEN4_CELL.max_pulse_current_A
    assert {p.duration_s for p in pulses} == {10.0}


def test_criteria_quote_the_standard() -> None:
    t1 = criterion("UN383-T1", GEN3B_PACK)
    assert t1 is not None and t1.check == "ocv_retention" and t1.threshold == 0.9
    assert "at least 90 % of the pre-test value" in t1.text
    assert criterion("PERF-CAPACITY-RT", GEN3B_CELL) is None
    short = criterion("ELEC-EXT-SHORT", GEN3B_CELL, standard="UL1642")
    assert short is not None and short.threshold == 150.0

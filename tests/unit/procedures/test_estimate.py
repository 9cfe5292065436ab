from __future__ import annotations

import math
import time

import pytest

from fastlims.procedures.defaults import default_procedure
from fastlims.procedures.estimate import (
    START_SOC,
    TAPER_TIME_CONSTANT_S,
    UNBOUNDED_STEP_S,
    expected_duration_s,
    factors,
)
from fastlims.procedures.model import parse_json
from fastlims.procedures.resolve import resolve
from fastlims.procedures.text import parse_text

from .uuts import GEN3B_CELL, GEN4_CELL, GEN4_PACK

R = GEN3B_CELL  # 50 Ah, 2.5..4.2 V


def _estimate(text: str, ratings=R) -> float:  # type: ignore[no-untyped-def]
    return expected_duration_s(resolve(parse_text(text).procedure, ratings), ratings)


def test_time_terminations_are_exact() -> None:
    text = (
        "Set ambient to 25 degC\nRest for 1 hour\nPulse discharge at 1C for 10 s\nExternal vibration for 3 hours\n"
        "Set ambient to 30 degC and rest for 20 minutes\n"
    )
    assert _estimate(text) == 3600 + 10 + 3 * 3600 + 1200


def test_cc_steps_follow_the_voltage_window() -> None:
    # from the assumed 50 % SOC: C/2 to the top is 1 h, then 1C to the bottom is 1 h
    assert START_SOC == 0.5
    assert _estimate("Charge at C/2 until 4.2 V\nDischarge at 1C until 2.5 V\n") == pytest.approx(2 * 3600)
    # a charge (Ah) or time limit shorter than the voltage
    assert _estimate("Discharge at 1C until 2.5 V or 10 minutes\n") == pytest.approx(600)
    assert _estimate("Discharge at 10 A until 2.5 V or 5 Ah\n") == pytest.approx(1800)
    # constant power: I = P / NominalVoltageV
    assert _estimate("Charge at 91.25 W until 4.2 V\n") == pytest.approx(0.5 * 50 / (91.25 / 3.65) * 3600)


def test_cv_taper_and_unbounded_steps() -> None:
    seconds = _estimate("Charge at C/3 until 4.2 V\nHold at 4.2 V until C/20 or 3 hours\n")
    cc = 0.5 * 3 * 3600
    assert seconds == pytest.approx(cc + TAPER_TIME_CONSTANT_S * math.log((50 / 3) / 2.5))
    assert _estimate("Rest until below 20 degC\n") == UNBOUNDED_STEP_S


def test_repeats_multiply_and_profiles_last_to_their_end() -> None:
    text = "Repeat 3 times:\n    Charge at 1C until 4.2 V\n    Discharge at 1C until 2.5 V\n"
    assert _estimate(text) == pytest.approx(1.5 * 3600 + 2 * 2 * 3600)
    assert _estimate("Follow current profile: 0 -5; 60 5; 90 0\n") == 90.0
    assert _estimate("Follow current profile: 0 -5; 60 5; 90 0\nRepeat 10 times:\n    Rest for 1 s\n") == 100.0


def test_nested_huge_counts_cost_nothing() -> None:
    step: dict[str, object] = {"type": "rest", "until": [{"time_s": 1}]}
    for _ in range(7):
        step = {"type": "repeat", "count": 100_000, "steps": [step]}
    procedure = parse_json({"steps": [step]})
    started = time.perf_counter()
    seconds = expected_duration_s(resolve(procedure, R), R)
    assert seconds == pytest.approx(100_000.0**7)
    assert time.perf_counter() - started < 1.0


def test_defaults_estimate_within_the_catalog_scale() -> None:
    # charge retention: 28 days of storage dominate
    resolved = resolve(default_procedure("AGE-CHARGE-RETENTION", GEN4_CELL), GEN4_CELL)
    days = expected_duration_s(resolved, GEN4_CELL) / 86400
    assert 28 < days < 31


def test_factors_come_from_variables_clamped_to_the_uut() -> None:
    text = (
        "# variable: ambient_C value=25 min=-40 max=80 unit=degC\n"
        "# variable: discharge_rate value=1 min=0.2 max=5 unit=C\n"
        "# variable: charge_rate value=0.5 min=0.1 max=2 unit=C\n"
        "# variable: cycles value=100 unit=cycles\n"
        "# variable: floor_V value=3.1 min=2 max=3.5 unit=V\n"
        "Set ambient to {ambient_C} degC\nCharge at {charge_rate}C until 4.3 V\n"
        "Discharge at {discharge_rate}C until {floor_V} V\n"
        "Repeat {cycles} times:\n    Rest for 1 s\n"
    )
    procedure = parse_text(text).procedure
    found = {f.name: f for f in factors(procedure, GEN4_PACK)}
    # cycles has no range; floor_V's 2..3.5 V lies outside the pack's 288..412.8 V
    assert set(found) == {"ambient_C", "discharge_rate", "charge_rate"}
    assert (found["ambient_C"].min, found["ambient_C"].max) == (-10.0, 70.0)
    assert (found["discharge_rate"].min, found["discharge_rate"].max) == (0.2, 2.0)  # 40 A / 20 Ah
    assert (found["charge_rate"].min, found["charge_rate"].max) == (0.1, 0.5)  # 10 A / 20 Ah
    assert found["charge_rate"].start == 0.5
    cell_floor = {f.name: f for f in factors(procedure, GEN4_CELL)}["floor_V"]
    assert (cell_floor.min, cell_floor.max) == (3.0, 3.5)

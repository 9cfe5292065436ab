"""What a resolved procedure asks of its bench: the largest commanded current, the safety voltage
window, and a temperature chamber when it sets the ambient temperature."""

from __future__ import annotations

import pytest

from fastlims.procedures.requirements import bench_needs
from fastlims.procedures.resolve import resolve
from fastlims.procedures.text import parse_text

from .uuts import GEN3B_CELL


def _needs(text: str):  # type: ignore[no-untyped-def]
    parsed = parse_text(text)
    return bench_needs(resolve(parsed.procedure, GEN3B_CELL, lines=parsed.lines), GEN3B_CELL.format)


def test_the_largest_commanded_current_and_the_safety_window() -> None:
    needs = _needs("Charge at C/3 until 4.2 V\nHold at 4.2 V until C/20\nDischarge at 1C until 2.5 V\n")
    # 1C of the 50 Ah cell; the CV hold's decaying current is not a demand of its own
    assert needs.current_A == pytest.approx(50.0)
    assert needs.uut_format == "cell"
    # the default safety window: the rated window widened by 20 mV per series cell
    assert (needs.min_voltage_V, needs.max_voltage_V) == pytest.approx((2.48, 4.22))
    assert needs.temperature_chamber is False


def test_pulses_count_at_their_own_current() -> None:
    needs = _needs("Discharge at C/3 for 10 minutes\nPulse discharge at 120 A for 10 s\n")
    assert needs.current_A == pytest.approx(120.0)


def test_a_power_step_counts_at_the_lowest_voltage_its_safety_allows() -> None:
    needs = _needs("Discharge at 200 W until 2.6 V\n")
    assert needs.current_A == pytest.approx(200.0 / 2.48)


def test_an_ambient_set_point_needs_a_temperature_chamber() -> None:
    needs = _needs("Set ambient to 40 degC and rest for 2 hours\nDischarge at 1C until 2.5 V\n")
    assert needs.temperature_chamber is True

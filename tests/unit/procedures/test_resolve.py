from __future__ import annotations

import pytest

from fastlims.procedures.model import (
    ProcedureError,
    ResolvedCc,
    ResolvedCv,
    ResolvedPulse,
    ResolvedRepeat,
    parse_json,
)
from fastlims.procedures.resolve import resolve, validate
from fastlims.procedures.text import parse_text

from .uuts import GEN3B_CELL, GEN4_CELL

CAPACITY = """\
# variable: rate value=0.5 min=0.2 max=1 unit=C
Set ambient to 25 degC and rest for 2 hours
Charge at C/3 until 4.2 V
Hold at 4.2 V until C/20
Rest for 1 hour
Discharge at {rate}C until 2.5 V
Repeat 3 times:
    Pulse discharge at 100 A for 10 s
    Pulse charge at 2C for 10 s
    Repeat 2 times:
        Rest for 1 minute
"""


def _resolve(text: str, values: dict[str, float] | None = None, ratings=GEN3B_CELL):  # type: ignore[no-untyped-def]
    parsed = parse_text(text)
    return resolve(parsed.procedure, ratings, values, lines=parsed.lines)


def _problems(text: str, values: dict[str, float] | None = None, ratings=GEN3B_CELL) -> list[str]:  # type: ignore[no-untyped-def]
    parsed = parse_text(text)
    problems = validate(parsed.procedure, ratings, values, lines=parsed.lines)
    with pytest.raises(ProcedureError) as info:
        resolve(parsed.procedure, ratings, values, lines=parsed.lines)
    assert [str(p) for p in info.value.problems] == [str(p) for p in problems]
    return [str(p) for p in problems]


def test_resolution_signs_currents_and_turns_c_rates_into_amperes() -> None:
    resolved = _resolve(CAPACITY)
    leaves = resolved.leaves()
    assert [leaf.id for leaf in leaves] == list(range(len(leaves)))
    charge, cv, _, discharge = leaves[1:5]
    assert isinstance(charge, ResolvedCc) and charge.current_A == pytest.approx(50 / 3)
    assert isinstance(cv, ResolvedCv) and cv.until[0].kind == "current_below_A" and cv.until[0].value == 2.5
    assert (cv.charge_limit_A, cv.discharge_limit_A) == (50.0, 150.0)
    assert isinstance(discharge, ResolvedCc) and discharge.current_A == -25.0
    assert discharge.path == "steps[4]" and discharge.line == 6 and discharge.text == "Discharge at 0.5C until 2.5 V"
    pulse_out, pulse_in = leaves[5], leaves[6]
    assert isinstance(pulse_out, ResolvedPulse) and pulse_out.current_A == -100.0
    assert isinstance(pulse_in, ResolvedPulse) and pulse_in.current_A == 100.0
    outer = resolved.steps[5]
    assert isinstance(outer, ResolvedRepeat) and outer.cycle and outer.count == 3
    inner = outer.steps[2]
    assert isinstance(inner, ResolvedRepeat) and not inner.cycle
    assert resolved.values == {"rate": 0.5}
    s = resolved.safety
    # the rated voltage window widened by 20 mV per cell in series (one cell here)
    assert (s.max_voltage_V, s.min_voltage_V, s.max_temperature_C, s.min_temperature_C) == (4.22, 2.48, 55.0, -20.0)
    assert (s.max_charge_current_A, s.max_discharge_current_A, s.delay_s) == (250.0, 250.0, 1.0)


def test_doe_values_replace_the_variable_default() -> None:
    resolved = _resolve(CAPACITY, {"rate": 1.0})
    assert resolved.leaves()[4].current_A == -50.0  # type: ignore[union-attr]
    assert resolved.values == {"rate": 1.0}


def test_current_over_the_rating_names_the_step_and_line() -> None:
    text = "Rest for 1 s\nRepeat 2 times:\n    Charge at 10 A until 4.2 V\n    Discharge at 4C until 2.5 V\n"
    assert _problems(text) == [
        "steps[1].steps[1] (Discharge at 4C until 2.5 V), line 4: discharge current 200 A is above the UUT's "
        "MaxDischargeCurrentA 150 A"
    ]
    assert _problems("Pulse discharge at 300 A for 10 s\n") == [
        "steps[0] (Pulse discharge at 300 A for 10 s), line 1: pulse current 300 A is above the UUT's "
        "MaxPulseCurrentA 250 A"
    ]
    assert (
        "charge current 20 A is above the UUT's MaxChargeCurrentA 10 A"
        in _problems("Charge at 1C until 4.2 V\n", ratings=GEN4_CELL)[0]
    )


def test_voltages_and_ambient_outside_the_ratings() -> None:
    problems = _problems("Set ambient to 80 degC\nHold at 4.3 V for 1 h\nDischarge at 1C until 2 V\n")
    assert len(problems) == 3
    assert "steps[0]" in problems[0] and "ambient 80 degC is outside the UUT's rated range -20..55 degC" in problems[0]
    assert (
        "steps[1]" in problems[1] and "hold voltage 4.3 V is outside the UUT's voltage limits 2.5..4.2 V" in problems[1]
    )
    assert "steps[2]" in problems[2] and "termination voltage_below_V 2 V is outside" in problems[2]


def test_missing_and_impossible_terminations() -> None:
    problems = _problems(
        "Rest\nDischarge at 1C\nDischarge at 1C until above 4 V\nHold at 4 V until below 3.9 V\n"
        "Charge at 1C until below 25 degC\n"
    )
    assert problems[0].startswith("steps[0] (Rest), line 1: this step could run forever")
    assert problems[1].startswith("steps[1] (Discharge at 1C), line 2: this step could run forever")
    assert "voltage_above_V cannot end this step: a discharge lowers the voltage" in problems[2]
    assert "none of its terminations is sure to end it" in problems[3]
    assert any("steps[3]" in p and "a voltage hold keeps the voltage" in p for p in problems)
    assert any("steps[4]" in p and "none of its terminations is sure to end it" in p for p in problems)


def test_repeat_without_a_count_and_count_below_one() -> None:
    data = {
        "steps": [{"type": "repeat", "count": "{n}", "steps": [{"type": "rest", "until": [{"time_s": 1}]}]}],
        "variables": {"n": {"value": 2, "min": 0, "max": 5}},
    }
    procedure = parse_json(data)
    assert isinstance(resolve(procedure, GEN3B_CELL).steps[0], ResolvedRepeat)
    problems = [str(p) for p in validate(procedure, GEN3B_CELL, {"n": 0})]
    assert problems == ["steps[0]: count: Input should be greater than or equal to 1 (after substituting variables)"]
    problems = [str(p) for p in validate(procedure, GEN3B_CELL, {"n": 2.5})]
    assert problems and problems[0].startswith("steps[0]: count")
    with pytest.raises(ProcedureError, match=r"steps\[0\]: count is required"):
        parse_json({"steps": [{"type": "repeat", "steps": [{"type": "rest", "until": [{"time_s": 1}]}]}]})


def test_unknown_variables_and_values_outside_their_range() -> None:
    text = "# variable: rate value=0.5 min=0.2 max=1\nDischarge at {rate}C until 2.5 V\nRest for {wait} s\n"
    problems = _problems(text, {"rate": 1.5, "colour": 3})
    assert problems == [
        "procedure: variable 'rate': 1.5 is above its max 1",
        "procedure: unknown variable 'colour' in the run's values (declared: rate)",
        "steps[1], line 3: time_s: unknown variable {wait} (declared: rate)",
    ]


def test_safety_may_tighten_but_not_loosen() -> None:
    resolved = _resolve("# safety: max_voltage_V=4.1 max_temperature_C=45 delay_s=0\nCharge at 1C until 4.1 V\n")
    assert resolved.safety.max_voltage_V == 4.1 and resolved.safety.delay_s == 0.0
    problems = _problems("# safety: max_voltage_V=4.5 min_temperature_C=-40\nCharge at 1C until 4.1 V\n")
    assert problems == [
        "procedure: safety max_voltage_V 4.5 is looser than 4.22 (the UUT's MaxVoltageV 4.2 + 0.02 V); a procedure "
        "may only tighten the ratings (declare abuse: true for an abuse test)",
        "procedure: safety min_temperature_C -40 is looser than -20 (the UUT's MinTemperatureC -20); a procedure "
        "may only tighten the ratings (declare abuse: true for an abuse test)",
    ]
    # a termination beyond a tightened safety limit would trip the run
    assert "outside the safety limits" in _problems("# safety: max_voltage_V=4.1\nCharge at 1C until 4.15 V\n")[0]


def test_abuse_steps_may_exceed_the_ratings_within_their_safety() -> None:
    text = (
        "# abuse: true\n# safety: max_voltage_V=8.4 max_charge_current_A=120 max_temperature_C=150\n"
        "Charge at 1C until 4.2 V\n"
        "Charge at 100 A until 8.4 V or 24 hours  # tags=abuse\n"
    )
    resolved = _resolve(text)
    assert resolved.abuse and resolved.leaves()[1].current_A == 100.0  # type: ignore[union-attr]
    # untagged steps of an abuse procedure are still checked
    problems = _problems(text.replace("Charge at 1C until 4.2 V", "Charge at 2C until 4.2 V"))
    assert problems == [
        "steps[0] (Charge at 2C until 4.2 V), line 3: charge current 100 A is above the UUT's MaxChargeCurrentA 50 A"
    ]
    # and abuse steps stay within the procedure's own safety limits
    assert "current 130 A is above safety max_charge_current_A 120 A" in _problems(text.replace("100 A", "130 A"))[0]


def test_custom_profile_is_taken_from_the_request() -> None:
    text = "Follow current profile from custom_profile until below 2.5 V\n"
    assert _problems(text)[0].endswith("this profile takes the request's variables.custom_profile, and none was given")
    parsed = parse_text(text)
    resolved = resolve(parsed.procedure, GEN3B_CELL, custom_profile=[(0.0, -10.0), (5.0, 20.0)])
    assert resolved.leaves()[0].points == ((0.0, -10.0), (5.0, 20.0))  # type: ignore[union-attr]
    bad = validate(parsed.procedure, GEN3B_CELL, custom_profile=[(0.0, -400.0), (1.0, 0.0)])
    assert "profile peak current 400 A is above the UUT's MaxPulseCurrentA 250 A" in str(bad[0])
    unordered = validate(parsed.procedure, GEN3B_CELL, custom_profile=[(5.0, 1.0), (1.0, 0.0)])
    assert "custom_profile: profile times must increase" in str(unordered[0])

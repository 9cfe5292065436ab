from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastlims.procedures.model import Procedure, ProcedureError, parse_json
from fastlims.procedures.text import format_text, load, parse_text

from .strategies import procedures

CONTRACT_EXAMPLE = """\
Set ambient to 25 degC and rest for 2 hours
Charge at 0.5C until 4.2 V
Hold at 4.2 V until C/20
Rest for 1 hour
Discharge at 1C until 2.5 V
Discharge at 10 A for 10 s
Pulse discharge at 3C for 10 s
Charge at 20 W until 4.1 V or 30 minutes
Repeat 25 times:
    Charge at 1C until 4.2 V
    Discharge at 1C until 2.5 V
"""


def test_contract_example_parses_to_the_contract_json() -> None:
    parsed = parse_text(CONTRACT_EXAMPLE)
    steps = parsed.procedure.to_json()["steps"]
    assert steps[0] == {"type": "ambient", "temperature_C": 25.0, "until": [{"time_s": 7200.0}]}
    assert steps[1] == {"type": "cc", "direction": "charge", "c_rate": 0.5, "until": [{"voltage_above_V": 4.2}]}
    assert steps[2] == {"type": "cv", "voltage_V": 4.2, "until": [{"current_below_c_rate": 0.05}]}
    assert steps[3] == {"type": "rest", "until": [{"time_s": 3600.0}]}
    assert steps[4]["until"] == [{"voltage_below_V": 2.5}]
    assert steps[5] == {"type": "cc", "direction": "discharge", "current_A": 10.0, "until": [{"time_s": 10.0}]}
    assert steps[6] == {"type": "pulse", "direction": "discharge", "c_rate": 3.0, "duration_s": 10.0}
    assert steps[7] == {
        "type": "cp",
        "direction": "charge",
        "power_W": 20.0,
        "until": [{"voltage_above_V": 4.1}, {"time_s": 1800.0}],
    }
    assert steps[8]["count"] == 25 and len(steps[8]["steps"]) == 2
    assert parsed.lines["steps[8].steps[1]"] == 11


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Discharge at 500 mA for 90 seconds", {"current_A": 0.5, "until": [{"time_s": 90.0}]}),
        ("Discharge at C/3 for 2 min", {"c_rate": 1 / 3, "until": [{"time_s": 120.0}]}),
        ("Charge at 1.5 kW until 4100 mV", {"power_W": 1500.0, "until": [{"voltage_above_V": 4.1}]}),
        ("Hold at 4.2 V limited to 2 A until 50 mA", {"current_limit_A": 2.0, "until": [{"current_below_A": 0.05}]}),
        ("Rest until below -10 °C or 3 h", {"until": [{"temperature_below_C": -10.0}, {"time_s": 10800.0}]}),
        ("Charge at 1C until 2.5 Ah", {"until": [{"charge_Ah": 2.5}]}),
        ("Discharge at 1C until above 4 V", {"until": [{"voltage_above_V": 4.0}]}),
        ("Rest for {rest_s} s", {"until": [{"time_s": "{rest_s}"}]}),
    ],
)
def test_units_and_conditions(line: str, expected: dict[str, object]) -> None:
    step = parse_text(line).procedure.to_json()["steps"][0]
    for key, value in expected.items():
        assert step[key] == value


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("Rest for 1 hour\nJump at 1C\n", 2, "unknown step 'Jump'"),
        ("Discharge at 1C until 2.5 parsecs\n", 1, "unknown unit 'parsecs'"),
        ("Repeat times:\n  Rest for 1 s\n", 1, "expected 'Repeat N times:'"),
        ("Repeat 0 times:\n  Rest for 1 s\n", 1, "a repeat count is at least 1"),
        ("Repeat 3 times:\nRest for 1 s\n", 1, "needs an indented block"),
        ("Rest for 1 s\n    Rest for 2 s\n", 2, "indentation 4 does not match"),
        ("Hold at 4.2 V until 60 degC\n", 1, "say 'above' or 'below'"),
        ("Charge at 4.2 V\n", 1, "expected a current or power, got a voltage"),
        ("Rest for 2 V\n", 1, "'for' takes a time"),
        ("Rest for {x} hours\n", 1, "a variable is written in the field's own unit: '{x} s'"),
        ("# safety: max_voltage=4\nRest for 1 s\n", 1, "safety: unknown key 'max_voltage'"),
    ],
)
def test_a_line_that_does_not_parse_is_named(text: str, line: int, message: str) -> None:
    with pytest.raises(ProcedureError) as info:
        parse_text(text)
    assert [p.line for p in info.value.problems] == [line]
    assert message in info.value.problems[0].message
    assert f"line {line}" in str(info.value)


def test_every_bad_line_is_reported_and_schema_problems_carry_lines() -> None:
    text = "Rest for 1 s\nFly\nRest for 1 s\nFloat\n"
    with pytest.raises(ProcedureError) as info:
        parse_text(text)
    assert [p.line for p in info.value.problems] == [2, 4]
    # a schema problem (a negative duration) names the step path and its line
    with pytest.raises(ProcedureError) as info:
        parse_text("Rest for 1 s\nRepeat 2 times:\n    Pulse charge at 1C for -5 s\n")
    (problem,) = info.value.problems
    assert (problem.path, problem.line) == ("steps[1].steps[0]", 3)
    assert "duration_s" in problem.message


def test_headers_labels_and_tags_round_trip() -> None:
    text = (
        "# name: cap\n# standard: IEC62660\n# abuse: true\n"
        '# variable: rate value=0.5 min=0.2 max=1 unit=C description="discharge rate"\n'
        "# safety: max_temperature_C=55 delay_s=0.5\n# sampling: period_s=0.1 voltage_delta_V=0.005\n"
        "# a plain comment\n"
        'Discharge at {rate}C until 2.5 V  # label="capacity # 1" tags=capacity,main\n'
        "Rest for 10 s  # an ordinary trailing comment\n"
    )
    procedure = parse_text(text).procedure
    assert procedure.standard == "IEC62660" and procedure.abuse
    assert procedure.variables["rate"].description == "discharge rate"
    assert procedure.safety.max_temperature_C == 55 and procedure.sampling.voltage_delta_V == 0.005
    assert procedure.steps[0].label == "capacity # 1" and procedure.steps[0].tags == ["capacity", "main"]
    assert procedure.steps[1].label is None
    assert parse_text(format_text(procedure)).procedure == procedure


def test_load_accepts_json_text_and_lines() -> None:
    lines = CONTRACT_EXAMPLE.splitlines()
    as_text = load(CONTRACT_EXAMPLE).procedure
    assert load(lines).procedure == as_text
    assert load(as_text.to_json()).procedure == as_text
    with pytest.raises(ProcedureError, match="a procedure is a JSON object"):
        load(42)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(procedures())
def test_text_json_round_trip(procedure: Procedure) -> None:
    text = format_text(procedure)
    assert parse_text(text).procedure == procedure
    assert parse_json(json.loads(json.dumps(procedure.to_json()))) == procedure


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=8))
def test_any_text_parses_or_names_its_problems(lines: list[str]) -> None:
    try:
        parse_text("\n".join(lines))
    except ProcedureError as exc:
        assert exc.problems and all(str(p) for p in exc.problems)

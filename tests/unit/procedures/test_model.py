from __future__ import annotations

import json

import jsonschema
import pytest

from fastlims.procedures.model import (
    MAX_DEPTH,
    MAX_POINTS,
    MAX_STEPS,
    ProcedureError,
    parse_json,
    procedure_json_schema,
)

CAPACITY = {
    "format": "fastlims-procedure/1",
    "name": "capacity",
    "variables": {"rate": {"value": 0.333, "min": 0.2, "max": 1.0, "unit": "C"}},
    "steps": [
        {"type": "ambient", "temperature_C": 25, "until": [{"time_s": 7200}]},
        {"type": "cc", "direction": "charge", "c_rate": 0.5, "until": [{"voltage_above_V": 4.2}]},
        {"type": "cv", "voltage_V": 4.2, "until": [{"current_below_c_rate": 0.05}]},
        {"type": "rest", "until": [{"time_s": 3600}]},
        {"type": "cc", "direction": "discharge", "c_rate": "{rate}", "until": [{"voltage_below_V": 2.5}]},
        {
            "type": "repeat",
            "count": 2,
            "steps": [{"type": "pulse", "direction": "discharge", "current_A": 10, "duration_s": 10}],
        },
    ],
    "safety": {"max_temperature_C": 50, "delay_s": 1.0},
}


def test_json_round_trip_keeps_the_contract_keys() -> None:
    procedure = parse_json(CAPACITY)
    again = parse_json(json.loads(json.dumps(procedure.to_json())))
    assert again == procedure
    assert procedure.to_json()["steps"][4]["c_rate"] == "{rate}"
    assert [path for path, _ in procedure.walk()][-1] == "steps[5].steps[0]"


def _problems(data: object) -> list[str]:
    with pytest.raises(ProcedureError) as info:
        parse_json(data)
    return [str(p) for p in info.value.problems]


def test_unknown_step_type_names_the_step() -> None:
    data = {"steps": [{"type": "rest", "until": [{"time_s": 1}]}, {"type": "dance", "until": []}]}
    assert _problems(data) == [
        "steps[1]: unknown step type 'dance'; expected one of "
        "rest, cc, cv, cp, pulse, profile, ambient, external, repeat"
    ]


def test_every_problem_is_reported_with_its_path() -> None:
    data = {
        "steps": [
            {"type": "repeat", "count": 0, "steps": [{"type": "cc", "c_rate": 1, "until": [{"time_s": "ten"}]}]},
            {"type": "cc", "direction": "charge", "current_A": 1, "c_rate": 1, "until": []},
            {"type": "repeat", "steps": [{"type": "rest", "until": [{"time_s": 1}]}]},
        ]
    }
    assert _problems(data) == [
        "steps[0]: count: Input should be greater than or equal to 1",
        "steps[0].steps[0]: direction is required",
        "steps[0].steps[0]: until[0].time_s: expected a number or a variable reference like \"{name}\", got 'ten'",
        "steps[1]: a cc step gives exactly one of current_A or c_rate",
        "steps[2]: count is required",
    ]


def test_termination_has_exactly_one_key() -> None:
    problems = _problems({"steps": [{"type": "rest", "until": [{}]}]})
    assert problems[0].startswith("steps[0]: until[0]: a termination has exactly one of time_s")


def test_hostile_sizes_are_refused_before_building_models() -> None:
    deep: dict[str, object] = {"steps": []}
    cursor = deep
    for _ in range(10_000):  # far deeper than any recursion limit
        inner: dict[str, object] = {"type": "repeat", "count": 1, "steps": []}
        cursor["steps"].append(inner)  # type: ignore[attr-defined]
        cursor = inner
    assert _problems(deep) == [f"procedure: repeats nested too deep: at most {MAX_DEPTH} levels"]
    wide = {"steps": [{"type": "rest", "until": [{"time_s": 1}]}] * (MAX_STEPS + 1)}
    assert "too many steps" in _problems(wide)[0]
    points = [[float(i), 1.0] for i in range(MAX_POINTS + 1)]
    assert (
        "too many profile points"
        in _problems({"steps": [{"type": "profile", "quantity": "current", "points": points}]})[0]
    )


def test_json_schema_is_generated_from_the_models() -> None:
    schema = procedure_json_schema()
    assert schema["$id"] == "/api/schemas/procedure.json"
    text = json.dumps(schema)
    for key in ("current_below_c_rate", "voltage_above_V", "custom_profile", "water_spray", "delay_s"):
        assert key in text
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(CAPACITY)) == []
    bad = {"steps": [{"type": "dance"}]}
    assert list(validator.iter_errors(bad))
    two_keys = {"steps": [{"type": "rest", "until": [{"time_s": 1, "voltage_below_V": 2}]}]}
    assert list(validator.iter_errors(two_keys))

"""The seed's Figure 2 ``variables``: accepted as the seed writes it, refused with a clear reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fastlims.messaging.variables import Variables

SEED_FIGURE_2 = {
    "test_procedures": [],
    "custom_profile": {
        "Name": "current",
        "type": "input",
        "unit": "mA",
        "values": [
            {"timestamp": 0, "value": "1.0"},
            {"timestamp": 1, "value": "2.0"},
            {"timestamp": 2, "value": "3.0"},
        ],
    },
    "FMU_signal_connections": [{"InSignalReference": "FMU _04/Port_C", "OutSignalReference": "FMU _03/Port_E"}],
}


def test_the_seed_sample_parses_with_string_numbers() -> None:
    variables = Variables.model_validate(SEED_FIGURE_2)
    assert variables.custom_profile is not None
    assert [p.value for p in variables.custom_profile.values] == [1.0, 2.0, 3.0]
    assert variables.FMU_signal_connections[0].InSignalReference == "FMU _04/Port_C"


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (
            {
                "custom_profile": {
                    "Name": "i",
                    "values": [{"timestamp": 1, "value": 1}, {"timestamp": 1, "value": 2}],
                }
            },
            "strictly increase",
        ),
        ({"custom_profile": {"Name": "i", "values": [{"timestamp": 0, "value": "abc"}]}}, "valid number"),
        (
            {"custom_profile": {"Name": "i", "values": [{"timestamp": -1, "value": 1}]}},
            "greater than or equal",
        ),
        ({"custom_profile": {"Name": "i", "values": [{"timestamp": 0, "value": "nan"}]}}, "finite"),
        ({"custom_profile": {"Name": "i", "values": []}}, "at least 1"),
        (
            {"custom_profile": {"Name": "i", "type": "sideways", "values": [{"timestamp": 0, "value": 1}]}},
            "input",
        ),
        (
            {"FMU_signal_connections": [{"InSignalReference": "no-slash", "OutSignalReference": "A/b"}]},
            "FMU_name/Port",
        ),
        ({"FMU_signal_connections": [{"InSignalReference": "A/b"}]}, "OutSignalReference"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_bad_variables_are_refused_with_a_reason(patch: dict, expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Variables.model_validate(patch)
    assert expected in str(caught.value)

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from fastlims.procedures.battinfo import spec_iri, to_battinfo
from fastlims.procedures.defaults import TEST_CODES, NoDefaultProcedure, default_procedure
from fastlims.procedures.resolve import resolve
from fastlims.procedures.text import parse_text

from .uuts import GEN3B_CELL, GEN3B_MODULE, GEN3B_PACK

SCHEMA = json.loads((Path(__file__).parent / "data" / "battinfo-test-protocol.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
NOW = 1_800_000_000


def _errors(document: dict[str, object]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(document)]


@pytest.mark.parametrize("code", TEST_CODES)
def test_every_default_exports_valid_battinfo(code: str) -> None:
    exported = 0
    for ratings in (GEN3B_CELL, GEN3B_MODULE, GEN3B_PACK):
        try:
            procedure = default_procedure(code, ratings)
        except NoDefaultProcedure:
            continue
        document = to_battinfo(resolve(procedure, ratings), retrieved_at=NOW)
        assert _errors(document) == []
        exported += 1
    assert exported >= 1


def test_capacity_test_maps_steps_terminations_and_ambient() -> None:
    text = (
        "# sampling: period_s=0.5 voltage_delta_V=0.005\n"
        "Set ambient to 25 degC\nCharge at C/3 until 4.2 V\nHold at 4.2 V limited to 10 A until C/20\n"
        "Rest for 1 hour\nDischarge at 1C until 2.5 V  # tags=capacity\n"
        "Repeat 2 times:\n    Pulse discharge at 2C for 10 s\n    Rest for 40 s\n"
    )
    resolved = resolve(parse_text(text).procedure, GEN3B_CELL)
    document = to_battinfo(resolved, retrieved_at=NOW)
    assert _errors(document) == []
    method = document["method"]
    assert [step["mode"] for step in method] == ["cc", "cv", "rest", "cc", "group"]
    charge, hold, rest, discharge, group = method
    assert charge["direction"] == "charge" and charge["setpoints"]["current"]["unit"] == "A"
    assert charge["setpoints"]["current"]["value"] == pytest.approx(50 / 3)
    assert charge["termination"] == [{"quantity": "voltage", "direction": "above", "value": 4.2, "unit": "V"}]
    assert charge["temperature"] == {"value": 25.0, "unit": "degC"}
    assert hold["setpoints"]["current_limit"] == {"value": 10.0, "unit": "A"}
    assert hold["termination"][0] == {"quantity": "current", "direction": "below", "value": 2.5, "unit": "A"}
    assert rest["termination"][0] == {"quantity": "duration", "direction": "elapsed", "value": 3600.0, "unit": "s"}
    assert discharge["direction"] == "discharge" and discharge["setpoints"]["current"]["value"] == 50.0
    assert group["count"] == 2 and group["steps"][0]["duration"] == {"value": 10.0, "unit": "s"}
    assert document["test_spec"]["kind"] == "hppc"
    assert document["record"] == {"time_s": 0.5, "voltage_V": 0.005}
    assert document["conditions"] == {"temperature": {"value": 25.0, "unit": "degC"}}
    assert document["safety"]["max_current_mA"] == 250_000.0


def test_what_does_not_map_is_named_in_the_notes() -> None:
    text = (
        "Rest until below 30 degC or 2 hours\nFollow current profile: 0 -5; 10 5; 20 0\n"
        'External vibration for 3 hours "sweep"\n'
    )
    document = to_battinfo(resolve(parse_text(text).procedure, GEN3B_CELL), retrieved_at=NOW)
    assert _errors(document) == []
    notes = "\n".join(document["notes"])
    assert "steps[0] (Rest until below 30 degC or for 2 hours): the termination temperature_below_C 30" in notes
    assert "steps[1]" in notes and "a current profile of 3 points has no BattINFO step type" in notes
    assert "steps[2]" in notes and "an external vibration step" in notes
    assert [step["mode"] for step in document["method"]] == ["rest", "group", "group"]


def test_spec_iri_is_stable_and_battinfo_shaped() -> None:
    resolved = resolve(default_procedure("PERF-CAPACITY-RT", GEN3B_CELL), GEN3B_CELL)
    iri = spec_iri(resolved)
    assert iri == spec_iri(resolved)
    assert re.fullmatch(SCHEMA["$defs"]["SpecIri"]["pattern"], iri)
    other = resolve(default_procedure("PERF-CAPACITY-RT", GEN3B_CELL), GEN3B_CELL, {"discharge_rate": 1.0})
    assert spec_iri(other) != iri
    with pytest.raises(ValueError, match="not a BattINFO test kind"):
        to_battinfo(resolved, retrieved_at=NOW, kind="party")

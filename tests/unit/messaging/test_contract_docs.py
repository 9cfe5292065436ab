"""docs/mqtt.md and the AsyncAPI document say what the message models do."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from fastlims.messaging.asyncapi import document
from fastlims.messaging.schemas import ALL_MESSAGES, SEED_TIME_PATTERN, RunEvent

DOC = Path(__file__).parents[3] / "docs" / "mqtt.md"


def test_every_message_requires_a_message_id_in_asyncapi() -> None:
    schemas = document()["components"]["schemas"]
    for name in ALL_MESSAGES:
        assert "message_id" in schemas[name]["required"], name


def test_variables_has_its_schema_in_asyncapi() -> None:
    schemas = document()["components"]["schemas"]
    variables = schemas["RequestMessage"]["properties"]["variables"]
    assert variables["$ref"] == "#/components/schemas/Variables"
    assert {"test_procedures", "custom_profile", "FMU_signal_connections"} <= set(schemas["Variables"]["properties"])
    assert "CustomProfile" in schemas and "ProfilePoint" in schemas


def test_every_time_field_has_the_one_documented_format() -> None:
    schemas = document()["components"]["schemas"]
    time_fields = {
        (name, field)
        for name, schema in schemas.items()
        for field, spec in schema.get("properties", {}).items()
        if field in ("at", "since", "test_date", "last_update", "scheduled_start", "t0_utc")
    }
    assert len(time_fields) == 9  # BenchReply.at joined in bench contract v1, RunComparison.at with hybrid runs
    for name, field in time_fields:
        spec = schemas[name]["properties"][field]
        options = [spec, *spec.get("anyOf", [])]
        patterns = [option.get("pattern") for option in options if option.get("type") == "string"]
        assert SEED_TIME_PATTERN in patterns, (name, field)
    with pytest.raises(ValidationError, match="at\n.*must be 'YYYY-MM-DD HH:MM:SS'"):
        RunEvent(run_id="r", test_UUID="u", event="started", at="2027-03-01T08:00:00.123456Z")


def test_the_json_examples_in_the_doc_are_valid_messages() -> None:
    text = DOC.read_text()
    assert "TR-2027-000042-run-" not in text
    assert "3f2a9c1e-8d4b-4e59-9a31-6c0f1d2b7e44.run-001" in text
    checked = 0
    for block in re.findall(r"```json\n(.*?)```", text, flags=re.S):
        example = json.loads(block)
        model = ALL_MESSAGES["AckMessage" if "accepted" in example else "MetricsBatch"]
        if "test_name" in example:
            model = ALL_MESSAGES["RequestMessage"]
        elif "status" in example:
            model = ALL_MESSAGES["StatusMessage"]
        elif "topic" in example:
            model = ALL_MESSAGES["ErrorMessage"]
        model.model_validate(example)
        checked += 1
    assert checked == 6


def test_the_bench_contract_is_in_asyncapi() -> None:
    doc = document()
    replies = doc["channels"]["benchReplies"]
    assert replies["address"] == "fastest/v1/benches/{bench}/replies"
    assert replies["messages"] == {"BenchReply": {"$ref": "#/components/messages/BenchReply"}}
    assert doc["operations"]["receiveBenchReply"]["action"] == "receive"
    schemas = doc["components"]["schemas"]
    command = schemas["BenchCommand"]
    assert {"command_id", "command", "run_id", "test_UUID", "expected_state"} <= set(command["required"])
    assert command["properties"]["command"]["enum"] == ["load", "start", "pause", "resume", "stop", "abort"]
    assert "ResolvedProcedure" in schemas and "RunFile" in schemas  # the run file's shape, not just "object"
    assert "capabilities" in schemas["BenchState"]["properties"] and "BenchCapabilities" in schemas
    assert "record_index" in schemas["MetricsBatch"]["properties"]
    assert {"step_started", "safety_tripped", "aborted"} <= set(schemas["RunEvent"]["properties"]["event"]["enum"])

"""The AsyncAPI 3.0 document of the MQTT contract, generated from the pydantic message models."""

from __future__ import annotations

from typing import Any

import yaml

from fastlims import __version__
from fastlims.messaging.schemas import ALL_MESSAGES
from fastlims.messaging.topics import Topics
from fastlims.messaging.variables import Variables

# (channel id, address relative to the prefix, parameters, message, description)
_CHANNELS: list[tuple[str, str, list[str], str, str]] = [
    (
        "request",
        "partners/{partner}/requests/{test_UUID}",
        ["partner", "test_UUID"],
        "RequestMessage",
        "The LIMS asks a Digital Twin partner for the FMU(s) of a test request (seed Figure 2). QoS 1. Sent to "
        "the request's partner (routing table) or, while it has none, to every partner; only the partner's own "
        "level (its MQTT user name) is readable to it.",
    ),
    (
        "ack",
        "partners/{partner}/requests/{test_UUID}/ack",
        ["partner", "test_UUID"],
        "AckMessage",
        "The partner accepts or refuses a request. QoS 1. Uploading the models also counts as acceptance. The "
        "first partner to accept a request without one becomes its partner; another partner's ack is refused "
        "(unauthorized).",
    ),
    (
        "status",
        "partners/{partner}/requests/{test_UUID}/status",
        ["partner", "test_UUID"],
        "StatusMessage",
        "The request's current lifecycle status. QoS 1, retained: a new subscriber gets it at once.",
    ),
    (
        "partnerErrors",
        "partners/{partner}/errors",
        ["partner"],
        "ErrorMessage",
        "The partner's own messages and uploads that the LIMS or the broker refused, with the reason.",
    ),
    (
        "labRequest",
        "requests/{test_UUID}",
        ["test_UUID"],
        "RequestMessage",
        "The lab's copy of every request message (readable by the LIMS role only).",
    ),
    (
        "labStatus",
        "requests/{test_UUID}/status",
        ["test_UUID"],
        "StatusMessage",
        "The lab's copy of every status, retained (readable by the LIMS role only).",
    ),
    (
        "benchCommands",
        "benches/{bench}/commands",
        ["bench"],
        "BenchCommand",
        "Bench contract v1: load/start/pause/resume/stop/abort for one physical bench. QoS 1. Each carries a "
        "command_id (a retry reuses it) and the state the LIMS expects the bench in; load and start carry the "
        "run file. The bench answers each command_id exactly once on benchReplies (docs/benches.md).",
    ),
    (
        "benchReplies",
        "benches/{bench}/replies",
        ["bench"],
        "BenchReply",
        "The bench's one answer per command_id: accepted, or rejected with a reason (a wrong expected_state "
        "names both states); a repeated command_id gets the same reply again and is not acted on twice. QoS 1.",
    ),
    (
        "benchState",
        "benches/{bench}/state",
        ["bench"],
        "BenchState",
        "A bench's state with its capabilities (birth message on connect), QoS 1, retained; its MQTT last will "
        "publishes 'offline' (retained).",
    ),
    (
        "runEvents",
        "benches/{bench}/runs/{run_id}/events",
        ["bench", "run_id"],
        "RunEvent",
        "Run lifecycle events (started, step_started, step_ended, progress, paused, resumed, safety_tripped, "
        "completed, failed, aborted), QoS 1, under the bench that runs it (a bench may publish under its own name "
        "only).",
    ),
    (
        "runMetrics",
        "benches/{bench}/runs/{run_id}/metrics",
        ["bench", "run_id"],
        "MetricsBatch",
        "Live samples in columnar batches (Battery Data Format column names), QoS 1; seq counts batches "
        "without gaps, record_index numbers a run's samples from 0 without gaps (store each index once).",
    ),
    (
        "partnerRunEvents",
        "partners/{partner}/runs/{run_id}/events",
        ["partner", "run_id"],
        "RunEvent",
        "The run events of the partner's own requests (the LIMS's copy of the bench's; the partner's level only).",
    ),
    (
        "partnerRunMetrics",
        "partners/{partner}/runs/{run_id}/metrics",
        ["partner", "run_id"],
        "MetricsBatch",
        "The live metrics of the partner's own requests (the LIMS's copy of the bench's, same seq).",
    ),
    (
        "runComparison",
        "benches/{bench}/runs/{run_id}/comparison",
        ["bench", "run_id"],
        "RunComparison",
        "A hybrid run's residual (measured − predicted voltage and temperature, per step and overall, RMS and "
        "maximum), published once when the physical run and its twin have both completed; alert when the RMS "
        "voltage error exceeds the lab's threshold. QoS 1 (the lab's; LIMS role).",
    ),
    (
        "partnerRunComparison",
        "partners/{partner}/runs/{run_id}/comparison",
        ["partner", "run_id"],
        "RunComparison",
        "The residual of a hybrid run of the partner's own requests (the LIMS's copy; the partner's level only).",
    ),
    ("errors", "errors", [], "ErrorMessage", "Every message the LIMS refused, with the reason (the lab's; LIMS role)."),
]
_OPERATIONS: list[tuple[str, str, str]] = [
    # (operation id, action from the LIMS's point of view, channel)
    ("sendRequest", "send", "request"),
    ("receiveAck", "receive", "ack"),
    ("sendStatus", "send", "status"),
    ("sendPartnerError", "send", "partnerErrors"),
    ("sendLabRequest", "send", "labRequest"),
    ("sendLabStatus", "send", "labStatus"),
    ("sendBenchCommand", "send", "benchCommands"),
    ("receiveBenchReply", "receive", "benchReplies"),
    ("receiveBenchState", "receive", "benchState"),
    ("receiveRunEvents", "receive", "runEvents"),
    ("receiveRunMetrics", "receive", "runMetrics"),
    ("sendRunComparison", "send", "runComparison"),
    ("sendPartnerRunComparison", "send", "partnerRunComparison"),
    ("sendError", "send", "errors"),
]


REF = "#/components/schemas/{model}"


def document(topics: Topics | None = None, server_host: str = "127.0.0.1:1883") -> dict[str, Any]:
    topics = topics or Topics()
    schemas: dict[str, Any] = {}
    for name, model in [*ALL_MESSAGES.items(), ("Variables", Variables)]:
        schema = model.model_json_schema(ref_template=REF, mode="serialization")
        for def_name, definition in schema.pop("$defs", {}).items():
            schemas[def_name] = definition
        schemas[name] = schema
    for name in ALL_MESSAGES:
        # Senders always set it (the models fill it in); receivers de-duplicate on it.
        required = schemas[name].setdefault("required", [])
        if "message_id" not in required:
            required.insert(0, "message_id")
    # The request message writes ``variables`` through a serializer (profile values as strings),
    # which hides its shape from the serialization schema: give it the model's own schema.
    schemas["RequestMessage"]["properties"]["variables"] = {
        "$ref": REF.format(model="Variables"),
        "description": 'Seed Figure 2 variables; custom_profile values are written as strings ("1.0")',
    }
    channels = {}
    for channel_id, address, parameters, message, description in _CHANNELS:
        channels[channel_id] = {
            "address": f"{topics.prefix}/{address}",
            "description": description,
            "messages": {message: {"$ref": f"#/components/messages/{message}"}},
            **(
                {"parameters": {p: {"description": f"The {p} (one topic level)"} for p in parameters}}
                if parameters
                else {}
            ),
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "FastLIMS ↔ Digital Twin MQTT contract",
            "version": __version__,
            "description": "Topics, payloads and rules between the LIMS, Digital Twin partners and test benches. "
            "Every time in every message is UTC as 'YYYY-MM-DD HH:MM:SS'. Every message carries a "
            "message_id (required); receivers de-duplicate on it (QoS 1 is at-least-once). Client ids "
            "are USERNAME or USERNAME/anything; the broker refuses packets over its maximum size.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "lims": {
                "host": server_host,
                "protocol": "mqtt",
                "protocolVersion": "3.1.1",
                "description": "Username/password required; the client id is the username or starts with "
                "'username/'; topic ACLs per identity: a partner reads and acks only under "
                "partners/<its user name>/, a bench speaks only under benches/<its user name>/; a last will "
                "must be a topic the identity may publish to. Largest packet: FASTLIMS_MQTT_MAX_PACKET_BYTES "
                "(16 MiB).",
            }
        },
        "channels": channels,
        "operations": {
            op_id: {"action": action, "channel": {"$ref": f"#/channels/{channel}"}}
            for op_id, action, channel in _OPERATIONS
        },
        "components": {
            "messages": {
                name: {"name": name, "payload": {"$ref": f"#/components/schemas/{name}"}} for name in ALL_MESSAGES
            },
            "schemas": schemas,
        },
    }


def as_yaml(topics: Topics | None = None, server_host: str = "127.0.0.1:1883") -> str:
    return yaml.safe_dump(document(topics, server_host), sort_keys=False, allow_unicode=True, width=110)

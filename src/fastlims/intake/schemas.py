"""Message shapes of the intake: ``inter_connection.json`` (its JSON Schema is generated from
:class:`InterConnection`) and the API's answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fastlims.messaging.variables import SignalConnection


class InterConnection(BaseModel):
    """``inter_connection.json``: the seed's Figure 2 ``FMU_signal_connections`` list.

    ``InSignalReference`` and ``OutSignalReference`` are ``FMU_name/Port``, where ``FMU_name`` is
    the FMU's file name without ``.fmu`` and ``Port`` a variable of that FMU. Other top-level
    members (a description, a version) are allowed and ignored.
    """

    model_config = ConfigDict(extra="allow", title="inter_connection.json")

    FMU_signal_connections: list[SignalConnection] = Field(
        max_length=10_000, description="Each connection drives one input from one output"
    )


def interconnection_json_schema() -> dict[str, Any]:
    return InterConnection.model_json_schema()


class ProblemOut(BaseModel):
    file: str
    variable: str | None
    message: str
    code: str


class UploadOutcome(BaseModel):
    """What happened to one upload event (the API's answer to a PUT or an Event Grid event)."""

    path: str
    outcome: str = Field(description="ignored | gone | duplicate | waiting | accepted | quarantined | not-processed")
    test_UUID: str | None = None
    detail: str = ""
    status: str | None = Field(default=None, description="the request's status after the event")
    missing: list[str] = Field(default_factory=list)
    problems: list[ProblemOut] = Field(default_factory=list)


class WebhookAnswer(BaseModel):
    received: int
    outcomes: list[UploadOutcome]

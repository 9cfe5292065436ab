"""MQTT message schemas: the single source of truth for payloads, JSON Schemas and AsyncAPI.

The request message is the seed's Figure 2 with its field names and shapes, plus ``message_id``
(every message carries one, for de-duplication) and three additions a DT can ignore
(``request_number``, ``test_standard``, ``UUT_ratings``). Its ``variables.test_procedures`` holds
one element: the procedure the request runs, resolved for the UUT with its variables' default
values (docs/procedures.md). Every time in every message is UTC, written as the seed writes
them: ``YYYY-MM-DD HH:MM:SS`` (``SeedTime``, checked on the way in); sub-second time lives in
relative seconds (``MetricsBatch.timestamps``), never in a time stamp.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_serializer,
    model_validator,
)

from fastlims.messaging.variables import Variables

SEED_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SEED_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=100)]


def new_message_id() -> str:
    return str(uuid.uuid4())


def seed_time(value: datetime) -> str:
    """``2024-08-05 10:00:00`` in UTC, the seed's Figure 2 format."""
    return value.astimezone(UTC).strftime(SEED_TIME_FORMAT)


def _parse_seed_time(value: object) -> object:
    if isinstance(value, str):
        try:
            datetime.strptime(value, SEED_TIME_FORMAT)
        except ValueError:
            raise ValueError(f"{value!r} must be 'YYYY-MM-DD HH:MM:SS' (UTC)") from None
    return value


SeedTime = Annotated[
    str,
    BeforeValidator(_parse_seed_time),
    Field(description="UTC, YYYY-MM-DD HH:MM:SS", json_schema_extra={"pattern": SEED_TIME_PATTERN}),
]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: MessageId = Field(default_factory=new_message_id, description="Unique per message; de-duplicate on it")


class RequestStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(description="Lifecycle status name, e.g. Submitted")
    last_update: SeedTime


class UutRatingsMessage(BaseModel):
    """The UUT's ratings (addition to Figure 2): SI units (A, V, Ah, degC), currents as magnitudes."""

    model_config = ConfigDict(extra="ignore", title="UUT_ratings")

    code: str
    chemistry: str
    format: Literal["cell", "module", "pack"]
    series_count: int
    parallel_count: int
    nominal_capacity_Ah: float
    nominal_voltage_V: float
    min_voltage_V: float
    max_voltage_V: float
    max_charge_current_A: float
    max_discharge_current_A: float
    max_pulse_current_A: float
    min_temperature_C: float
    max_temperature_C: float


class RequestMessage(_Message):
    """LIMS → DT on ``…/requests/{test_UUID}`` (QoS 1): choose the FMU(s) for this test.

    ``variables.test_procedures`` holds one element, the procedure the request runs resolved for the
    UUT with its variables' default values (the ``ResolvedProcedure`` form: SI units, currents
    signed positive = charge, safety limits filled; docs/procedures.md); ``UUT_ratings`` the ratings
    it was resolved against. A request made before requests carried a procedure keeps the
    requester's ``test_procedures`` and has no ``UUT_ratings``.
    """

    model_config = ConfigDict(extra="ignore", json_schema_extra={"title": "Test request (seed Figure 2)"})

    test_name: str
    test_UUID: str
    test_UUT: str
    test_bench: Literal["Virtual", "Physical"]
    use_case: str
    variables: Variables = Field(default_factory=Variables)
    test_date: SeedTime = Field(description="Preferred start, UTC, YYYY-MM-DD HH:MM:SS")
    status: RequestStatus
    request_number: str | None = Field(default=None, description="Addition: the LIMS request number")
    test_standard: str | None = Field(default=None, description="Addition: the standard's code")
    UUT_ratings: UutRatingsMessage | None = Field(
        default=None,
        description="Addition: the UUT's ratings the procedure was resolved against, so the DT can choose a model",
    )

    @field_serializer("variables")
    def _seed_style_values(self, variables: Variables) -> dict[str, Any]:
        # The seed's sample writes profile values as strings ("1.0"); a DT built on it expects that.
        data = variables.model_dump(mode="json")
        profile = data.get("custom_profile")
        if profile:
            for point in profile["values"]:
                point["value"] = repr(float(point["value"]))
        return data


class AckMessage(_Message):
    """DT → LIMS on ``…/requests/{test_UUID}/ack`` (QoS 1)."""

    message_id: MessageId = Field(description="Required: a redelivered ack is handled once")
    test_UUID: str
    accepted: bool
    reason: str | None = Field(default=None, max_length=4000, description="Why the DT refused (or a note)")


class StatusMessage(_Message):
    """LIMS → all on ``…/requests/{test_UUID}/status`` (QoS 1, retained): the current status."""

    test_UUID: str
    request_number: str
    status: RequestStatus
    reason: str | None = None
    progress: int = Field(default=0, ge=0, le=100)


class ErrorMessage(_Message):
    """LIMS → all on ``…/errors``: a message the LIMS refused, and why."""

    topic: str
    reason: str
    client: str | None = None
    at: SeedTime


class BenchCommand(_Message):
    """LIMS → bench on ``…/benches/{bench}/commands`` (QoS 1)."""

    command: Literal["start", "stop", "abort"]
    run_id: str
    test_UUID: str
    scheduled_start: SeedTime | None = None
    parameters: dict[str, float] = Field(default_factory=dict)
    idempotency_key: str = Field(description="workflow id + run id: a bench runs each key once")


class BenchState(BaseModel):
    """Bench → all on ``…/benches/{bench}/state`` (retained; the last will says ``offline``)."""

    model_config = ConfigDict(extra="forbid")

    bench: str
    state: Literal["online", "idle", "busy", "offline", "fault"]
    since: SeedTime
    run_id: str | None = None
    message_id: MessageId = Field(default_factory=new_message_id)


class RunEvent(_Message):
    """Bench → lab on ``…/benches/{bench}/runs/{run_id}/events``."""

    run_id: str
    test_UUID: str
    event: Literal["started", "progress", "completed", "failed", "cancelled"]
    progress: float = Field(default=0.0, ge=0, le=100)
    reason: str | None = None
    at: SeedTime


class SignalSeries(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: str = ""
    values: list[float]


class MetricsBatch(_Message):
    """Bench → lab on ``…/benches/{bench}/runs/{run_id}/metrics`` (QoS 0 or 1): a columnar batch of samples.

    One message carries many samples: ``timestamps`` (seconds of simulated or test time) and,
    per signal, one array of the same length. ``seq`` counts batches from 0 without gaps, so a
    subscriber sees loss at once.
    """

    run_id: str
    test_UUID: str
    seq: int = Field(ge=0)
    t0_utc: SeedTime | None = Field(default=None, description="Wall-clock start of the run, UTC, YYYY-MM-DD HH:MM:SS")
    timestamps: list[float]
    signals: dict[str, SignalSeries]

    @model_validator(mode="after")
    def _columns_line_up(self) -> MetricsBatch:
        n = len(self.timestamps)
        for name, series in self.signals.items():
            if len(series.values) != n:
                raise ValueError(f"signal {name!r} has {len(series.values)} values for {n} timestamps")
        if any(not math.isfinite(t) for t in self.timestamps):
            raise ValueError("timestamps must be finite")
        return self

    @property
    def samples(self) -> int:
        return len(self.timestamps) * max(1, len(self.signals))


ALL_MESSAGES: dict[str, type[BaseModel]] = {
    "RequestMessage": RequestMessage,
    "AckMessage": AckMessage,
    "StatusMessage": StatusMessage,
    "ErrorMessage": ErrorMessage,
    "BenchCommand": BenchCommand,
    "BenchState": BenchState,
    "RunEvent": RunEvent,
    "MetricsBatch": MetricsBatch,
}

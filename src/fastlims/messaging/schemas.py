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

import functools
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
from fastlims.procedures.resolved import ResolvedProcedure
from fastlims.procedures.runfile import RunFileError, RunProcedure

SEED_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
SEED_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=100)]


def new_message_id() -> str:
    return str(uuid.uuid4())


def seed_time(value: datetime) -> str:
    """``2024-08-05 10:00:00`` in UTC, the seed's Figure 2 format."""
    return value.astimezone(UTC).strftime(SEED_TIME_FORMAT)


def _parse_seed_time(value: object) -> object:
    if isinstance(value, str) and not (_seed_time_ok(value) if len(value) == 19 else _strptime_ok(value)):
        raise ValueError(f"{value!r} must be 'YYYY-MM-DD HH:MM:SS' (UTC)")
    return value


def _strptime_ok(value: str) -> bool:
    try:
        datetime.strptime(value, SEED_TIME_FORMAT)
    except ValueError:
        return False
    return True


# A bench repeats its run's ``t0_utc`` in every metrics batch (5 a second, hundreds of benches):
# strptime was a fifth of the gateway's validation time. Only 19-character values are cached, so
# the cache stays small whatever a hostile peer sends.
_seed_time_ok = functools.lru_cache(maxsize=4096)(_strptime_ok)


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


#: The bench contract's version (docs/benches.md, "Bench contract v1").
CONTRACT_VERSION = "1"
BenchStateName = Literal["online", "idle", "loaded", "running", "paused", "offline", "fault"]
CommandName = Literal["load", "start", "pause", "resume", "stop", "abort"]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
TopicId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]


class BenchCapabilities(BaseModel):
    """What a bench can run (its birth message; the LIMS checks a run against it before dispatch)."""

    model_config = ConfigDict(extra="forbid")

    contract: Literal["1"] = Field(default=CONTRACT_VERSION, description="The bench contract version it speaks")
    channels: int = Field(ge=1, le=10_000)
    max_current_A: float = Field(gt=0, le=1e6, description="Largest current magnitude it drives")
    min_voltage_V: float = Field(ge=0, le=1e5)
    max_voltage_V: float = Field(gt=0, le=1e5)
    temperature_chamber: bool
    step_modes: list[Annotated[str, StringConstraints(min_length=1, max_length=40)]] = Field(
        max_length=50, description="Step types it executes: rest, cc, cv, cp, pulse, profile, ambient, ..."
    )
    max_sample_rate_hz: float = Field(gt=0, le=1e6)
    software: ShortText = Field(description="The bench software and its version")


class RunFile(BaseModel):
    """What a bench runs: the run file the pipeline wrote (``fastlims.run-procedure/1``): the resolved
    procedure (SI units, currents positive = charge, safety limits filled), the UUT's ratings it was
    resolved against, the expected duration and the standard's criterion."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["fastlims.run-procedure/1"]
    test_code: str = Field(default="", max_length=200)
    expected_duration_s: float = Field(gt=0, le=1e9)
    uut_ratings: UutRatingsMessage
    criterion: dict[str, Any] | None = None
    procedure: ResolvedProcedure

    @model_validator(mode="after")
    def _a_run_file(self) -> RunFile:
        try:
            RunProcedure.from_json(self.model_dump_json())
        except RunFileError as exc:
            raise ValueError(f"not a runnable run file: {exc}") from None
        return self

    def run_procedure(self) -> RunProcedure:
        """The run file as the procedures core reads it."""
        return RunProcedure.from_json(self.model_dump_json())

    @classmethod
    def of(cls, run: RunProcedure) -> RunFile:
        return cls.model_validate_json(run.to_json())


class BenchCommand(_Message):
    """LIMS → bench on ``…/benches/{bench}/commands`` (QoS 1), contract v1.

    ``command_id`` is unique per command; a retry of the same command reuses it, and the bench
    answers a command id once (a repeat gets the same reply again, and nothing is done twice).
    ``expected_state`` is the state the LIMS believes the bench is in: on a mismatch the bench
    rejects the command. ``load`` and ``start`` carry the ``run_file``; ``start`` from ``idle`` loads
    and starts in one command.
    """

    contract: Literal["1"] = CONTRACT_VERSION
    command_id: TopicId = Field(description="Unique per command; a retry reuses it")
    command: CommandName
    run_id: TopicId
    test_UUID: TopicId
    expected_state: BenchStateName = Field(description="The bench state the LIMS believes it is in")
    run_file: RunFile | None = Field(default=None, description="Required for load and start")
    factors: dict[Annotated[str, StringConstraints(min_length=1, max_length=200)], float] = Field(
        default_factory=dict, max_length=200, description="The run's DoE factor values"
    )
    scheduled_start: SeedTime | None = Field(default=None, description="The booked start (informational)")
    idempotency_key: str | None = Field(
        default=None, max_length=300, description="workflow id + run id: the run's key across commands"
    )
    reason: Reason | None = Field(default=None, description="Why (stop and abort)")

    @model_validator(mode="after")
    def _run_file_for_load_and_start(self) -> BenchCommand:
        if self.command in ("load", "start") and self.run_file is None:
            raise ValueError(f"command {self.command!r} needs run_file (the run's resolved procedure)")
        return self


class BenchReply(_Message):
    """Bench → LIMS on ``…/benches/{bench}/replies`` (QoS 1): the one answer to a command id.

    ``command`` and ``run_id`` are None only when the command could not be read (the reason says
    why); ``state`` is the bench's state after the command."""

    command_id: TopicId
    command: CommandName | None = None
    run_id: TopicId | None = None
    result: Literal["accepted", "rejected"]
    reason: Reason | None = Field(default=None, description="Required when rejected")
    state: BenchStateName
    at: SeedTime

    @model_validator(mode="after")
    def _rejected_says_why(self) -> BenchReply:
        if self.result == "rejected" and not self.reason:
            raise ValueError("a rejected reply needs a reason")
        return self


class BenchState(BaseModel):
    """Bench → all on ``…/benches/{bench}/state`` (QoS 1, retained; the last will says ``offline``).

    A bench sends its ``capabilities`` on every state message (its will too), so the retained one
    always has them."""

    model_config = ConfigDict(extra="forbid")

    bench: TopicId
    state: BenchStateName
    since: SeedTime
    run_id: TopicId | None = None
    capabilities: BenchCapabilities | None = Field(default=None, description="Always sent by a v1 bench")
    reason: Reason | None = Field(default=None, description="Why, for offline and fault")
    message_id: MessageId = Field(default_factory=new_message_id)


class RunEvent(_Message):
    """Bench → lab on ``…/benches/{bench}/runs/{run_id}/events`` (QoS 1).

    Step events carry ``step_index`` (the resolved procedure's step id: the ``Step ID`` column) and
    ``cycle_index``; ``step_ended`` the step's ``charge_Ah`` and ``energy_Wh`` (signed like the
    current: negative for a discharge); ``safety_tripped`` the ``limit``, the ``value`` and the test
    time; ``record_index`` is the last record sent so far on the metrics topic."""

    run_id: str = Field(max_length=128)
    test_UUID: str = Field(max_length=128)
    event: Literal[
        "started",
        "step_started",
        "step_ended",
        "progress",
        "paused",
        "resumed",
        "safety_tripped",
        "completed",
        "failed",
        "aborted",
        "cancelled",
    ]
    progress: float = Field(default=0.0, ge=0, le=100)
    reason: str | None = Field(default=None, max_length=4000)
    at: SeedTime
    test_time_s: float | None = Field(default=None, ge=0)
    step_index: int | None = Field(default=None, ge=0)
    cycle_index: int | None = Field(default=None, ge=0)
    charge_Ah: float | None = None
    energy_Wh: float | None = None
    limit: str | None = Field(default=None, max_length=100, description="The safety limit that tripped")
    value: float | None = Field(default=None, description="The measured value that tripped it")
    record_index: int | None = Field(default=None, ge=-1, description="The last record sent so far (-1: none)")


class SignalSeries(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: str = Field(default="", max_length=50)
    values: list[float] = Field(max_length=1_000_000)


class MetricsBatch(_Message):
    """Bench → lab on ``…/benches/{bench}/runs/{run_id}/metrics`` (QoS 0 or 1): a columnar batch of samples.

    One message carries many samples: ``timestamps`` (seconds of simulated or test time) and,
    per signal, one array of the same length. ``seq`` counts batches from 0 without gaps, so a
    subscriber sees loss at once.
    """

    run_id: str
    test_UUID: str
    seq: int = Field(ge=0)
    record_index: int | None = Field(
        default=None,
        ge=0,
        description="The index of the batch's first sample; a run's samples are numbered from 0 without gaps",
    )
    t0_utc: SeedTime | None = Field(default=None, description="Wall-clock start of the run, UTC, YYYY-MM-DD HH:MM:SS")
    timestamps: list[float] = Field(max_length=1_000_000)
    signals: dict[str, SignalSeries] = Field(max_length=256)

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


class StepResidualMessage(BaseModel):
    """The residual over one step execution of the measured run (``Step Count / 1``)."""

    model_config = ConfigDict(extra="forbid")

    step_count: int = Field(ge=-1, description="-1: samples before the procedure's first step")
    step_id: int | None = Field(default=None, ge=-1, description="The procedure leaf (``Step ID``; -1: none yet)")
    start_time_s: float = Field(description="The step's first compared sample, test time")
    samples: int = Field(ge=0)
    rms_voltage_error_V: float | None = Field(description="None when the step has no compared sample")
    max_voltage_error_V: float | None
    mean_voltage_error_V: float | None
    temperature_samples: int = Field(default=0, ge=0)
    rms_temperature_error_K: float | None = None
    max_temperature_error_K: float | None = None


class RunComparison(_Message):
    """LIMS → Digital Twin on ``…/benches/{bench}/runs/{run_id}/comparison`` and the partner's copy
    ``…/partners/{partner}/runs/{run_id}/comparison`` (QoS 1): a hybrid run's residual, measured −
    predicted, once the physical run and its twin (the same procedure and factors on the partner's
    models, on a virtual bench) both completed. The prediction is interpolated onto the measured
    test time; voltage errors in V, temperature errors in K; ``alert`` when the whole run's RMS
    voltage error exceeds ``threshold_V`` (``FASTLIMS_TWIN_RESIDUAL_ALERT_V``): the model no longer
    matches the real cell."""

    run_id: str = Field(max_length=128, description="The physical run (the measurement)")
    twin_run_id: str = Field(max_length=128, description="Its twin run (the prediction)")
    test_UUID: str = Field(max_length=128)
    bench: str = Field(max_length=100, description="The physical bench")
    twin_bench: str = Field(max_length=100, description="The virtual bench the twin ran on")
    at: SeedTime
    samples: int = Field(ge=0, description="Measured samples compared")
    uncovered_samples: int = Field(default=0, ge=0, description="Measured samples outside the prediction's time")
    rms_voltage_error_V: float = Field(ge=0)
    max_voltage_error_V: float = Field(ge=0, description="The largest absolute voltage error")
    mean_voltage_error_V: float = Field(description="The bias: positive when the cell reads above the model")
    temperature_samples: int = Field(default=0, ge=0)
    rms_temperature_error_K: float | None = Field(default=None, ge=0, description="None without temperatures")
    max_temperature_error_K: float | None = Field(default=None, ge=0)
    threshold_V: float = Field(ge=0, description="The RMS voltage error above which the alert is raised")
    alert: bool
    steps: list[StepResidualMessage] = Field(default_factory=list, max_length=100_000)


ALL_MESSAGES: dict[str, type[BaseModel]] = {
    "RequestMessage": RequestMessage,
    "AckMessage": AckMessage,
    "StatusMessage": StatusMessage,
    "ErrorMessage": ErrorMessage,
    "BenchCommand": BenchCommand,
    "BenchReply": BenchReply,
    "BenchState": BenchState,
    "RunEvent": RunEvent,
    "MetricsBatch": MetricsBatch,
    "RunComparison": RunComparison,
}

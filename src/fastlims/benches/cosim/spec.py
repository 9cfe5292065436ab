"""What one simulation run does: step size, end, algorithm, the request's profile, the DoE run's
parameter values, stop conditions and what to record. Pure data (pydantic, frozen), picklable,
so a worker can hand it to a child process.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fastlims.benches.cosim.errors import CosimError
from fastlims.messaging.variables import CustomProfile, Variables
from fastlims.procedures.program import Program

Algorithm = Literal["jacobi", "gauss_seidel"]
Comparison = Literal["<", "<=", ">", ">=", "==", "!="]

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_WORDS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!=", "=": "=="}


class StopCondition(BaseModel):
    """End the run at the first communication point where ``signal op value`` holds, e.g.
    ``{"signal": "Cell.V", "op": "<=", "value": 2.5}`` (a voltage cut-off). ``unit`` (optional)
    is converted to the signal's declared unit (``"value": 2500, "unit": "mV"``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal: str = Field(min_length=1, description="FMU.variable or FMU/variable")
    op: Comparison
    value: float
    unit: str = ""

    @field_validator("op", mode="before")
    @classmethod
    def _word_ops(cls, value: object) -> object:
        return _WORDS.get(value, value) if isinstance(value, str) else value

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    def __str__(self) -> str:
        return f"{self.signal} {self.op} {self.value:g}{' ' + self.unit if self.unit else ''}"


class ProcedureRun(BaseModel):
    """A test procedure to run in closed loop (:mod:`.control`): the compiled ``program``, the
    Digital Twin's ``UUT_ports`` (role -> ``FMU/Port``) and its ``current_sign``. An ``external``
    step ends the run (a virtual bench has no fixture) unless ``allow_external``."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    program: Program
    ports: dict[str, str]
    current_sign: Literal["charge_positive", "discharge_positive"] = "charge_positive"
    allow_external: bool = False


class SimulationSpec(BaseModel):
    """One run of a system.

    The run ends at the earliest of: ``stop_time`` (the test's duration, from ``start_time``),
    the end of the profile (unless ``stop_at_profile_end`` is off), a stop condition, an FMU
    asking to terminate, a failure, a cancel. At least one of ``stop_time`` and a profile is
    needed. Steps are ``step_size`` long; a remainder shorter than a step is not simulated.

    ``profiles``: the request's ``custom_profile`` (the seed's shape), each driving the FMU input
    its ``Name`` names (``FMU/Port``, ``FMU.Port``, or a port name only one FMU has), interpolated
    at every communication point (``profile_interpolation``: ``linear``, or ``previous`` for a
    staircase), converted from its ``unit`` to the input's declared unit. A profile of
    ``type="output"`` is a reference trace and is not applied.

    ``parameters``: the DoE run's values, by ``FMU.name`` or by the bare name (then set in every
    FMU that declares it, as the DoE names parameters), set before initialization.

    ``outputs``: the signals to record (``FMU.variable``); default every Real output of every FMU.
    Driven inputs are always recorded (their values as set), and so is every connected output.
    ``decimation``: keep every n-th communication point (the last one always).

    ``procedure``: a test procedure run in closed loop (:class:`ProcedureRun`); the run then ends
    when the procedure does, and ``stop_time`` is the latest it may take (past it the run fails
    with ``end_cause="timeout"``). Rows are kept by the procedure's sampling rules. The procedure
    drives its role ports; ``profiles`` may drive other inputs beside it (a request's profile that
    names an FMU port), never a role port.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_size: float = Field(gt=0, description="Communication step, seconds")
    start_time: float = 0.0
    stop_time: float | None = Field(
        default=None, description="End of the run (seconds; the test's duration when start_time is 0)"
    )
    algorithm: Algorithm = "jacobi"
    profiles: tuple[CustomProfile, ...] = ()
    profile_interpolation: Literal["linear", "previous"] = "linear"
    stop_at_profile_end: bool = True
    parameters: dict[str, float | int | bool] = Field(default_factory=dict)
    stop_conditions: tuple[StopCondition, ...] = ()
    outputs: tuple[str, ...] | None = None
    decimation: int = Field(default=1, ge=1)
    fmu_logging: Literal["errors", "all", "off"] = "errors"
    procedure: ProcedureRun | None = None

    @field_validator("step_size", "start_time", "stop_time")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number of seconds")
        return value

    @field_validator("parameters")
    @classmethod
    def _finite_parameters(cls, values: dict[str, float | int | bool]) -> dict[str, float | int | bool]:
        bad = [name for name, value in values.items() if isinstance(value, float) and not math.isfinite(value)]
        if bad:
            raise ValueError(f"parameter values must be finite: {', '.join(bad)}")
        return values

    @model_validator(mode="after")
    def _has_an_end(self) -> SimulationSpec:
        applied = [p for p in self.profiles if p.type == "input"]
        if self.stop_time is None and not (applied and self.stop_at_profile_end):
            raise ValueError("the run has no end: give stop_time (the test's duration) or an input profile")
        if self.stop_time is not None and self.stop_time <= self.start_time:
            raise ValueError(f"stop_time {self.stop_time} must be after start_time {self.start_time}")
        if self.procedure is not None and self.stop_time is None:
            raise ValueError("a run with a procedure needs stop_time: the latest the procedure may take")
        return self

    def end_time(self) -> float:
        """When the run ends at the latest: the stop time or the profile's last point, the earlier."""
        ends = [] if self.stop_time is None else [self.stop_time]
        if self.stop_at_profile_end:  # profile timestamps count from the start of the test
            ends += [self.start_time + p.values[-1].timestamp for p in self.profiles if p.type == "input"]
        return min(ends)

    @classmethod
    def from_request(
        cls,
        variables: Variables | Mapping[str, Any],
        *,
        step_size: float,
        duration_s: float | None = None,
        parameters: Mapping[str, float | int | bool] | None = None,
        **options: Any,
    ) -> SimulationSpec:
        """The spec of one run of a request: its ``custom_profile``, the stop conditions among its
        ``test_procedures``, the test's duration and the DoE run's ``parameters``. ``options`` are
        the other fields (algorithm, outputs, decimation, ...). Raises :class:`CosimError`."""
        try:
            parsed = variables if isinstance(variables, Variables) else Variables.model_validate(variables)
            conditions, _ = stop_conditions_from_procedures(parsed.test_procedures)
            return cls(
                step_size=step_size,
                stop_time=duration_s,
                profiles=(parsed.custom_profile,) if parsed.custom_profile is not None else (),
                parameters=dict(parameters or {}),
                stop_conditions=tuple(conditions) + tuple(options.pop("stop_conditions", ())),
                **options,
            )
        except ValidationError as exc:
            raise CosimError(_problems(exc)) from exc


def stop_conditions_from_procedures(
    procedures: Iterable[str | Mapping[str, Any]],
) -> tuple[list[StopCondition], list[str]]:
    """The machine-readable stop conditions among a request's ``test_procedures``: every dict with
    ``signal``, ``op`` and ``value`` (and optionally ``unit``). Returns them and notes about the
    rest (free-text steps are for people and are skipped). Raises :class:`CosimError` for a dict
    that looks like a stop condition but is malformed."""
    conditions: list[StopCondition] = []
    notes: list[str] = []
    problems: list[str] = []
    for index, step in enumerate(procedures):
        if isinstance(step, Mapping) and {"signal", "op", "value"} <= set(step):
            try:
                conditions.append(StopCondition.model_validate(dict(step)))
            except ValidationError as exc:
                problems += [f"test_procedures[{index}]: {p}" for p in _problems(exc)]
        elif isinstance(step, Mapping):
            notes.append(f"test_procedures[{index}] is not a stop condition (no signal/op/value): skipped")
    if problems:
        raise CosimError(problems)
    return conditions, notes


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(map(str, e['loc'])) or 'spec'}: {e['msg']}" for e in exc.errors()]

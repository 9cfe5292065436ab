"""What a test *does*, as data: the procedure models (``format: fastlims-procedure/1``).

Two layers. :class:`Procedure`, here, is what people write (JSON, or the text form in
:mod:`.text`): C-rates, unsigned magnitudes with a ``direction``, ``"{name}"`` references to
variables, safety limits that may be left out. :class:`ResolvedProcedure`, in :mod:`.resolved`, is
what benches execute (made by :func:`fastlims.procedures.resolve.resolve`). The words both share
are in :mod:`.vocabulary`, the problems (:class:`Problem`, :class:`ProcedureError`) in
:mod:`.problems`; this module re-exports them all, so ``fastlims.procedures.model`` stays the one
import for the procedure models.

Pydantic v2 models, frozen, unknown fields refused. The input is hostile (request payloads,
partner files), so sizes are bounded *before* the models are built: total steps, nesting depth
of repeats, terminations per step, profile points, variables. The JSON Schema served at
``GET /api/schemas/procedure.json`` is generated from these models (:func:`procedure_json_schema`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Field, Strict, StringConstraints, ValidationError, model_validator

from fastlims.procedures.problems import Problem, ProcedureError, schema_problems
from fastlims.procedures.resolved import (
    AnyResolved,
    ResolvedAmbient,
    ResolvedCc,
    ResolvedCp,
    ResolvedCv,
    ResolvedExternal,
    ResolvedKind,
    ResolvedLeaf,
    ResolvedProcedure,
    ResolvedProfile,
    ResolvedPulse,
    ResolvedRepeat,
    ResolvedRest,
    ResolvedSafety,
    ResolvedStep,
    ResolvedTermination,
    resolved_json_schema,
)
from fastlims.procedures.vocabulary import (
    ACTIONS,
    FORMAT,
    MAX_DEPTH,
    MAX_POINTS,
    MAX_REPEAT_COUNT,
    MAX_STEPS,
    MAX_TAGS,
    MAX_TERMINATIONS,
    MAX_TEXT,
    MAX_VARIABLES,
    NAME_PATTERN,
    SAFETY_KEYS,
    STEP_TYPES,
    TERMINATION_KEYS,
    VAR_PATTERN,
    Action,
    Direction,
    Finite,
    FrozenModel,
    Interpolation,
    Label,
    NonNegative,
    Num,
    OneLine,
    Positive,
    PosNum,
    Quantity,
    Sampling,
    Tag,
    VarRef,
)

# What this module defines, and the names it re-exports from where they are now defined (resolved,
# problems, vocabulary) so that every import of fastlims.procedures.model keeps working.
__all__ = [
    "ACTIONS",
    "Action",
    "AmbientStep",
    "AnyResolved",
    "AnyStep",
    "CcStep",
    "CpStep",
    "CvStep",
    "Direction",
    "ExternalStep",
    "FORMAT",
    "Finite",
    "FrozenModel",
    "Interpolation",
    "Label",
    "MAX_DEPTH",
    "MAX_POINTS",
    "MAX_REPEAT_COUNT",
    "MAX_STEPS",
    "MAX_TAGS",
    "MAX_TERMINATIONS",
    "MAX_TEXT",
    "MAX_VARIABLES",
    "NAME_PATTERN",
    "NonNegative",
    "Num",
    "OneLine",
    "PosNum",
    "Positive",
    "Problem",
    "Procedure",
    "ProcedureError",
    "ProfileStep",
    "PulseStep",
    "Quantity",
    "RepeatStep",
    "ResolvedAmbient",
    "ResolvedCc",
    "ResolvedCp",
    "ResolvedCv",
    "ResolvedExternal",
    "ResolvedKind",
    "ResolvedLeaf",
    "ResolvedProcedure",
    "ResolvedProfile",
    "ResolvedPulse",
    "ResolvedRepeat",
    "ResolvedRest",
    "ResolvedSafety",
    "ResolvedStep",
    "ResolvedTermination",
    "RestStep",
    "SAFETY_KEYS",
    "STEP_TYPES",
    "Safety",
    "Sampling",
    "Step",
    "TERMINATION_KEYS",
    "Tag",
    "Termination",
    "Until",
    "VAR_PATTERN",
    "VarRef",
    "Variable",
    "check_points",
    "check_size",
    "finite",
    "is_var",
    "parse_json",
    "procedure_json_schema",
    "resolved_json_schema",
    "schema_problems",
    "var_name",
]

# --------------------------------------------------------------------------- procedure (as written)


class Termination(FrozenModel):
    """One way a step ends (exactly one key). A step ends at the first of its terminations met.

    ``current_below_*`` is a magnitude (a CV taper); ``charge_Ah`` the magnitude of the charge
    passed in this step; voltages and temperatures are absolute.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"minProperties": 1, "maxProperties": 1})

    time_s: PosNum | None = None
    voltage_above_V: Num | None = None
    voltage_below_V: Num | None = None
    current_below_A: PosNum | None = None
    current_below_c_rate: PosNum | None = None
    charge_Ah: PosNum | None = None
    temperature_above_C: Num | None = None
    temperature_below_C: Num | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Termination:
        given = [key for key in TERMINATION_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a termination has exactly one of {', '.join(TERMINATION_KEYS)}"
                + (f"; got {', '.join(given)}" if given else "")
            )
        return self

    @property
    def key(self) -> str:
        """The termination's kind (its one key)."""
        return next(key for key in TERMINATION_KEYS if getattr(self, key) is not None)

    @property
    def value(self) -> float | str:
        """The number (or variable reference) of the one key."""
        value: float | str = getattr(self, self.key)
        return value


Until = Annotated[list[Termination], Field(max_length=MAX_TERMINATIONS)]


class _Step(FrozenModel):
    label: Label | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = Field(default_factory=list)


def _one_current(step: CcStep | PulseStep) -> None:
    if (step.current_A is None) == (step.c_rate is None):
        raise ValueError(f"a {step.type} step gives exactly one of current_A or c_rate")


class RestStep(_Step):
    """Open circuit (zero current) until a termination."""

    type: Literal["rest"]
    until: Until = Field(default_factory=list)


class CcStep(_Step):
    """Constant current: ``current_A`` or ``c_rate`` (a magnitude, x NominalCapacityAh)."""

    type: Literal["cc"]
    direction: Direction
    current_A: PosNum | None = None
    c_rate: PosNum | None = None
    until: Until = Field(default_factory=list)

    @model_validator(mode="after")
    def _current(self) -> CcStep:
        _one_current(self)
        return self


class CvStep(_Step):
    """Constant voltage hold: the current is regulated to keep ``voltage_V``; optional current limit."""

    type: Literal["cv"]
    voltage_V: Num
    current_limit_A: PosNum | None = None
    current_limit_c_rate: PosNum | None = None
    until: Until = Field(default_factory=list)

    @model_validator(mode="after")
    def _limit(self) -> CvStep:
        if self.current_limit_A is not None and self.current_limit_c_rate is not None:
            raise ValueError("a cv step gives at most one of current_limit_A or current_limit_c_rate")
        return self


class CpStep(_Step):
    """Constant power (a magnitude, W) in the given direction."""

    type: Literal["cp"]
    direction: Direction
    power_W: PosNum
    until: Until = Field(default_factory=list)


class PulseStep(_Step):
    """A fixed-length constant-current pulse (rated by MaxPulseCurrentA; DCIR comes from pulses)."""

    type: Literal["pulse"]
    direction: Direction
    current_A: PosNum | None = None
    c_rate: PosNum | None = None
    duration_s: PosNum

    @model_validator(mode="after")
    def _current(self) -> PulseStep:
        _one_current(self)
        return self


class ProfileStep(_Step):
    """A table of ``[t_s, value]`` (values BDF-signed) or the request's ``custom_profile``.

    Ends at the table's last time unless a termination ends it first; ``previous`` holds each
    value until the next point, ``linear`` interpolates.
    """

    type: Literal["profile"]
    quantity: Quantity
    points: list[tuple[Finite, Finite]] | None = None
    source: Literal["custom_profile"] | None = None
    interpolation: Interpolation = "previous"
    until: Until = Field(default_factory=list)

    @model_validator(mode="after")
    def _table(self) -> ProfileStep:
        if (self.points is None) == (self.source is None):
            raise ValueError("a profile step gives exactly one of points or source")
        if self.points is not None:
            check_points(self.points)
        return self


def check_points(points: Sequence[tuple[float, float]]) -> None:
    """A profile table: at least one point, times from 0 up, strictly increasing."""
    if not points:
        raise ValueError("a profile needs at least one point")
    if points[0][0] < 0:
        raise ValueError(f"profile times start at 0 or later, got {points[0][0]}")
    for index in range(1, len(points)):
        if not points[index][0] > points[index - 1][0]:
            raise ValueError(
                f"profile times must increase: point {index} at {points[index][0]} s follows {points[index - 1][0]} s"
            )


class AmbientStep(_Step):
    """Sets the ambient (chamber) set-point, which holds for the later steps. Zero current while
    it runs; without ``until`` it takes no time."""

    type: Literal["ambient"]
    temperature_C: Num
    until: Until = Field(default_factory=list)


class ExternalStep(_Step):
    """An operator/fixture action at open circuit (vibration, crush, fire, ...): only a physical
    bench with that capability can run it."""

    type: Literal["external"]
    action: Action
    description: Annotated[str, StringConstraints(max_length=MAX_TEXT)] = ""
    duration_s: PosNum


class RepeatStep(_Step):
    """Runs ``steps`` ``count`` times. ``cycle`` (default: true for an outermost repeat, false
    inside another) makes each iteration increment ``Cycle Count / 1``."""

    type: Literal["repeat"]
    count: Union[Annotated[int, Strict(), Field(ge=1, le=MAX_REPEAT_COUNT)], VarRef]  # noqa: UP007
    cycle: bool | None = None
    steps: Annotated[list[Step], Field(min_length=1)]


Step = Annotated[
    RestStep | CcStep | CvStep | CpStep | PulseStep | ProfileStep | AmbientStep | ExternalStep | RepeatStep,
    Field(discriminator="type"),
]
RepeatStep.model_rebuild()


class Variable(FrozenModel):
    """A named number the DoE may vary; ``value`` is used when a run gives none."""

    value: Finite
    min: Finite | None = None
    max: Finite | None = None
    unit: Annotated[str, StringConstraints(max_length=32, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""
    description: OneLine = ""

    @model_validator(mode="after")
    def _within(self) -> Variable:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.min is not None and self.value < self.min:
            raise ValueError(f"value {self.value} is below min {self.min}")
        if self.max is not None and self.value > self.max:
            raise ValueError(f"value {self.value} is above max {self.max}")
        return self


class Safety(FrozenModel):
    """Run-wide limits; a limit exceeded for ``delay_s`` (0: at once) ends the run as failed.
    Fields left out come from the UUT ratings; a procedure may only tighten them (unless it is an
    ``abuse`` procedure)."""

    max_voltage_V: Finite | None = None
    min_voltage_V: Finite | None = None
    max_charge_current_A: Positive | None = None
    max_discharge_current_A: Positive | None = None
    max_temperature_C: Finite | None = None
    min_temperature_C: Finite | None = None
    delay_s: NonNegative | None = None


class Procedure(FrozenModel):
    """A test procedure as written (JSON ``format: fastlims-procedure/1`` or the text form).

    ``abuse: true`` declares a test that drives the UUT beyond its ratings on purpose (overcharge,
    forced discharge, short circuit, thermal abuse): steps tagged ``abuse`` are exempt from the
    rating checks, and ``safety`` may then be looser than the ratings (the test's own abort
    limits). Every other step is still checked against the ratings.
    """

    format: Literal["fastlims-procedure/1"] = FORMAT
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "procedure"
    description: Annotated[str, StringConstraints(max_length=MAX_TEXT)] = ""
    standard: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    abuse: bool = False
    variables: dict[Annotated[str, StringConstraints(pattern=NAME_PATTERN)], Variable] = Field(
        default_factory=dict, max_length=MAX_VARIABLES
    )
    steps: Annotated[list[Step], Field(min_length=1)]
    safety: Safety = Safety()
    sampling: Sampling = Sampling()

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        # Walk the raw input without recursion before pydantic builds anything from it.
        if isinstance(data, Mapping):
            check_size(data.get("steps"))
        return data

    def walk(self) -> Iterator[tuple[str, AnyStep]]:
        """Every step with its path (``steps[3].steps[1]``), depth first in document order."""
        yield from _walk(self.steps, "steps")

    def to_json(self) -> dict[str, Any]:
        """The JSON form (defaults and empty optional fields left out, ``format`` always kept)."""
        data = self.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
        data["format"] = self.format
        return data


AnyStep = RestStep | CcStep | CvStep | CpStep | PulseStep | ProfileStep | AmbientStep | ExternalStep | RepeatStep


def _walk(steps: Sequence[AnyStep], prefix: str) -> Iterator[tuple[str, AnyStep]]:
    for index, step in enumerate(steps):
        path = f"{prefix}[{index}]"
        yield path, step
        if isinstance(step, RepeatStep):
            yield from _walk(step.steps, f"{path}.steps")


def check_size(steps: object) -> None:
    """Raise ValueError when raw ``steps`` exceed the bounds (steps, depth, points, terminations).

    Iterative, so a hostile document nested a million levels deep costs no recursion.
    """
    if not isinstance(steps, list):
        return
    stack: list[tuple[list[Any], int]] = [(steps, 1)]
    total = 0
    points = 0
    while stack:
        items, depth = stack.pop()
        total += len(items)
        if total > MAX_STEPS:
            raise ValueError(f"too many steps: at most {MAX_STEPS} (repeats and nested steps included)")
        for item in items:
            if not isinstance(item, Mapping):
                continue
            table = item.get("points")
            if isinstance(table, list):
                points += len(table)
                if points > MAX_POINTS:
                    raise ValueError(f"too many profile points: at most {MAX_POINTS} in one procedure")
            inner = item.get("steps")
            if isinstance(inner, list):
                if depth >= MAX_DEPTH:
                    raise ValueError(f"repeats nested too deep: at most {MAX_DEPTH} levels")
                stack.append((inner, depth + 1))


# --------------------------------------------------------------------------- helpers


def parse_json(data: object, lines: Mapping[str, int] | None = None) -> Procedure:
    """Validate a JSON-shaped object as a :class:`Procedure`; raise :class:`ProcedureError` with
    every problem (step paths, and text lines when ``lines`` maps paths to them)."""
    if not isinstance(data, Mapping):
        raise ProcedureError([Problem(message=f"a procedure is a JSON object, got {type(data).__name__}")])
    try:
        return Procedure.model_validate(data)
    except ValidationError as exc:
        raise ProcedureError(schema_problems(exc, lines)) from None
    except ValueError as exc:  # check_size raises before pydantic wraps anything
        raise ProcedureError([Problem(message=str(exc))]) from None


def procedure_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Procedure` (served at ``GET /api/schemas/procedure.json``)."""
    schema = Procedure.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "/api/schemas/procedure.json"
    schema["title"] = "FastLIMS test procedure (fastlims-procedure/1)"
    return schema


def is_var(value: object) -> bool:
    """Whether ``value`` is a ``"{name}"`` variable reference."""
    return isinstance(value, str) and value.startswith("{") and value.endswith("}")


def var_name(value: str) -> str:
    """``"{ambient_C}"`` -> ``"ambient_C"``."""
    return value[1:-1]


def finite(value: float) -> bool:
    return math.isfinite(value)

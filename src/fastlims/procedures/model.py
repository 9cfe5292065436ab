"""What a test *does*, as data: the procedure models (``format: fastlims-procedure/1``).

Two layers. :class:`Procedure` is what people write (JSON, or the text form in :mod:`.text`):
C-rates, unsigned magnitudes with a ``direction``, ``"{name}"`` references to variables, safety
limits that may be left out. :class:`ResolvedProcedure` is what benches execute (made by
:func:`fastlims.procedures.resolve.resolve`): every number a float in SI units, currents and
powers signed by the Battery Data Format convention (positive = charge), C-rates turned into
amperes, every safety limit filled, and each step keeping its path (``steps[3].steps[1]``),
label, tags, source line and text so every report can name it.

Pydantic v2 models, frozen, unknown fields refused. The input is hostile (request payloads,
partner files), so sizes are bounded *before* the models are built: total steps, nesting depth
of repeats, terminations per step, profile points, variables. The JSON Schema served at
``GET /api/schemas/procedure.json`` is generated from these models (:func:`procedure_json_schema`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

FORMAT: Literal["fastlims-procedure/1"] = "fastlims-procedure/1"

# Bounds against hostile input (checked on the raw data, before any model is built).
MAX_STEPS = 5_000  # every step, repeats and nested ones included
MAX_DEPTH = 8  # nesting of repeats
MAX_TERMINATIONS = 8  # per step (the executors' table width)
MAX_POINTS = 200_000  # profile points in one procedure
MAX_VARIABLES = 64
MAX_REPEAT_COUNT = 100_000
MAX_TAGS = 16
MAX_TEXT = 2_000  # characters of a description

#: ``"{name}"``: a number taken from the procedure's variables (or a DoE run's value).
VAR_PATTERN = r"^\{[A-Za-z_][A-Za-z0-9_]{0,63}\}$"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

VarRef = Annotated[str, StringConstraints(pattern=VAR_PATTERN)]
Finite = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Positive = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
#: A number, or a variable reference resolved later.
Num = Union[Finite, VarRef]  # noqa: UP007  (pydantic keeps the member order for error messages)
PosNum = Union[Positive, VarRef]  # noqa: UP007
#: One line of text (labels, units, variable descriptions: the text form keeps them on one line).
OneLine = Annotated[str, StringConstraints(max_length=MAX_TEXT, pattern=r"^[^\x00-\x1f\x7f]*$")]
Label = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s,#\"]+$")]

Direction = Literal["charge", "discharge"]
Quantity = Literal["current", "power", "voltage"]
Interpolation = Literal["previous", "linear"]
Action = Literal[
    "vibration",
    "shock",
    "crush",
    "impact",
    "nail",
    "drop",
    "fire",
    "altitude",
    "immersion",
    "salt_fog",
    "water_spray",
    "other",
]
ACTIONS: tuple[str, ...] = Action.__args__  # type: ignore[attr-defined]

#: Termination keys, in the order the text form writes them.
TERMINATION_KEYS: tuple[str, ...] = (
    "time_s",
    "voltage_above_V",
    "voltage_below_V",
    "current_below_A",
    "current_below_c_rate",
    "charge_Ah",
    "temperature_above_C",
    "temperature_below_C",
)
#: Termination keys after resolution (C-rates turned into amperes).
ResolvedKind = Literal[
    "time_s",
    "voltage_above_V",
    "voltage_below_V",
    "current_below_A",
    "charge_Ah",
    "temperature_above_C",
    "temperature_below_C",
]
SAFETY_KEYS: tuple[str, ...] = (
    "max_voltage_V",
    "min_voltage_V",
    "max_charge_current_A",
    "max_discharge_current_A",
    "max_temperature_C",
    "min_temperature_C",
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- procedure (as written)


class Termination(_Model):
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


class _Step(_Model):
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
STEP_TYPES: tuple[str, ...] = ("rest", "cc", "cv", "cp", "pulse", "profile", "ambient", "external", "repeat")
RepeatStep.model_rebuild()


class Variable(_Model):
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


class Safety(_Model):
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


class Sampling(_Model):
    """A sample every ``period_s``, and whenever voltage or current moved by the delta."""

    period_s: Annotated[float, Strict(), Field(ge=1e-3, le=3600.0, allow_inf_nan=False)] = 1.0
    voltage_delta_V: Positive | None = None
    current_delta_A: Positive | None = None


class Procedure(_Model):
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


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a procedure: where (step path and/or text line) and what."""

    message: str
    path: str | None = None  # e.g. "steps[3].steps[1]"
    line: int | None = None  # 1-based line of the text form
    step: str | None = None  # the step's text, e.g. "Discharge at 3C until 2.5 V"

    @property
    def where(self) -> str:
        """``steps[3].steps[1] (Discharge at 3C until 2.5 V), line 7`` or the parts that are known."""
        parts: list[str] = []
        if self.path:
            parts.append(f"{self.path} ({self.step})" if self.step else self.path)
        if self.line is not None:
            parts.append(f"line {self.line}")
        return ", ".join(parts) or "procedure"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"where": self.where, "path": self.path, "line": self.line, "step": self.step, "message": self.message}


class ProcedureError(ValueError):
    """A procedure that cannot run; ``problems`` lists every problem found, not only the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the procedure"
        super().__init__(head + ":\n" + "\n".join(f"- {p}" for p in self.problems))


def schema_problems(exc: ValidationError, lines: Mapping[str, int] | None = None) -> list[Problem]:
    """Pydantic's errors as :class:`Problem` s naming the step path (and line, when known).

    A number-or-variable field reports one message, not one per union member.
    """
    problems: list[Problem] = []
    seen: set[tuple[str | None, str]] = set()
    for error in exc.errors(include_url=False):
        path, field = _split_loc(error["loc"])
        if (path, field) in seen and _union_member(error["loc"]):
            continue  # the other member of a number-or-variable union: one message is enough
        seen.add((path, field))
        line = lines.get(path) if lines and path else None
        problems.append(Problem(message=_message(error, field), path=path, line=line))
    return problems


_UNION_MEMBERS = {"float", "constrained-str", "str", "int", "none", "tuple[float, float]", "list[...]"}


def _union_member(loc: tuple[int | str, ...]) -> bool:
    return bool(loc) and isinstance(loc[-1], str) and _is_member(loc[-1])


def _is_member(item: int | str) -> bool:
    """Whether a loc item names a union member (pydantic's ``float``, ``constrained-str``, ...)."""
    return isinstance(item, str) and (
        item in _UNION_MEMBERS or "[" in item or item.startswith(("constrained-", "function-"))
    )


def _split_loc(loc: tuple[int | str, ...]) -> tuple[str | None, str]:
    """``('steps', 3, 'repeat', 'steps', 1, 'cc', 'current_A', 'float')`` ->
    ``('steps[3].steps[1]', 'current_A')``."""
    path = ""
    rest: list[str] = []
    index = 0
    items = list(loc)
    while index < len(items):
        item = items[index]
        if item == "steps" and index + 1 < len(items) and isinstance(items[index + 1], int) and not rest:
            path += (".steps" if path else "steps") + f"[{items[index + 1]}]"
            index += 2
            if index < len(items) and items[index] in STEP_TYPES:
                index += 1  # the discriminator's tag
            continue
        if _is_member(item):
            index += 1
            continue
        rest.append(f"[{item}]" if isinstance(item, int) else str(item))
        index += 1
    field = ".".join(rest).replace(".[", "[")
    return (path or None), field


def _message(error: Any, field: str) -> str:
    kind = error["type"]
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", "?")
        return f"unknown step type {tag!r}; expected one of {', '.join(STEP_TYPES)}"
    if kind == "union_tag_not_found":
        return f"a step needs a 'type', one of {', '.join(STEP_TYPES)}"
    if kind == "extra_forbidden":
        return f"unknown field {field!r}"
    if kind == "missing":
        return f"{field} is required"
    if kind in ("string_pattern_mismatch", "float_type", "float_parsing", "int_type", "int_parsing") and isinstance(
        error.get("input"), str
    ):
        return f'{field}: expected a number or a variable reference like "{{name}}", got {error.get("input")!r}'
    return f"{field}: {msg}" if field else msg


# --------------------------------------------------------------------------- resolved procedure


class ResolvedTermination(_Model):
    """A termination after resolution: ``kind`` is a termination key (C-rates gone), SI value."""

    kind: ResolvedKind
    value: Finite


class _Resolved(_Model):
    """What every resolved step keeps for reports: where it came from and how it reads."""

    path: str
    line: int | None = None
    label: str | None = None
    tags: tuple[str, ...] = ()
    text: str = ""


class _ResolvedLeaf(_Resolved):
    id: int  # the leaf's index in document order: the ``Step ID`` column


class ResolvedRest(_ResolvedLeaf):
    type: Literal["rest"] = "rest"
    until: tuple[ResolvedTermination, ...]


class ResolvedCc(_ResolvedLeaf):
    type: Literal["cc"] = "cc"
    current_A: Finite  # BDF-signed: positive = charge
    until: tuple[ResolvedTermination, ...]


class _Regulated(_ResolvedLeaf):
    """A step whose current the executor regulates (CV, CP, profiles): it may command at most
    ``charge_limit_A`` / ``discharge_limit_A`` (magnitudes): the step's own limit, else the
    UUT's continuous ratings (the safety limits for an ``abuse`` step)."""

    charge_limit_A: Positive
    discharge_limit_A: Positive


class ResolvedCv(_Regulated):
    type: Literal["cv"] = "cv"
    voltage_V: Finite
    until: tuple[ResolvedTermination, ...]


class ResolvedCp(_Regulated):
    type: Literal["cp"] = "cp"
    power_W: Finite  # BDF-signed: positive = charge
    until: tuple[ResolvedTermination, ...]


class ResolvedPulse(_ResolvedLeaf):
    type: Literal["pulse"] = "pulse"
    current_A: Finite  # BDF-signed
    duration_s: Positive


class ResolvedProfile(_Regulated):
    type: Literal["profile"] = "profile"
    quantity: Quantity
    points: tuple[tuple[Finite, Finite], ...]  # BDF-signed values, SI units
    interpolation: Interpolation
    until: tuple[ResolvedTermination, ...]


class ResolvedAmbient(_ResolvedLeaf):
    type: Literal["ambient"] = "ambient"
    temperature_C: Finite
    until: tuple[ResolvedTermination, ...]


class ResolvedExternal(_ResolvedLeaf):
    type: Literal["external"] = "external"
    action: Action
    description: str
    duration_s: Positive


class ResolvedRepeat(_Resolved):
    type: Literal["repeat"] = "repeat"
    count: Annotated[int, Field(ge=1)]
    cycle: bool
    steps: tuple[ResolvedStep, ...]


ResolvedStep = Annotated[
    ResolvedRest
    | ResolvedCc
    | ResolvedCv
    | ResolvedCp
    | ResolvedPulse
    | ResolvedProfile
    | ResolvedAmbient
    | ResolvedExternal
    | ResolvedRepeat,
    Field(discriminator="type"),
]
ResolvedLeaf = (
    ResolvedRest
    | ResolvedCc
    | ResolvedCv
    | ResolvedCp
    | ResolvedPulse
    | ResolvedProfile
    | ResolvedAmbient
    | ResolvedExternal
)
AnyResolved = ResolvedLeaf | ResolvedRepeat
ResolvedRepeat.model_rebuild()


class ResolvedSafety(_Model):
    """Every run-wide limit, filled (currents are magnitudes)."""

    max_voltage_V: Finite
    min_voltage_V: Finite
    max_charge_current_A: Positive
    max_discharge_current_A: Positive
    max_temperature_C: Finite
    min_temperature_C: Finite
    delay_s: NonNegative


class ResolvedProcedure(_Model):
    """A procedure ready to run on one UUT: SI floats, BDF signs, safety filled, C-rates gone.

    ``values`` are the variable values used (a DoE run's, else each variable's ``value``).
    Leaves carry ``id``, their index in document order: the ``Step ID`` column of the results.
    """

    format: Literal["fastlims-procedure/1"] = FORMAT
    name: str
    description: str = ""
    standard: str | None = None
    abuse: bool = False
    uut: str
    values: dict[str, float] = Field(default_factory=dict)
    steps: tuple[ResolvedStep, ...]
    safety: ResolvedSafety
    sampling: Sampling

    @field_validator("steps")
    @classmethod
    def _not_empty(cls, steps: tuple[AnyResolved, ...]) -> tuple[AnyResolved, ...]:
        if not steps:
            raise ValueError("a procedure has at least one step")
        return steps

    def walk(self) -> Iterator[AnyResolved]:
        """Every step, depth first in document order (repeats before their children)."""
        stack: list[AnyResolved] = list(reversed(self.steps))
        while stack:
            step = stack.pop()
            yield step
            if isinstance(step, ResolvedRepeat):
                stack.extend(reversed(step.steps))

    def leaves(self) -> list[ResolvedLeaf]:
        """The leaf steps in document order; ``leaves()[i].id == i`` (the ``Step ID`` column)."""
        return [step for step in self.walk() if not isinstance(step, ResolvedRepeat)]


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


def resolved_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`ResolvedProcedure` (the form sent to benches and the DT)."""
    schema = ResolvedProcedure.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "FastLIMS resolved test procedure"
    return schema


def is_var(value: object) -> bool:
    """Whether ``value`` is a ``"{name}"`` variable reference."""
    return isinstance(value, str) and value.startswith("{") and value.endswith("}")


def var_name(value: str) -> str:
    """``"{ambient_C}"`` -> ``"ambient_C"``."""
    return value[1:-1]


def finite(value: float) -> bool:
    return math.isfinite(value)

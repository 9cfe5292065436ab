"""What benches execute: the resolved procedure (made by :func:`fastlims.procedures.resolve.resolve`
from a :class:`~fastlims.procedures.model.Procedure` and one UUT's ratings).

Every number a float in SI units, currents and powers signed by the Battery Data Format convention
(positive = charge), C-rates turned into amperes, every safety limit filled, and each step keeping
its path (``steps[3].steps[1]``), label, tags, source line and text so every report can name it.
Leaves carry ``id``, their index in document order: the ``Step ID`` column of the results.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from fastlims.procedures.vocabulary import (
    FORMAT,
    Action,
    Finite,
    FrozenModel,
    Interpolation,
    NonNegative,
    Positive,
    Quantity,
    Sampling,
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


class ResolvedTermination(FrozenModel):
    """A termination after resolution: ``kind`` is a termination key (C-rates gone), SI value."""

    kind: ResolvedKind
    value: Finite


class _Resolved(FrozenModel):
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


class ResolvedSafety(FrozenModel):
    """Every run-wide limit, filled (currents are magnitudes)."""

    max_voltage_V: Finite
    min_voltage_V: Finite
    max_charge_current_A: Positive
    max_discharge_current_A: Positive
    max_temperature_C: Finite
    min_temperature_C: Finite
    delay_s: NonNegative


class ResolvedProcedure(FrozenModel):
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


def resolved_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`ResolvedProcedure` (the form sent to benches and the DT)."""
    schema = ResolvedProcedure.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "FastLIMS resolved test procedure"
    return schema

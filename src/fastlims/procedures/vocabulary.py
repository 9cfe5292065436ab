"""The words both procedure layers share (:mod:`.model`, what people write; :mod:`.resolved`,
what benches execute): the format tag, the bounds against hostile input, the number, text and
step-kind types, the frozen base model and the sampling settings (carried unchanged from the
written procedure to the resolved one).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

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
SAFETY_KEYS: tuple[str, ...] = (
    "max_voltage_V",
    "min_voltage_V",
    "max_charge_current_A",
    "max_discharge_current_A",
    "max_temperature_C",
    "min_temperature_C",
)
#: The ``type`` of each step, as written.
STEP_TYPES: tuple[str, ...] = ("rest", "cc", "cv", "cp", "pulse", "profile", "ambient", "external", "repeat")


class FrozenModel(BaseModel):
    """The base of every procedure model: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Sampling(FrozenModel):
    """A sample every ``period_s``, and whenever voltage or current moved by the delta."""

    period_s: Annotated[float, Strict(), Field(ge=1e-3, le=3600.0, allow_inf_nan=False)] = 1.0
    voltage_delta_V: Positive | None = None
    current_delta_A: Positive | None = None

"""The seed's Figure 2 ``variables`` object: part of the MQTT request message (so it lives with the
message schemas, which partners' code may import alone), and what the REST API accepts.

Field names and shapes are the seed's, byte for byte (``test_procedures``, ``custom_profile``
with ``Name``/``type``/``unit``/``values[{timestamp, value}]``, ``FMU_signal_connections`` with
``InSignalReference``/``OutSignalReference``). Numbers may arrive as strings, as in the seed's
sample (``"value": "1.0"``).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

SIGNAL_REFERENCE = re.compile(r"^[^/\s][^/]*/[^/]+$")
MAX_PROFILE_POINTS = 1_000_000


class ProfilePoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: float = Field(ge=0, description="Seconds from the start of the test")
    value: float

    @field_validator("timestamp", "value")
    @classmethod
    def _finite(cls, number: float) -> float:
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number


class CustomProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    Name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    type: Literal["input", "output"] = "input"
    unit: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] = ""
    values: list[ProfilePoint] = Field(min_length=1, max_length=MAX_PROFILE_POINTS)

    @model_validator(mode="after")
    def _increasing(self) -> CustomProfile:
        stamps = [p.timestamp for p in self.values]
        for index in range(1, len(stamps)):
            if stamps[index] <= stamps[index - 1]:
                raise ValueError(
                    f"values[{index}].timestamp {stamps[index]} must be greater than the one before"
                    f" ({stamps[index - 1]}): timestamps must strictly increase"
                )
        return self


class SignalConnection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    InSignalReference: str
    OutSignalReference: str

    @field_validator("InSignalReference", "OutSignalReference")
    @classmethod
    def _fmu_slash_port(cls, reference: str) -> str:
        if not SIGNAL_REFERENCE.match(reference):
            raise ValueError(f"{reference!r} must look like 'FMU_name/Port'")
        return reference


class Variables(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test_procedures: list[str | dict[str, Any]] = Field(default_factory=list, max_length=1000)
    custom_profile: CustomProfile | None = None
    FMU_signal_connections: list[SignalConnection] = Field(default_factory=list, max_length=10_000)

"""Row schemas for catalog files and API answers: one definition validates YAML, CSV and JSON."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from fastlims.catalog.models import BenchKind

Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
TEST_CODE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,63}$")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UUTRow(_Row):
    code: Code
    description: Text = ""
    is_active: bool = True


class UseCaseRow(_Row):
    name: Code
    description: Text = ""
    is_active: bool = True


class StandardRow(_Row):
    code: Code
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=400)]
    description: Text = ""
    is_active: bool = True


class TestNameRow(_Row):
    __test__ = False

    code: Code
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    description: Text = ""
    category: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    bench_kind: BenchKind = BenchKind.both
    nominal_duration_minutes: int = Field(gt=0, le=60 * 24 * 366)
    setup_minutes: int = Field(default=0, ge=0, le=60 * 24 * 7)
    teardown_minutes: int = Field(default=0, ge=0, le=60 * 24 * 7)
    pausable: bool = False
    is_active: bool = True
    doe: dict[str, Any] | None = None

    @field_validator("code")
    @classmethod
    def _code_shape(cls, value: str) -> str:
        if not TEST_CODE.match(value):
            raise ValueError("must be upper-case letters, digits, '.', '_' or '-' (e.g. UN383-T1)")
        return value


class ApplicabilityRow(_Row):
    """One expanded row of the matrix: a test under a standard for one UUT and one use case."""

    test: Code
    standard: Code
    uut: Code
    use_case: Code
    applicable: bool = True


class ApplicabilityGroup(_Row):
    """The YAML shorthand: a test under a standard for every listed UUT × use case."""

    test: Code
    standard: Code
    uuts: list[Code] = Field(min_length=1)
    use_cases: list[Code] = Field(min_length=1)
    applicable: bool = True

    def expand(self) -> list[ApplicabilityRow]:
        return [
            ApplicabilityRow(
                test=self.test, standard=self.standard, uut=uut, use_case=use_case, applicable=self.applicable
            )
            for uut in self.uuts
            for use_case in self.use_cases
        ]


# --- API answers -------------------------------------------------------------------------


class UUTOut(BaseModel):
    code: str
    description: str


class UseCaseOut(BaseModel):
    name: str
    description: str


class StandardOut(BaseModel):
    code: str
    name: str
    description: str


class TestNameOut(BaseModel):
    __test__ = False

    code: str
    name: str
    description: str
    category: str
    bench_kind: BenchKind
    nominal_duration_minutes: int
    setup_minutes: int
    teardown_minutes: int
    pausable: bool

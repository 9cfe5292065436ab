"""Row schemas for catalog files and API answers: one definition validates YAML, CSV and JSON."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from fastlims.catalog.models import BenchKind, UutFormat

Text = Annotated[str, StringConstraints(strip_whitespace=True)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
TEST_CODE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,63}$")


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    def cross_field_problems(self) -> list[tuple[str, str]]:
        """(field, message) for rules that tie fields together; each field alone is already valid."""
        return []


# Bounds keep hostile or mistyped files out (a 1e308 V limit is a typo, not a battery).
Volts = Annotated[float, Field(ge=0, le=2000, allow_inf_nan=False)]
Amperes = Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)]
Celsius = Annotated[float, Field(ge=-100, le=200, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1, le=100_000)]

# The ratings of a UUT, in the order of the catalog columns (Chemistry ... MaxTemperatureC); the
# names are those of ``fastlims.procedures.ratings.UutRatings`` and of the API.
RATING_FIELDS = (
    "chemistry",
    "format",
    "series_count",
    "parallel_count",
    "nominal_capacity_Ah",
    "nominal_voltage_V",
    "min_voltage_V",
    "max_voltage_V",
    "max_charge_current_A",
    "max_discharge_current_A",
    "max_pulse_current_A",
    "min_temperature_C",
    "max_temperature_C",
)


class UutRatingsFields(BaseModel):
    """The ratings as optional fields (a UUT may not have them yet); shared by the file row and the API."""

    chemistry: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    format: UutFormat | None = Field(default=None, description="cell, module or pack")
    series_count: Count | None = Field(default=None, description="cells in series")
    parallel_count: Count | None = Field(default=None, description="cells in parallel")
    nominal_capacity_Ah: Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)] | None = None
    nominal_voltage_V: Volts | None = None
    min_voltage_V: Volts | None = None
    max_voltage_V: Volts | None = None
    max_charge_current_A: Amperes | None = Field(default=None, description="magnitude, A")
    max_discharge_current_A: Amperes | None = Field(default=None, description="magnitude, A")
    max_pulse_current_A: Amperes | None = Field(default=None, description="magnitude, A (short pulses, e.g. 10 s)")
    min_temperature_C: Celsius | None = None
    max_temperature_C: Celsius | None = None

    def has_ratings(self) -> bool:
        return any(getattr(self, name) is not None for name in RATING_FIELDS)


def rating_problems(values: UutRatingsFields) -> list[tuple[str, str]]:
    """(field, message) for every broken rule between ratings: all or none given, min < max voltage
    with the nominal voltage strictly inside, pulse current >= discharge current, min < max
    temperature."""
    if not values.has_ratings():
        return []
    problems = [
        (name, f"missing: a UUT with ratings needs all {len(RATING_FIELDS)} of them, or none")
        for name in RATING_FIELDS
        if getattr(values, name) is None
    ]
    low, high, nominal = values.min_voltage_V, values.max_voltage_V, values.nominal_voltage_V
    if low is not None and high is not None and low >= high:
        problems.append(("min_voltage_V", f"{low} V must be below max_voltage_V ({high} V)"))
    elif nominal is not None and low is not None and high is not None and not low < nominal < high:
        problems.append(
            ("nominal_voltage_V", f"{nominal} V must lie between min_voltage_V ({low} V) and max_voltage_V ({high} V)")
        )
    pulse, discharge = values.max_pulse_current_A, values.max_discharge_current_A
    if pulse is not None and discharge is not None and pulse < discharge:
        problems.append(("max_pulse_current_A", f"{pulse} A must be at least max_discharge_current_A ({discharge} A)"))
    cold, hot = values.min_temperature_C, values.max_temperature_C
    if cold is not None and hot is not None and cold >= hot:
        problems.append(("min_temperature_C", f"{cold} degC must be below max_temperature_C ({hot} degC)"))
    return problems


class _UutIdentity(_Row):
    code: Code
    description: Text = ""
    is_active: bool = True


class UUTRow(UutRatingsFields, _UutIdentity):
    """A UUT in a catalog file (identity first, then ratings). Without any rating field, an import
    leaves the stored ratings as they are (older files keep working); with one, all are required."""

    def cross_field_problems(self) -> list[tuple[str, str]]:
        return rating_problems(self)


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


class _UutKey(BaseModel):
    code: str
    description: str


class UUTOut(UutRatingsFields, _UutKey):
    """A UUT and its ratings (null until the lab manager imports them)."""


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


class CriterionOut(BaseModel):
    """The standard's pass/fail criterion (quoted) and what the recorded data can decide of it."""

    text: str = Field(description="The criterion as summarised from the standard (its text governs)")
    check: str = Field(description="What the outcomes compare: ocv_retention, max_temperature, ..., observation")
    threshold: float | None = None
    observed: str = Field(default="", description="What only an operator can judge (fire, venting, ...)")
    source: str = Field(default="", description="The standard (catalog code) it comes from")


class TestNameProcedureOut(BaseModel):
    """A test name's default procedure for one UUT (``GET /api/v1/test-names/{code}/procedure``)."""

    __test__ = False

    test_name: str
    uut: str
    standard: str | None = Field(description="The standard the default follows")
    procedure: dict[str, Any] = Field(
        description="The procedure as written (fastlims-procedure/1, unresolved: variables and C-rates kept);"
        " schema at GET /api/schemas/procedure.json"
    )
    resolved: dict[str, Any] = Field(
        description="Resolved for the UUT with the variables' default values: SI units, currents signed"
        " positive = charge, safety limits filled; what a bench and the Digital Twin receive"
    )
    text: str = Field(description="The procedure in the text form (one step per line)")
    bench_kinds: list[str] = Field(description="The bench kinds that can perform it: physical, virtual")
    expected_duration_s: float = Field(description="Expected test time in seconds (for booking benches)")
    criterion: CriterionOut | None = Field(description="The standard's pass/fail criterion, when it states one")

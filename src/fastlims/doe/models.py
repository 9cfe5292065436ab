"""Data of the DoE package: what goes in (parameters, a spec) and what comes out (a design).

Pydantic models, frozen, unknown fields refused: they are read from catalog entries, requests
and ``doe-output/`` files written by other versions, so a typo must fail loudly rather than be
dropped. Numbers must be finite (NaN/inf never make a valid factor level).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Method = Literal[
    "full_factorial",
    "fractional_factorial",
    "plackett_burman",
    "box_behnken",
    "central_composite",
    "latin_hypercube",
    "sobol",
    "d_optimal",
]
METHODS: tuple[Method, ...] = (
    "full_factorial",
    "fractional_factorial",
    "plackett_burman",
    "box_behnken",
    "central_composite",
    "latin_hypercube",
    "sobol",
    "d_optimal",
)

#: Polynomial models a D-optimal design can be built for (and D-efficiency reported against).
Model = Literal["linear", "interactions", "quadratic"]

#: FMI variable types whose values are real numbers (FMI 2 and FMI 3 names).
REAL_TYPES = frozenset({"Real", "Float64", "Float32"})
#: FMI variable types whose values are integers; an Enumeration is an integer index in FMI.
INTEGER_TYPES = frozenset(
    {"Integer", "Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Enumeration"}
)
#: Variabilities an FMU lets an importer set before a run (``constant`` cannot be changed).
SETTABLE_VARIABILITIES = frozenset({"tunable", "fixed"})
#: A declared bound this large is a tool's way of saying "none" (DBL_MAX is ~1.8e308).
_UNBOUNDED = 1e300


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Parameter(_Frozen):
    """One FMU variable as read from ``modelDescription.xml``.

    Only ``causality="parameter"`` with ``variability`` "tunable" or "fixed" and a numeric
    ``type`` can become a factor; everything else is refused by name in `resolve_factors`.
    ``min``/``max`` are the declared bounds (absent when the FMU declares none). An infinite
    bound, or one at the edge of the double range (|x| >= 1e300, as tools write DBL_MAX for
    "unbounded"), counts as no bound: a design scaled to it would be meaningless.
    """

    name: str = Field(min_length=1)
    unit: str = ""
    min: float | None = None
    max: float | None = None
    start: float | None = None
    causality: str = "parameter"
    variability: str = "tunable"
    type: str = "Real"
    fmu: str | None = None
    description: str = ""

    @field_validator("min", "max", mode="before")
    @classmethod
    def _huge_is_unbounded(cls, value: object) -> object:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return value  # pydantic reports it
        return None if math.isinf(number) or abs(number) >= _UNBOUNDED else value

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Parameter:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"parameter {self.name!r}: min {self.min} is greater than max {self.max}")
        return self

    @property
    def settable(self) -> bool:
        """Whether a run may set this parameter (a tunable or fixed parameter)."""
        return self.causality == "parameter" and self.variability in SETTABLE_VARIABILITIES

    @property
    def numeric(self) -> bool:
        """Whether the parameter holds a number a design can choose."""
        return self.type in REAL_TYPES or self.type in INTEGER_TYPES

    @property
    def integer(self) -> bool:
        """Whether only whole numbers are valid values."""
        return self.type in INTEGER_TYPES


class FactorSpec(_Frozen):
    """How the DoE section (or a request) wants one parameter treated.

    Exactly one of: ``levels`` (the discrete values allowed), ``low``+``high`` (a continuous
    range), ``fixed`` (held at one value in every run), or none of them (vary over the
    parameter's declared min/max).
    """

    name: str = Field(min_length=1)
    levels: list[float] | None = None
    low: float | None = None
    high: float | None = None
    fixed: float | None = None

    @model_validator(mode="after")
    def _one_mode(self) -> FactorSpec:
        has_range = self.low is not None or self.high is not None
        modes = [
            m
            for m, on in (
                ("levels", self.levels is not None),
                ("low/high", has_range),
                ("fixed", self.fixed is not None),
            )
            if on
        ]
        if len(modes) > 1:
            raise ValueError(f"factor {self.name!r}: give only one of {' / '.join(modes)}")
        if has_range:
            if self.low is None or self.high is None:
                raise ValueError(f"factor {self.name!r}: give both low and high")
            if not self.low < self.high:
                raise ValueError(f"factor {self.name!r}: low {self.low} must be below high {self.high}")
        if self.levels is not None:
            if len(set(self.levels)) < 2:
                raise ValueError(f"factor {self.name!r}: levels need at least two distinct values (use fixed for one)")
            if len(set(self.levels)) != len(self.levels):
                raise ValueError(f"factor {self.name!r}: levels repeat a value")
        return self


class DoeSpec(_Frozen):
    """What design to build: the DoE section of a test name's catalog entry.

    ``factors`` empty means every settable parameter with declared bounds varies over them.
    ``run_budget`` caps the runs of fixed-size designs (an error when they need more) and sets
    the size of Latin hypercube, Sobol and D-optimal designs. ``resolution``/``generators``
    only apply to ``fractional_factorial``; ``model`` only to ``d_optimal``; ``ccd_face`` only
    to ``central_composite``; ``default_levels`` only to ``full_factorial`` factors without
    explicit levels.
    """

    method: Method
    factors: list[FactorSpec] = Field(default_factory=list)
    run_budget: int | None = Field(default=None, ge=1)
    seed: int = Field(default=0, ge=0)
    resolution: int | None = Field(default=None, ge=3)
    generators: list[str] | None = None
    center_points: int | None = Field(default=None, ge=0)
    default_levels: int = Field(default=2, ge=2, le=101)
    model: Model = "linear"
    ccd_face: Literal["inscribed", "faced"] = "inscribed"

    @model_validator(mode="after")
    def _options_fit_method(self) -> DoeSpec:
        if self.method != "fractional_factorial":
            for option in ("resolution", "generators"):
                if getattr(self, option) is not None:
                    raise ValueError(f"{option} only applies to fractional_factorial, not {self.method}")
        if self.generators is not None and not self.generators:
            raise ValueError("generators is empty: omit it or give at least one, e.g. 'D = ABC'")
        names = [f.name for f in self.factors]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"factors listed more than once: {', '.join(twice)}")
        return self


class Factor(_Frozen):
    """A parameter after the spec and the request's overrides are applied.

    A varied factor spans ``low``..``high``; coded units map ``low`` to -1 and ``high`` to +1.
    ``levels`` (sorted) restricts it to those values; ``integer`` to whole numbers. A factor
    with ``fixed`` set is held at that value in every run. ``note`` says why it ended up so
    when that is not obvious (e.g. a request override beat the catalog's wish to vary it).
    """

    name: str
    unit: str = ""
    low: float
    high: float
    levels: list[float] | None = None
    fixed: float | None = None
    integer: bool = False
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Factor:
        if self.fixed is None and not self.low < self.high:
            raise ValueError(f"factor {self.name!r}: low {self.low} must be below high {self.high}")
        if self.fixed is not None and not self.low <= self.fixed <= self.high:
            raise ValueError(f"factor {self.name!r}: fixed {self.fixed} is outside {self.low}..{self.high}")
        if self.levels is not None and (
            self.levels != sorted(self.levels) or self.levels[0] < self.low or self.levels[-1] > self.high
        ):
            raise ValueError(f"factor {self.name!r}: levels must be sorted and within {self.low}..{self.high}")
        return self

    @property
    def varies(self) -> bool:
        """Whether the design chooses this factor's value (it is not held fixed)."""
        return self.fixed is None

    def to_coded(self, value: float) -> float:
        """Map a value in engineering units to coded units (low → -1, high → +1)."""
        if self.high == self.low:
            return 0.0
        return 2.0 * (value - self.low) / (self.high - self.low) - 1.0

    def from_coded(self, coded: float) -> float:
        """Map a coded value to engineering units, snapped to levels or integers when needed."""
        value = self.low + (coded + 1.0) / 2.0 * (self.high - self.low)
        value = min(max(value, self.low), self.high)  # float noise must never leave the bounds
        if self.levels is not None:
            value = min(self.levels, key=lambda level: (abs(level - value), level))
        elif self.integer:
            value = float(min(max(math.floor(value + 0.5), math.ceil(self.low)), math.floor(self.high)))
        return value


class Run(_Frozen):
    """One experiment of a design: the value of every factor and how long it should take."""

    run_id: str = Field(pattern=r"^run-\d{3,}$")
    values: dict[str, float]
    expected_duration_s: float = Field(ge=0)


class DesignQuality(_Frozen):
    """How good the design is, in coded units of the varied factors.

    ``d_efficiency`` is that of the main-effects (linear) model: |X'X|^(1/p) / N, 1.0 for an
    orthogonal two-level design, 0.0 when the model is not estimable. ``model_d_efficiency``
    gives it for each model the design can estimate. ``min_pairwise_distance`` is between
    distinct runs (deliberate replicates such as centre points are counted in
    ``replicated_runs`` instead, or every design with centre points would score 0).
    ``resolution`` (shortest word of the defining relation), ``generators`` ("D = ABC"),
    ``defining_relation`` and ``aliases`` (alias chains of main effects and two-factor
    interactions, shown up to three-factor terms) are filled for two-level factorial designs;
    ``letters`` says which factor each letter stands for; ``notes`` says what the lists leave out
    and describes partial aliasing (non-regular Plackett–Burman designs).
    """

    d_efficiency: float
    model_d_efficiency: dict[str, float] = Field(default_factory=dict)
    min_pairwise_distance: float
    max_abs_correlation: float
    replicated_runs: int = 0
    resolution: int | None = None
    generators: list[str] = Field(default_factory=list)
    defining_relation: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    letters: dict[str, str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


class Design(_Frozen):
    """A finished design: the runs to execute and the evidence of its quality.

    ``runs`` are in design order; the scheduler decides the execution order.
    """

    schema_version: Literal["fastlims.doe/1"] = "fastlims.doe/1"
    method: Method
    seed: int
    factors: list[Factor]
    runs: list[Run]
    quality: DesignQuality
    warnings: list[str] = Field(default_factory=list)
    spec: DoeSpec

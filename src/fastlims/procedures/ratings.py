"""The ratings of a unit under test (UUT) that procedures and safety limits are derived from.

A plain frozen dataclass so the pure core needs no database: the catalog turns a ``UUTIDs`` row
into one with :meth:`UutRatings.from_mapping`, which accepts the catalog column names
(``NominalCapacityAh``, ...) or the field names (``nominal_capacity_Ah``, ...) and names every
missing or invalid field at once. Units are SI (A, V, Ah, degC); currents are magnitudes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal, cast

Format = Literal["cell", "module", "pack"]
FORMATS: tuple[Format, ...] = ("cell", "module", "pack")

#: Catalog column (DB/API/import-export) -> dataclass field.
COLUMNS: dict[str, str] = {
    "Code": "code",
    "Chemistry": "chemistry",
    "Format": "format",
    "SeriesCount": "series_count",
    "ParallelCount": "parallel_count",
    "NominalCapacityAh": "nominal_capacity_Ah",
    "NominalVoltageV": "nominal_voltage_V",
    "MinVoltageV": "min_voltage_V",
    "MaxVoltageV": "max_voltage_V",
    "MaxChargeCurrentA": "max_charge_current_A",
    "MaxDischargeCurrentA": "max_discharge_current_A",
    "MaxPulseCurrentA": "max_pulse_current_A",
    "MinTemperatureC": "min_temperature_C",
    "MaxTemperatureC": "max_temperature_C",
}
#: Upper bounds that no real battery reaches; a value beyond them is a typo (e.g. mA for A).
_SANE_MAX = {
    "series_count": 10_000,
    "parallel_count": 10_000,
    "nominal_capacity_Ah": 1e6,
    "nominal_voltage_V": 1e5,
    "max_voltage_V": 1e5,
    "max_charge_current_A": 1e6,
    "max_discharge_current_A": 1e6,
    "max_pulse_current_A": 1e6,
}


class RatingsError(ValueError):
    """Ratings that cannot describe a UUT; ``problems`` names each field that is wrong."""

    def __init__(self, code: str, problems: list[str]) -> None:
        self.code = code
        self.problems = problems
        super().__init__(f"UUT {code!r} ratings: " + "; ".join(problems))


@dataclass(frozen=True)
class UutRatings:
    """What a UUT can take. Procedures are resolved against these values and may only tighten them."""

    code: str
    chemistry: str
    format: Format
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

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise RatingsError(self.code, problems)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], *, code: str | None = None) -> UutRatings:
        """Build ratings from a catalog row or API payload (column or field names).

        ``code`` overrides or supplies the UUT code (catalog rows keep it in ``Code``). Raises
        :class:`RatingsError` naming every missing or invalid field.
        """
        values: dict[str, object] = {}
        for key, value in data.items():
            name = COLUMNS.get(key, key)
            if name in _FIELD_TYPES:
                values[name] = value
        if code is not None:
            values["code"] = code
        label = str(values.get("code") or "?")
        problems: list[str] = []
        converted: dict[str, object] = {}
        for name, kind in _FIELD_TYPES.items():
            column = _COLUMN_OF[name]
            if name not in values or values[name] is None or values[name] == "":
                problems.append(f"{column} is missing")
                continue
            value = values[name]
            if kind is int:
                number = _as_int(value)
                if number is None:
                    problems.append(f"{column} must be a whole number, got {value!r}")
                    continue
                converted[name] = number
            elif kind is float:
                real = _as_float(value)
                if real is None:
                    problems.append(f"{column} must be a finite number, got {value!r}")
                    continue
                converted[name] = real
            elif name == "format":
                text = str(value).strip().lower()
                if text not in FORMATS:
                    problems.append(f"{column} must be one of {', '.join(FORMATS)}, got {value!r}")
                    continue
                converted[name] = text
            else:
                converted[name] = str(value).strip()
        if problems:
            raise RatingsError(label, problems)
        return cls(**converted)  # type: ignore[arg-type]  # names and types checked above

    def as_columns(self) -> dict[str, object]:
        """The catalog column names and values (the inverse of :meth:`from_mapping`)."""
        return {column: getattr(self, name) for column, name in COLUMNS.items()}

    @property
    def cells(self) -> int:
        """Number of cells in the UUT (series x parallel)."""
        return self.series_count * self.parallel_count

    @property
    def nominal_energy_Wh(self) -> float:
        """Nominal capacity x nominal voltage."""
        return self.nominal_capacity_Ah * self.nominal_voltage_V

    def amperes(self, c_rate: float) -> float:
        """The current (magnitude, A) of a C-rate: ``c_rate`` x the nominal capacity."""
        return c_rate * self.nominal_capacity_Ah


def _field_types() -> dict[str, type]:
    kinds: dict[str, type] = {}
    for item in fields(UutRatings):
        annotation = str(item.type)
        kinds[item.name] = int if annotation == "int" else float if annotation == "float" else str
    return kinds


_FIELD_TYPES = _field_types()
_COLUMN_OF = {name: column for column, name in COLUMNS.items()}


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _problems(r: UutRatings) -> list[str]:
    """Every inconsistency of constructed ratings, by catalog column name."""
    problems: list[str] = []
    if not r.code.strip():
        problems.append("Code is empty")
    if not r.chemistry.strip():
        problems.append("Chemistry is empty")
    if r.format not in FORMATS:
        problems.append(f"Format must be one of {', '.join(FORMATS)}, got {r.format!r}")
    for name, column in _COLUMN_OF.items():
        value = getattr(r, name)
        if _FIELD_TYPES[name] is str:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"{column} must be a finite number, got {value!r}")
            continue
        positive = name not in ("min_temperature_C", "max_temperature_C")
        if positive and value <= 0:
            problems.append(f"{column} must be positive, got {value}")
        limit = _SANE_MAX.get(name)
        if limit is not None and value > limit:
            problems.append(f"{column} {value} is implausibly large (at most {limit:g})")
    if problems:
        return problems
    if cast(str, r.format) == "cell" and (r.series_count != 1 or r.parallel_count != 1):
        problems.append(f"a cell has SeriesCount and ParallelCount 1, got {r.series_count}s{r.parallel_count}p")
    if not r.min_voltage_V < r.nominal_voltage_V < r.max_voltage_V:
        problems.append(
            f"NominalVoltageV {r.nominal_voltage_V} must lie strictly between MinVoltageV {r.min_voltage_V} "
            f"and MaxVoltageV {r.max_voltage_V}"
        )
    if r.max_pulse_current_A < max(r.max_charge_current_A, r.max_discharge_current_A):
        problems.append(
            f"MaxPulseCurrentA {r.max_pulse_current_A} is below the continuous maximum "
            f"{max(r.max_charge_current_A, r.max_discharge_current_A)} (a pulse rating is at least the continuous one)"
        )
    if not r.min_temperature_C < r.max_temperature_C:
        problems.append(f"MinTemperatureC {r.min_temperature_C} must be below MaxTemperatureC {r.max_temperature_C}")
    if r.min_temperature_C < -100 or r.max_temperature_C > 200:
        problems.append("temperatures must lie within -100..200 degC")
    return problems

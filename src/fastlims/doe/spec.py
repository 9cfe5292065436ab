"""Read the DoE section of a catalog entry (a dict from YAML or JSON) into a `DoeSpec`.

Accepted shape (YAML shown)::

    doe:
      method: box_behnken          # one of models.METHODS
      run_budget: 30               # optional
      seed: 7                      # optional, default 0
      center_points: 3             # optional
      factors:                     # a list ...
        - {name: ambient_temperature, low: 10, high: 40}
        - {name: soc_init, levels: [0.2, 0.5, 0.8]}
        - {name: capacity_Ah, fixed: 3.2}
        - {name: r0}               # vary over the FMU's declared min/max
      # ... or a mapping: {ambient_temperature: {low: 10, high: 40},
      #                    soc_init: [0.2, 0.5, 0.8], capacity_Ah: 3.2, r0: null}

The mapping form exists because catalog authors write YAML by hand and it reads naturally.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from fastlims.doe.errors import DoeError
from fastlims.doe.models import DoeSpec


def parse_doe_section(section: object, *, where: str = "doe") -> DoeSpec:
    """Validate a DoE section; raise `DoeError` listing every problem as ``where.field: why``."""
    if not isinstance(section, Mapping):
        raise DoeError([f"{where}: expected a mapping with at least 'method', got {type(section).__name__}"])
    data: dict[str, Any] = dict(section)
    problems: list[str] = []
    if "factors" in data:
        data["factors"] = _factor_list(data["factors"], f"{where}.factors", problems)
    if problems:
        raise DoeError(problems)
    try:
        return DoeSpec.model_validate(data)
    except ValidationError as exc:
        raise DoeError(validation_problems(exc, where)) from exc


def validation_problems(exc: ValidationError, where: str) -> list[str]:
    """Turn pydantic's errors into ``where.path: message`` lines a catalog author can act on."""
    problems = []
    for error in exc.errors():
        path = where
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        message = str(error["msg"])
        if error["type"] == "extra_forbidden":
            message = "unknown field (check the spelling)"
        elif error["type"] in ("literal_error", "missing") or error["type"].endswith("_parsing"):
            message = f"{message}; got {error['input']!r}" if error["type"] != "missing" else "required"
        problems.append(f"{path}: {message.removeprefix('Value error, ')}")
    return problems


def _factor_list(raw: object, where: str, problems: list[str]) -> object:
    """Normalise the mapping form of ``factors`` into the list form; leave lists to pydantic."""
    if not isinstance(raw, Mapping):
        return raw
    factors: list[object] = []
    for name, value in raw.items():
        if value is None:
            factors.append({"name": name})
        elif isinstance(value, Mapping):
            if "name" in value and value["name"] != name:
                problems.append(f"{where}.{name}.name: {value['name']!r} differs from its key {name!r}")
            factors.append({**value, "name": name})
        elif isinstance(value, list | tuple):
            factors.append({"name": name, "levels": list(value)})
        elif isinstance(value, int | float) and not isinstance(value, bool):
            factors.append({"name": name, "fixed": value})
        else:
            problems.append(
                f"{where}.{name}: expected null, a number (fixed), a list (levels) or a mapping "
                f"with low/high, levels or fixed; got {type(value).__name__}"
            )
    return factors

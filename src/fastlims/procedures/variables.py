"""The first phase of resolving a procedure: its variables substituted (:func:`substitute`).

A DoE run's values (else each variable's ``value``) replace every ``"{name}"`` reference in the
fields that take a number, and the result is validated again as a :class:`Procedure` without
variables. :mod:`.resolve` then turns it into a resolved procedure for one UUT.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from fastlims.procedures.model import Procedure, is_var, var_name
from fastlims.procedures.problems import Problem, schema_problems

#: Fields that may hold a ``"{name}"`` variable reference (steps and terminations).
_NUMERIC_KEYS = frozenset(
    {
        "current_A",
        "c_rate",
        "voltage_V",
        "current_limit_A",
        "current_limit_c_rate",
        "power_W",
        "duration_s",
        "temperature_C",
        "count",
        "time_s",
        "voltage_above_V",
        "voltage_below_V",
        "current_below_A",
        "current_below_c_rate",
        "charge_Ah",
        "temperature_above_C",
        "temperature_below_C",
    }
)


def substitute(
    procedure: Procedure,
    values: Mapping[str, float] | None,
    lines: Mapping[str, int] | None,
    problems: list[Problem],
) -> tuple[Procedure | None, dict[str, float]]:
    """The procedure with every ``"{name}"`` replaced by its number, and the values used.

    A DoE run's ``values`` override each variable's ``value`` and must lie within its ``min`` and
    ``max``. Every problem (an unknown or non-finite value, a value out of range, an unknown
    reference, a number that does not fit its field) is appended to ``problems``, naming the step
    path and line; the procedure is None when a reference was unknown or the result does not
    validate.
    """
    chosen: dict[str, float] = {}
    for name, variable in procedure.variables.items():
        chosen[name] = variable.value
    for name, value in (values or {}).items():
        declared = procedure.variables.get(name)
        if declared is None:
            known = ", ".join(procedure.variables) or "none"
            problems.append(Problem(message=f"unknown variable {name!r} in the run's values (declared: {known})"))
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(Problem(message=f"variable {name!r}: value {value!r} is not a finite number"))
            continue
        if declared.min is not None and value < declared.min:
            problems.append(Problem(message=f"variable {name!r}: {value:g} is below its min {declared.min:g}"))
        if declared.max is not None and value > declared.max:
            problems.append(Problem(message=f"variable {name!r}: {value:g} is above its max {declared.max:g}"))
        chosen[name] = float(value)

    data = procedure.model_dump(mode="json", exclude_none=True)
    before = len(problems)
    data["steps"] = [
        _replace(step, f"steps[{index}]", chosen, lines, problems) for index, step in enumerate(data["steps"])
    ]
    if len(problems) > before:
        return None, chosen
    data["variables"] = {}
    try:
        return Procedure.model_validate(data), chosen
    except ValidationError as exc:
        problems.extend(
            Problem(message=p.message + " (after substituting variables)", path=p.path, line=p.line)
            for p in schema_problems(exc, lines)
        )
        return None, chosen


def _replace(
    node: Any, path: str, chosen: Mapping[str, float], lines: Mapping[str, int] | None, problems: list[Problem]
) -> Any:
    if isinstance(node, list):
        return [_replace(item, path, chosen, lines, problems) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "steps" and isinstance(value, list):
            out[key] = [
                _replace(item, f"{path}.steps[{index}]", chosen, lines, problems) for index, item in enumerate(value)
            ]
        elif key in _NUMERIC_KEYS and is_var(value):
            name = var_name(value)
            if name not in chosen:
                known = ", ".join(sorted(chosen)) or "none"
                problems.append(
                    Problem(
                        message=f"{key}: unknown variable {value} (declared: {known})",
                        path=path,
                        line=lines.get(path) if lines else None,
                    )
                )
                out[key] = value
            elif key == "count":
                number = chosen[name]
                out[key] = int(number) if float(number).is_integer() else number
            else:
                out[key] = chosen[name]
        else:
            out[key] = _replace(value, path, chosen, lines, problems)
    return out

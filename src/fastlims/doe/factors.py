"""Turn the FMUs' parameters, the catalog's DoE spec and the request's overrides into factors.

Precedence, most specific first: the request's overrides fix a parameter for this request
(even one the catalog wants varied, with a note saying so), then the DoE spec's factor entries,
then the FMU's declaration. Nothing is guessed: a parameter the FMU declares without bounds
cannot vary unless the spec gives a range or levels.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence

from fastlims.doe.errors import DoeError
from fastlims.doe.models import DoeSpec, Factor, FactorSpec, Parameter

__all__ = ["DoeError", "resolve_factors"]


def resolve_factors(
    parameters: Sequence[Parameter],
    spec: DoeSpec,
    overrides: Mapping[str, float] | None = None,
) -> list[Factor]:
    """Return the factors of the design: varied ones and those held fixed.

    ``spec.factors`` empty means: vary every settable parameter that declares both min and
    max (parameters overridden by the request excepted). Raises `DoeError` with every problem,
    each naming its parameter: unknown names, parameters that are not settable or not numeric,
    ranges, levels or fixed values outside the declared bounds, unbounded parameters asked to
    vary, and a design with nothing left to vary.
    """
    problems: list[str] = []
    known = _index(parameters, problems)
    overrides = dict(overrides or {})
    requested = list(spec.factors) or [
        FactorSpec(name=p.name)
        for p in known.values()
        if p.settable
        and p.numeric
        and p.min is not None
        and p.max is not None
        and p.min < p.max
        and p.name not in overrides
    ]

    factors: list[Factor] = []
    for entry in requested:
        parameter = _lookup(entry.name, known, "the DoE spec", problems)
        if parameter is None:
            continue
        if entry.name in overrides:
            wanted = "fix it at " + _fmt(entry.fixed) if entry.fixed is not None else "vary it"
            factor = _fixed(
                parameter,
                overrides[entry.name],
                "request override",
                problems,
                note=f"fixed by the request (the catalog's DoE spec would {wanted})",
            )
        elif entry.fixed is not None:
            factor = _fixed(parameter, entry.fixed, "DoE spec", problems, note=None)
        else:
            factor = _varied(parameter, entry, problems)
        if factor is not None:
            factors.append(factor)

    listed = {entry.name for entry in requested}
    for name, value in overrides.items():
        if name in listed:
            continue
        parameter = _lookup(name, known, "the request's overrides", problems)
        if parameter is not None:
            factor = _fixed(parameter, value, "request override", problems, note="fixed by the request")
            if factor is not None:
                factors.append(factor)

    if not problems and not any(f.varies for f in factors):
        if spec.factors or overrides:
            problems.append("nothing to vary: every factor is fixed (by the DoE spec or the request)")
        else:
            problems.append(
                "nothing to vary: no settable parameter of the FMUs declares both min and max; "
                "list the factors with low/high or levels in the DoE spec"
            )
    if problems:
        raise DoeError(problems)
    return factors


def _index(parameters: Sequence[Parameter], problems: list[str]) -> dict[str, Parameter]:
    known: dict[str, Parameter] = {}
    for parameter in parameters:
        first = known.get(parameter.name)
        if first is None:
            known[parameter.name] = parameter
        elif first != parameter:
            problems.append(
                f"parameter {parameter.name!r} is declared twice with different attributes "
                f"(FMUs {first.fmu or '?'} and {parameter.fmu or '?'}): "
                "rename one so a factor names one variable"
            )
    return known


def _lookup(name: str, known: Mapping[str, Parameter], source: str, problems: list[str]) -> Parameter | None:
    parameter = known.get(name)
    if parameter is None:
        settable = sorted(p.name for p in known.values() if p.settable)
        close = difflib.get_close_matches(name, settable, n=3)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else (
                "settable parameters: "
                + (", ".join(settable[:12]) or "none")
                + (f" (+{len(settable) - 12} more)" if len(settable) > 12 else "")
            )
        )
        problems.append(f"unknown parameter {name!r} in {source}: the FMUs declare no such variable; {hint}")
        return None
    if not parameter.settable:
        problems.append(
            f"parameter {name!r} in {source} cannot be set per run: it has "
            f"causality={parameter.causality!r}, variability={parameter.variability!r} "
            "(only causality 'parameter' with variability 'tunable' or 'fixed' can)"
        )
        return None
    if not parameter.numeric:
        problems.append(
            f"parameter {name!r} in {source} is of type {parameter.type}: only numeric (Real, Float, "
            "Integer, Enumeration) parameters can be factors"
        )
        return None
    return parameter


def _fixed(parameter: Parameter, value: float, source: str, problems: list[str], note: str | None) -> Factor | None:
    name = parameter.name
    if not math.isfinite(value):
        problems.append(f"parameter {name!r}: {source} value {value} is not a finite number")
        return None
    before = len(problems)
    _check_inside(parameter, value, f"{source} value", problems)
    if parameter.integer and value != int(value):
        problems.append(f"parameter {name!r} is an integer ({parameter.type}): {source} value {_fmt(value)} is not")
    if len(problems) > before:
        return None
    return Factor(
        name=name,
        unit=parameter.unit,
        low=value,
        high=value,
        fixed=value,
        integer=parameter.integer,
        note=note,
    )


def _varied(parameter: Parameter, entry: FactorSpec, problems: list[str]) -> Factor | None:
    name = parameter.name
    before = len(problems)
    levels: list[float] | None = None
    if entry.levels is not None:
        levels = sorted(entry.levels)
        for level in levels:
            _check_inside(parameter, level, "level", problems)
            if parameter.integer and level != int(level):
                problems.append(f"parameter {name!r} is an integer ({parameter.type}): level {_fmt(level)} is not")
        low, high = levels[0], levels[-1]
    elif entry.low is not None and entry.high is not None:
        low, high = entry.low, entry.high
        _check_inside(parameter, low, "low", problems)
        _check_inside(parameter, high, "high", problems)
    elif parameter.min is None or parameter.max is None:
        missing = " and ".join(b for b, v in (("min", parameter.min), ("max", parameter.max)) if v is None)
        problems.append(
            f"parameter {name!r} cannot vary: the FMU declares no {missing} for it; "
            "give low/high or levels for it in the DoE spec (or fix it)"
        )
        return None
    elif parameter.min == parameter.max:
        problems.append(f"parameter {name!r} cannot vary: its declared min and max are both {_fmt(parameter.min)}")
        return None
    else:
        low, high = parameter.min, parameter.max
    if len(problems) > before:
        return None
    if parameter.integer and levels is None:
        low, high = float(math.ceil(low)), float(math.floor(high))
        if not low < high:
            problems.append(
                f"parameter {name!r} is an integer ({parameter.type}) but its range holds fewer than "
                "two whole numbers: widen it or fix the parameter"
            )
            return None
    return Factor(name=name, unit=parameter.unit, low=low, high=high, levels=levels, integer=parameter.integer)


def _check_inside(parameter: Parameter, value: float, what: str, problems: list[str]) -> None:
    if parameter.min is not None and value < parameter.min:
        problems.append(
            f"parameter {parameter.name!r}: {what} {_fmt(value)} is below its declared min {_fmt(parameter.min)}"
        )
    if parameter.max is not None and value > parameter.max:
        problems.append(
            f"parameter {parameter.name!r}: {what} {_fmt(value)} is above its declared max {_fmt(parameter.max)}"
        )


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"

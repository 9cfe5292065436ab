"""Unit conversion for profiles and stop conditions: a value given in one unit (``mA``) turned
into the unit an FMU variable declares (``A``).

The model description's own unit definitions are used first (a ``DisplayUnit`` of the declared
unit, or another unit with the same SI base-unit exponents); then a small table of the units a
battery lab writes (current, voltage, power, energy, charge, resistance, capacitance, time,
temperature, ratios). Pure: no I/O.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastlims.benches.cosim.errors import CosimError


@dataclass(frozen=True)
class Conversion:
    """``to = value * scale + offset``."""

    scale: float = 1.0
    offset: float = 0.0

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0

    def __call__(self, value: Any) -> Any:
        return value if self.identity else value * self.scale + self.offset


IDENTITY = Conversion()

# name -> (quantity, factor, offset): SI value = value * factor + offset
_BASE: dict[str, tuple[str, float, float]] = {
    "A": ("current", 1.0, 0.0),
    "V": ("voltage", 1.0, 0.0),
    "W": ("power", 1.0, 0.0),
    "J": ("energy", 1.0, 0.0),
    "Wh": ("energy", 3600.0, 0.0),
    "C": ("charge", 1.0, 0.0),
    "As": ("charge", 1.0, 0.0),
    "Ah": ("charge", 3600.0, 0.0),
    "Ohm": ("resistance", 1.0, 0.0),
    "F": ("capacitance", 1.0, 0.0),
    "s": ("time", 1.0, 0.0),
    "min": ("time", 60.0, 0.0),
    "h": ("time", 3600.0, 0.0),
    "d": ("time", 86400.0, 0.0),
    "Hz": ("frequency", 1.0, 0.0),
    "K": ("temperature", 1.0, 0.0),
    "degC": ("temperature", 1.0, 273.15),
    "degF": ("temperature", 5.0 / 9.0, 273.15 - 32.0 * 5.0 / 9.0),
    "1": ("ratio", 1.0, 0.0),
    "%": ("ratio", 0.01, 0.0),
}
# Units that take SI prefixes (not min, h, d, degC, %, ...).
_PREFIXABLE = ("A", "V", "W", "J", "Wh", "C", "As", "Ah", "Ohm", "F", "s", "Hz")
_PREFIXES = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}
_ALIASES = {
    "ohm": "Ohm",
    "Ω": "Ohm",
    "°C": "degC",
    "℃": "degC",
    "deg C": "degC",
    "°F": "degF",
    "sec": "s",
    "µ": "u",
    "-": "1",
    "percent": "%",
}


def _normalise(unit: str) -> str:
    text = unit.strip()
    if text in _ALIASES:
        return _ALIASES[text]
    text = text.replace("µ", "u").replace("Ω", "Ohm")
    if text.endswith("ohm"):
        text = text[: -len("ohm")] + "Ohm"
    return text.replace("°C", "degC").replace("°F", "degF")


def _table_entry(unit: str) -> tuple[str, float, float] | None:
    name = _normalise(unit)
    if name in _BASE:
        return _BASE[name]
    for base in _PREFIXABLE:
        prefix = name[: -len(base)]
        if name.endswith(base) and prefix in _PREFIXES:
            quantity, factor, offset = _BASE[base]
            return quantity, factor * _PREFIXES[prefix], offset
    return None


def known_units() -> list[str]:
    """Every unit name the built-in table knows without a prefix (for error messages)."""
    return sorted(_BASE)


def _from_model_description(given: str, declared: str, unit_definitions: Sequence[Any]) -> Conversion | None:
    units = {u.name: u for u in unit_definitions or ()}
    target = units.get(declared)
    if target is None:
        return None
    for display in getattr(target, "displayUnits", None) or ():
        if display.name == given or _normalise(display.name) == _normalise(given):
            # FMI: display value = factor * value + offset (FMI 3 adds "inverse", not handled here)
            if getattr(display, "inverse", False):
                return None
            factor = float(display.factor if display.factor is not None else 1.0)
            offset = float(display.offset if display.offset is not None else 0.0)
            return Conversion(1.0 / factor, -offset / factor)
    source = units.get(given)
    base_from, base_to = getattr(source, "baseUnit", None), getattr(target, "baseUnit", None)
    if base_from is None or base_to is None:
        return None
    exponents = ("kg", "m", "s", "A", "K", "mol", "cd", "rad")
    if any((getattr(base_from, e, 0) or 0) != (getattr(base_to, e, 0) or 0) for e in exponents):
        return None
    f_from, o_from = float(base_from.factor or 1.0), float(base_from.offset or 0.0)
    f_to, o_to = float(base_to.factor or 1.0), float(base_to.offset or 0.0)
    return Conversion(f_from / f_to, (o_from - o_to) / f_to)


def conversion(given: str, declared: str, *, unit_definitions: Sequence[Any] = (), what: str = "a value") -> Conversion:
    """How to turn a value in ``given`` into ``declared`` (the variable's unit).

    An empty ``given`` means "already in the declared unit". Raises :class:`CosimError` when the
    two units measure different quantities or either is unknown; ``what`` names the value in
    that message (e.g. "custom_profile 'Cycler/current_setpoint'").
    """
    given_text, declared_text = given.strip(), declared.strip()
    if not given_text or given_text == declared_text or _normalise(given_text) == _normalise(declared_text):
        return IDENTITY
    if not declared_text:
        raise CosimError(
            [
                f"{what} is given in {given_text!r} but the FMU declares no unit for the variable, so it "
                "cannot be converted: give the values without a unit (in the FMU's own unit)"
            ]
        )
    found = _from_model_description(given_text, declared_text, unit_definitions)
    if found is not None:
        return found
    source, target = _table_entry(given_text), _table_entry(declared_text)
    if source is not None and target is not None:
        if source[0] != target[0]:
            raise CosimError(
                [
                    f"{what} is given in {given_text!r} ({source[0]}) but the variable is declared in "
                    f"{declared_text!r} ({target[0]}): these measure different quantities"
                ]
            )
        # SI = v * f_from + o_from; to = (SI - o_to) / f_to
        scale = source[1] / target[1]
        offset = (source[2] - target[2]) / target[1]
        return Conversion(scale, 0.0 if math.isclose(offset, 0.0, abs_tol=1e-15) else offset)
    unknown = given_text if source is None else declared_text
    close = difflib.get_close_matches(_normalise(unknown), [*known_units(), "mA", "mV", "kW", "mOhm"], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known units: {', '.join(known_units())}"
    raise CosimError(
        [
            f"{what}: cannot convert {given_text!r} to the declared unit {declared_text!r}: "
            f"unit {unknown!r} is unknown{hint} (SI prefixes n, u, m, k, M, G work with A, V, W, Wh, Ah, "
            "Ohm, F, s)"
        ]
    )

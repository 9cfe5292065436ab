"""The text form, one line at a time: a step line, a ``Repeat N times:`` head, a ``# key: value``
header or a trailing ``# label=.. tags=..`` annotation turned into its JSON (the grammar is in
:mod:`.text`, which puts the lines together into a procedure). A line that does not parse raises
:class:`LineError` with a message that says what was expected.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastlims.procedures.model import Termination
from fastlims.procedures.vocabulary import SAFETY_KEYS


class LineError(Exception):
    """One line of the text form that does not parse; ``message`` says what was expected."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------- numbers and units

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_VAR = r"\{[A-Za-z_][A-Za-z0-9_]*\}"
_QTY = re.compile(rf"^\s*(?:(?P<crate>C/(?P<div>{_NUMBER}))|(?P<num>{_NUMBER}|{_VAR})\s*(?P<unit>[A-Za-z°/]*))\s*$")

# unit -> (dimension, factor to SI); c_rate counts as its own dimension.
_UNITS: dict[str, tuple[str, float]] = {
    "s": ("time", 1.0),
    "sec": ("time", 1.0),
    "secs": ("time", 1.0),
    "second": ("time", 1.0),
    "seconds": ("time", 1.0),
    "min": ("time", 60.0),
    "mins": ("time", 60.0),
    "minute": ("time", 60.0),
    "minutes": ("time", 60.0),
    "h": ("time", 3600.0),
    "hr": ("time", 3600.0),
    "hrs": ("time", 3600.0),
    "hour": ("time", 3600.0),
    "hours": ("time", 3600.0),
    "v": ("voltage", 1.0),
    "mv": ("voltage", 1e-3),
    "a": ("current", 1.0),
    "ma": ("current", 1e-3),
    "c": ("c_rate", 1.0),
    "w": ("power", 1.0),
    "kw": ("power", 1e3),
    "ah": ("charge", 1.0),
    "mah": ("charge", 1e-3),
    "degc": ("temperature", 1.0),
    "°c": ("temperature", 1.0),
}
_SI_UNIT = {
    "time": "s",
    "voltage": "V",
    "current": "A",
    "c_rate": "C",
    "power": "W",
    "charge": "Ah",
    "temperature": "degC",
}


@dataclass(frozen=True)
class _Qty:
    dimension: str
    value: float | str  # a float in SI units, or a "{name}" variable reference


def _quantity(text: str, what: str) -> _Qty:
    match = _QTY.match(text)
    if not match:
        raise LineError(
            f"expected {what} (a number with a unit, e.g. '4.2 V', '0.5C', '2 hours'), got {text.strip()!r}"
        )
    if match.group("crate"):
        divisor = float(match.group("div"))
        if divisor <= 0:
            raise LineError(f"C/{match.group('div')}: the divisor must be positive")
        return _Qty("c_rate", 1.0 / divisor)
    number, unit = match.group("num"), match.group("unit")
    if not unit:
        raise LineError(f"{number} needs a unit ({what})")
    known = _UNITS.get(unit.lower())
    if known is None:
        raise LineError(f"unknown unit {unit!r} in {text.strip()!r}; known units: {', '.join(sorted(_UNIT_NAMES))}")
    dimension, factor = known
    if number.startswith("{"):
        if factor != 1.0:
            raise LineError(
                f"a variable is written in the field's own unit: '{number} {_SI_UNIT[dimension]}', not {unit!r}"
            )
        return _Qty(dimension, number)
    value = float(number)
    if factor != 1.0:
        # Divide by the inverse where it is exact, so '50 mA' is exactly 0.05.
        inverse = 1.0 / factor
        value = value / inverse if inverse.is_integer() else value * factor
    if not math.isfinite(value):
        raise LineError(f"{number} is not a finite number")
    return _Qty(dimension, value)


_UNIT_NAMES = ("s", "seconds", "min", "minutes", "h", "hours", "V", "mV", "A", "mA", "C", "C/20", "W", "kW", "Ah")


def _expect(q: _Qty, dimensions: Sequence[str], what: str) -> _Qty:
    if q.dimension not in dimensions:
        raise LineError(f"expected {what}, got a {q.dimension.replace('_', '-')}")
    return q


# --------------------------------------------------------------------------- conditions

_OR = re.compile(r"\s+or\s+", re.IGNORECASE)


def _conditions(text: str, natural_voltage: str | None, natural_temperature: str | None) -> list[Termination]:
    """``for 1 hour or until 2.5 V`` -> terminations. ``natural_*`` is 'above'/'below' when the
    step's direction says which way a bare voltage/temperature is crossed."""
    text = text.strip()
    if not text:
        return []
    result: list[Termination] = []
    for clause in _OR.split(text):
        words = clause.strip()
        lowered = words.lower()
        keyword = ""
        for lead in ("for ", "until "):
            if lowered.startswith(lead):
                keyword = lead.strip()
                words = words[len(lead) :].strip()
                lowered = words.lower()
                break
        side = None
        for qualifier in ("above ", "below "):
            if lowered.startswith(qualifier):
                side = qualifier.strip()
                words = words[len(qualifier) :].strip()
                break
        q = _quantity(words, "a condition: a time, voltage, current, charge or temperature")
        if keyword == "for" and q.dimension != "time":
            raise LineError(f"'for' takes a time, got a {q.dimension.replace('_', '-')} ({clause.strip()!r})")
        result.append(_termination(q, side, natural_voltage, natural_temperature, clause.strip()))
    return result


def _termination(
    q: _Qty, side: str | None, natural_voltage: str | None, natural_temperature: str | None, clause: str
) -> Termination:
    if q.dimension == "time":
        if side:
            raise LineError(f"a time takes no {side!r} ({clause!r})")
        return Termination(time_s=q.value)
    if q.dimension == "voltage":
        side = side or natural_voltage
        if side is None:
            raise LineError(f"say 'above' or 'below' for a voltage condition on this step ({clause!r})")
        return Termination(voltage_above_V=q.value) if side == "above" else Termination(voltage_below_V=q.value)
    if q.dimension in ("current", "c_rate"):
        if side == "above":
            raise LineError(f"a current condition is a taper: 'until below ...' ({clause!r})")
        if q.dimension == "current":
            return Termination(current_below_A=q.value)
        return Termination(current_below_c_rate=q.value)
    if q.dimension == "charge":
        if side:
            raise LineError(f"a charge condition is the charge passed in the step, without {side!r} ({clause!r})")
        return Termination(charge_Ah=q.value)
    if q.dimension == "temperature":
        side = side or natural_temperature
        if side is None:
            raise LineError(f"say 'above' or 'below' for a temperature condition ({clause!r})")
        if side == "above":
            return Termination(temperature_above_C=q.value)
        return Termination(temperature_below_C=q.value)
    raise LineError(f"a {q.dimension} cannot end a step ({clause!r})")


# --------------------------------------------------------------------------- step lines

_HEAD = {
    "rest": re.compile(r"^rest\b(?P<rest>.*)$", re.IGNORECASE),
    "pulse": re.compile(
        r"^pulse\s+(?P<dir>charge|discharge)\s+at\s+(?P<q>.+?)\s+for\s+(?P<d>.+?)\s*$",
        re.IGNORECASE,
    ),
    "cc": re.compile(
        r"^(?P<dir>charge|discharge)\s+at\s+(?P<q>\S+(?:\s+(?!for\b|until\b|or\b)[A-Za-z°/]+)?)(?P<rest>.*)$",
        re.IGNORECASE,
    ),
    "cv": re.compile(
        r"^hold\s+at\s+(?P<q>\S+(?:\s+(?!for\b|until\b|or\b|limited\b)[A-Za-z°/]+)?)"
        r"(?:\s+limited\s+to\s+(?P<lim>\S+(?:\s+(?!for\b|until\b|or\b)[A-Za-z°/]+)?))?(?P<rest>.*)$",
        re.IGNORECASE,
    ),
    "ambient": re.compile(
        r"^set\s+ambient\s+to\s+(?P<q>\S+(?:\s+(?!and\b)[A-Za-z°/]+)?)(?:\s+and\s+rest\b(?P<rest>.*))?\s*$",
        re.IGNORECASE,
    ),
    "profile": re.compile(
        r"^follow\s+(?P<quantity>current|power|voltage)\s+profile"
        r"(?:\s+\((?P<interp>linear|previous)\))?(?P<source>\s+from\s+custom_profile)?(?P<rest>[^:]*)"
        r"(?::(?P<points>.*))?$",
        re.IGNORECASE,
    ),
    "external": re.compile(
        r"^external\s+(?P<action>[a-z_]+)\s+for\s+(?P<d>.+?)(?:\s+(?P<desc>\".*\"))?\s*$", re.IGNORECASE
    ),
}
_REPEAT = re.compile(
    r"^repeat\s+(?P<n>\S+)\s+times?(?:\s+(?P<cycle>counting cycles|not counting cycles))?\s*:\s*$", re.IGNORECASE
)
REPEAT_START = re.compile(r"^repeat\b", re.IGNORECASE)

_STARTS = (
    "Rest for/until ...",
    "Charge at ...",
    "Discharge at ...",
    "Hold at ...",
    "Pulse charge/discharge at ... for ...",
    "Set ambient to ...",
    "Follow current/power/voltage profile ...",
    "External <action> for ...",
    "Repeat N times:",
)


def step_line(text: str) -> dict[str, Any]:
    """One step line (without its annotation) -> the step's JSON."""
    lowered = text.lower()
    if lowered.startswith("pulse"):
        m = _HEAD["pulse"].match(text)
        if not m:
            raise LineError("expected 'Pulse charge|discharge at <current> for <time>'")
        q = _expect(_quantity(m.group("q"), "a pulse current"), ("current", "c_rate"), "a current (A, mA or C-rate)")
        d = _expect(_quantity(m.group("d"), "a duration"), ("time",), "a duration")
        step: dict[str, Any] = {"type": "pulse", "direction": m.group("dir").lower()}
        step["current_A" if q.dimension == "current" else "c_rate"] = q.value
        step["duration_s"] = d.value
        return step
    if lowered.startswith(("charge", "discharge")):
        m = _HEAD["cc"].match(text)
        if not m:
            raise LineError("expected 'Charge|Discharge at <current or power> [until <condition>]'")
        direction = m.group("dir").lower()
        q = _expect(_quantity(m.group("q"), "a current or power"), ("current", "c_rate", "power"), "a current or power")
        natural = "above" if direction == "charge" else "below"
        until = _conditions(m.group("rest"), natural, "above")
        if q.dimension == "power":
            return {"type": "cp", "direction": direction, "power_W": q.value, "until": until}
        key = "current_A" if q.dimension == "current" else "c_rate"
        return {"type": "cc", "direction": direction, key: q.value, "until": until}
    if lowered.startswith("hold"):
        m = _HEAD["cv"].match(text)
        if not m:
            raise LineError("expected 'Hold at <voltage> [limited to <current>] [until <condition>]'")
        q = _expect(_quantity(m.group("q"), "a voltage"), ("voltage",), "a voltage")
        step = {"type": "cv", "voltage_V": q.value}
        if m.group("lim"):
            lim = _expect(_quantity(m.group("lim"), "a current limit"), ("current", "c_rate"), "a current limit")
            step["current_limit_A" if lim.dimension == "current" else "current_limit_c_rate"] = lim.value
        step["until"] = _conditions(m.group("rest"), None, None)
        return step
    if lowered.startswith("rest"):
        m = _HEAD["rest"].match(text)
        assert m is not None
        rest = m.group("rest")
        if rest.strip() and not rest.strip().lower().startswith(("for ", "until ")):
            raise LineError("expected 'Rest for <time>' or 'Rest until <condition>'")
        return {"type": "rest", "until": _conditions(rest, None, None)}
    if lowered.startswith("set"):
        m = _HEAD["ambient"].match(text)
        if not m:
            raise LineError("expected 'Set ambient to <temperature> [and rest for <time>]'")
        q = _expect(_quantity(m.group("q"), "a temperature"), ("temperature",), "a temperature (degC)")
        rest = m.group("rest") or ""
        if m.group("rest") is not None and not rest.strip():
            raise LineError("'and rest' needs 'for <time>' or 'until <condition>'")
        return {"type": "ambient", "temperature_C": q.value, "until": _conditions(rest, None, None)}
    if lowered.startswith("follow"):
        m = _HEAD["profile"].match(text)
        if not m:
            raise LineError("expected 'Follow current|power|voltage profile [(linear)] [until ...]: t v; t v; ...'")
        step = {"type": "profile", "quantity": m.group("quantity").lower()}
        if m.group("interp"):
            step["interpolation"] = m.group("interp").lower()
        if m.group("source"):
            if m.group("points") is not None:
                raise LineError("a profile from custom_profile lists no points")
            step["source"] = "custom_profile"
        elif m.group("points") is None:
            raise LineError("a profile needs 'from custom_profile' or ': t v; t v; ...' points")
        else:
            step["points"] = _points(m.group("points"))
        step["until"] = _conditions(m.group("rest"), None, None)
        return step
    if lowered.startswith("external"):
        m = _HEAD["external"].match(text)
        if not m:
            raise LineError("expected 'External <action> for <time> [\"description\"]'")
        d = _expect(_quantity(m.group("d"), "a duration"), ("time",), "a duration")
        step = {"type": "external", "action": m.group("action").lower(), "duration_s": d.value}
        if m.group("desc"):
            try:
                step["description"] = json.loads(m.group("desc"))
            except json.JSONDecodeError:
                raise LineError('the description is a double-quoted string (\\" for a quote)') from None
        return step
    raise LineError(f"unknown step {text.split()[0]!r}; a step starts with one of: {'; '.join(_STARTS)}")


def _points(text: str) -> list[list[float]]:
    points: list[list[float]] = []
    for index, pair in enumerate(p for p in text.split(";") if p.strip()):
        parts = pair.replace(",", " ").split()
        if len(parts) != 2:
            raise LineError(f"profile point {index + 1}: expected 'time value', got {pair.strip()!r}")
        try:
            t, v = float(parts[0]), float(parts[1])
        except ValueError:
            raise LineError(f"profile point {index + 1}: expected two numbers, got {pair.strip()!r}") from None
        if not (math.isfinite(t) and math.isfinite(v)):
            raise LineError(f"profile point {index + 1}: numbers must be finite")
        points.append([t, v])
    if not points:
        raise LineError("a profile needs at least one 'time value' point")
    return points


# --------------------------------------------------------------------------- headers and annotations

HEADER = re.compile(r"^#\s*(?P<key>[a-z_]+)\s*:\s*(?P<value>.*)$")
HEADER_KEYS = ("format", "name", "description", "standard", "abuse", "safety", "sampling", "variable")


def _pairs(text: str, allowed: Iterable[str], what: str) -> dict[str, str]:
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError as exc:
        raise LineError(f"{what}: {exc}") from None
    allowed = tuple(allowed)
    pairs: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep:
            raise LineError(f"{what}: expected key=value, got {token!r}")
        if key not in allowed:
            raise LineError(f"{what}: unknown key {key!r}; expected one of {', '.join(allowed)}")
        pairs[key] = value
    return pairs


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LineError(f"{what}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise LineError(f"{what}: expected a finite number, got {text!r}")
    return value


def header_line(key: str, value: str, document: dict[str, Any]) -> None:
    """Put one ``# key: value`` header (a key of :data:`HEADER_KEYS`) into the procedure's JSON."""
    value = value.strip()
    if key in ("format", "name", "description", "standard"):
        document[key] = json.loads(value) if value.startswith('"') else value
    elif key == "abuse":
        if value.lower() not in ("true", "false"):
            raise LineError(f"abuse: expected true or false, got {value!r}")
        document["abuse"] = value.lower() == "true"
    elif key in ("safety", "sampling"):
        allowed = (*SAFETY_KEYS, "delay_s") if key == "safety" else ("period_s", "voltage_delta_V", "current_delta_A")
        pairs = _pairs(value, allowed, key)
        section = document.setdefault(key, {})
        for name, text in pairs.items():
            section[name] = _number(text, f"{key} {name}")
    elif key == "variable":
        name, _, rest = value.partition(" ")
        if not name:
            raise LineError("variable: expected 'variable: NAME value=.. [min=..] [max=..] [unit=..]'")
        pairs = _pairs(rest, ("value", "min", "max", "unit", "description"), f"variable {name}")
        if "value" not in pairs:
            raise LineError(f"variable {name}: value= is required")
        variable: dict[str, Any] = {}
        for field in ("value", "min", "max"):
            if field in pairs:
                variable[field] = _number(pairs[field], f"variable {name} {field}")
        for field in ("unit", "description"):
            if field in pairs:
                variable[field] = pairs[field]
        variables = document.setdefault("variables", {})
        if name in variables:
            raise LineError(f"variable {name} is declared twice")
        variables[name] = variable


def split_annotation(line: str) -> tuple[str, str]:
    """``step text  # label="x" tags=a,b`` -> (step text, annotation); '#' inside quotes is text."""
    quoted = escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "#" and not quoted:
            return line[:index].rstrip(), line[index + 1 :].strip()
    return line.rstrip(), ""


def annotation(text: str, step: dict[str, Any]) -> None:
    """Put a step line's trailing ``label=.. tags=..`` into its JSON (other comments are ignored)."""
    if not re.match(r"^(label|tags)=", text):
        return  # an ordinary trailing comment
    pairs = _pairs(text, ("label", "tags"), "step annotation")
    if "label" in pairs:
        step["label"] = pairs["label"]
    if "tags" in pairs:
        step["tags"] = [tag for tag in pairs["tags"].split(",") if tag]


# --------------------------------------------------------------------------- repeats


def repeat_head(text: str) -> dict[str, Any]:
    """``Repeat N times[ counting cycles]:`` -> a repeat step's JSON, its block still empty."""
    m = _REPEAT.match(text)
    if not m:
        raise LineError("expected 'Repeat N times:' (a whole count of at least 1, or {variable}, then a colon)")
    count_text = m.group("n")
    count: int | str
    if re.fullmatch(_VAR, count_text):
        count = count_text
    else:
        try:
            count = int(count_text)
        except ValueError:
            raise LineError(f"expected a whole repeat count, got {count_text!r}") from None
        if count < 1:
            raise LineError(f"a repeat count is at least 1, got {count}")
    step: dict[str, Any] = {"type": "repeat", "count": count, "steps": []}
    if m.group("cycle"):
        step["cycle"] = m.group("cycle").lower() == "counting cycles"
    return step

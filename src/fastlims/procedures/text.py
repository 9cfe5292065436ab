"""The text form of a procedure: one step per line, in the words battery engineers already write
for PyBaMM experiments, and back.

    # name: IEC 62660-1 capacity at 25 degC
    # safety: max_temperature_C=55 delay_s=1
    Set ambient to 25 degC and rest for 2 hours
    Charge at C/3 until 4.2 V
    Hold at 4.2 V until C/20
    Rest for 1 hour
    Discharge at C/3 until 2.5 V or 4 hours   # label="capacity" tags=capacity
    Repeat 25 times:
        Charge at 1C until 4.2 V
        Discharge at 1C until 2.5 V

Steps (case-insensitive):

* ``Rest for <time>`` / ``Rest until <condition>``
* ``Charge|Discharge at <current>`` (A, mA, ``1C``, ``C/3``) or ``at <power>`` (W, kW): constant
  current or constant power
* ``Hold at <voltage> [limited to <current>]``: constant voltage
* ``Pulse charge|discharge at <current> for <time>``
* ``Set ambient to <temperature> [and rest <conditions>]``
* ``Follow current|power|voltage profile [(linear)] [<conditions>]: t v; t v; ...`` (seconds and
  BDF-signed A, W or V) or ``... profile from custom_profile``
* ``External <action> for <time> ["description"]``: vibration, shock, crush, ... (a fixture)
* ``Repeat N times[ counting cycles| not counting cycles]:`` followed by an indented block

Conditions follow ``for``/``until`` and are joined with ``or``: a time (``s``, ``seconds``,
``min``, ``minutes``, ``h``, ``hours``), a voltage (``V``, ``mV``; above for a charge, below for a
discharge, else say ``above``/``below``), a current taper (``A``, ``mA``, ``C/20``), a charge
(``Ah``, ``mAh``) or a temperature (``degC``, ``°C``; say ``above``/``below``). A number may be a
variable, ``{name}``, written in the field's own unit (``{rest_s} s``, ``{rate}C``).

Before the first step, ``# key: value`` header lines carry what only JSON has otherwise:
``format``, ``name``, ``description``, ``standard``, ``abuse``, ``safety``, ``sampling`` (as
``key=value`` pairs) and one ``variable: NAME value=.. min=.. max=.. unit=.. description=".."``
per variable. A trailing ``# label="..." tags=a,b`` on a step line carries its label and tags.
Other ``#`` comments and blank lines are ignored.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastlims.procedures.model import (
    AmbientStep,
    AnyStep,
    CcStep,
    CpStep,
    CvStep,
    ExternalStep,
    Procedure,
    ProfileStep,
    PulseStep,
    RepeatStep,
    RestStep,
    Termination,
    parse_json,
)
from fastlims.procedures.problems import Problem, ProcedureError
from fastlims.procedures.vocabulary import FORMAT, SAFETY_KEYS

MAX_TEXT_BYTES = 8 * 1024 * 1024
MAX_LINES = 50_000

__all__ = ["ParsedText", "format_step", "format_text", "is_text", "load", "parse_text", "step_text"]


@dataclass(frozen=True)
class ParsedText:
    """A procedure read from text, and the 1-based line of each step (by its path)."""

    procedure: Procedure
    lines: dict[str, int]


class _LineError(Exception):
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
        raise _LineError(
            f"expected {what} (a number with a unit, e.g. '4.2 V', '0.5C', '2 hours'), got {text.strip()!r}"
        )
    if match.group("crate"):
        divisor = float(match.group("div"))
        if divisor <= 0:
            raise _LineError(f"C/{match.group('div')}: the divisor must be positive")
        return _Qty("c_rate", 1.0 / divisor)
    number, unit = match.group("num"), match.group("unit")
    if not unit:
        raise _LineError(f"{number} needs a unit ({what})")
    known = _UNITS.get(unit.lower())
    if known is None:
        raise _LineError(f"unknown unit {unit!r} in {text.strip()!r}; known units: {', '.join(sorted(_UNIT_NAMES))}")
    dimension, factor = known
    if number.startswith("{"):
        if factor != 1.0:
            raise _LineError(
                f"a variable is written in the field's own unit: '{number} {_SI_UNIT[dimension]}', not {unit!r}"
            )
        return _Qty(dimension, number)
    value = float(number)
    if factor != 1.0:
        # Divide by the inverse where it is exact, so '50 mA' is exactly 0.05.
        inverse = 1.0 / factor
        value = value / inverse if inverse.is_integer() else value * factor
    if not math.isfinite(value):
        raise _LineError(f"{number} is not a finite number")
    return _Qty(dimension, value)


_UNIT_NAMES = ("s", "seconds", "min", "minutes", "h", "hours", "V", "mV", "A", "mA", "C", "C/20", "W", "kW", "Ah")


def _expect(q: _Qty, dimensions: Sequence[str], what: str) -> _Qty:
    if q.dimension not in dimensions:
        raise _LineError(f"expected {what}, got a {q.dimension.replace('_', '-')}")
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
            raise _LineError(f"'for' takes a time, got a {q.dimension.replace('_', '-')} ({clause.strip()!r})")
        result.append(_termination(q, side, natural_voltage, natural_temperature, clause.strip()))
    return result


def _termination(
    q: _Qty, side: str | None, natural_voltage: str | None, natural_temperature: str | None, clause: str
) -> Termination:
    if q.dimension == "time":
        if side:
            raise _LineError(f"a time takes no {side!r} ({clause!r})")
        return Termination(time_s=q.value)
    if q.dimension == "voltage":
        side = side or natural_voltage
        if side is None:
            raise _LineError(f"say 'above' or 'below' for a voltage condition on this step ({clause!r})")
        return Termination(voltage_above_V=q.value) if side == "above" else Termination(voltage_below_V=q.value)
    if q.dimension in ("current", "c_rate"):
        if side == "above":
            raise _LineError(f"a current condition is a taper: 'until below ...' ({clause!r})")
        if q.dimension == "current":
            return Termination(current_below_A=q.value)
        return Termination(current_below_c_rate=q.value)
    if q.dimension == "charge":
        if side:
            raise _LineError(f"a charge condition is the charge passed in the step, without {side!r} ({clause!r})")
        return Termination(charge_Ah=q.value)
    if q.dimension == "temperature":
        side = side or natural_temperature
        if side is None:
            raise _LineError(f"say 'above' or 'below' for a temperature condition ({clause!r})")
        if side == "above":
            return Termination(temperature_above_C=q.value)
        return Termination(temperature_below_C=q.value)
    raise _LineError(f"a {q.dimension} cannot end a step ({clause!r})")


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
_REPEAT_LOOSE = re.compile(r"^repeat\b", re.IGNORECASE)

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


def _leaf(text: str) -> dict[str, Any]:
    """One step line (without its annotation) -> the step's JSON."""
    lowered = text.lower()
    if lowered.startswith("pulse"):
        m = _HEAD["pulse"].match(text)
        if not m:
            raise _LineError("expected 'Pulse charge|discharge at <current> for <time>'")
        q = _expect(_quantity(m.group("q"), "a pulse current"), ("current", "c_rate"), "a current (A, mA or C-rate)")
        d = _expect(_quantity(m.group("d"), "a duration"), ("time",), "a duration")
        step: dict[str, Any] = {"type": "pulse", "direction": m.group("dir").lower()}
        step["current_A" if q.dimension == "current" else "c_rate"] = q.value
        step["duration_s"] = d.value
        return step
    if lowered.startswith(("charge", "discharge")):
        m = _HEAD["cc"].match(text)
        if not m:
            raise _LineError("expected 'Charge|Discharge at <current or power> [until <condition>]'")
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
            raise _LineError("expected 'Hold at <voltage> [limited to <current>] [until <condition>]'")
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
            raise _LineError("expected 'Rest for <time>' or 'Rest until <condition>'")
        return {"type": "rest", "until": _conditions(rest, None, None)}
    if lowered.startswith("set"):
        m = _HEAD["ambient"].match(text)
        if not m:
            raise _LineError("expected 'Set ambient to <temperature> [and rest for <time>]'")
        q = _expect(_quantity(m.group("q"), "a temperature"), ("temperature",), "a temperature (degC)")
        rest = m.group("rest") or ""
        if m.group("rest") is not None and not rest.strip():
            raise _LineError("'and rest' needs 'for <time>' or 'until <condition>'")
        return {"type": "ambient", "temperature_C": q.value, "until": _conditions(rest, None, None)}
    if lowered.startswith("follow"):
        m = _HEAD["profile"].match(text)
        if not m:
            raise _LineError("expected 'Follow current|power|voltage profile [(linear)] [until ...]: t v; t v; ...'")
        step = {"type": "profile", "quantity": m.group("quantity").lower()}
        if m.group("interp"):
            step["interpolation"] = m.group("interp").lower()
        if m.group("source"):
            if m.group("points") is not None:
                raise _LineError("a profile from custom_profile lists no points")
            step["source"] = "custom_profile"
        elif m.group("points") is None:
            raise _LineError("a profile needs 'from custom_profile' or ': t v; t v; ...' points")
        else:
            step["points"] = _points(m.group("points"))
        step["until"] = _conditions(m.group("rest"), None, None)
        return step
    if lowered.startswith("external"):
        m = _HEAD["external"].match(text)
        if not m:
            raise _LineError("expected 'External <action> for <time> [\"description\"]'")
        d = _expect(_quantity(m.group("d"), "a duration"), ("time",), "a duration")
        step = {"type": "external", "action": m.group("action").lower(), "duration_s": d.value}
        if m.group("desc"):
            try:
                step["description"] = json.loads(m.group("desc"))
            except json.JSONDecodeError:
                raise _LineError('the description is a double-quoted string (\\" for a quote)') from None
        return step
    raise _LineError(f"unknown step {text.split()[0]!r}; a step starts with one of: {'; '.join(_STARTS)}")


def _points(text: str) -> list[list[float]]:
    points: list[list[float]] = []
    for index, pair in enumerate(p for p in text.split(";") if p.strip()):
        parts = pair.replace(",", " ").split()
        if len(parts) != 2:
            raise _LineError(f"profile point {index + 1}: expected 'time value', got {pair.strip()!r}")
        try:
            t, v = float(parts[0]), float(parts[1])
        except ValueError:
            raise _LineError(f"profile point {index + 1}: expected two numbers, got {pair.strip()!r}") from None
        if not (math.isfinite(t) and math.isfinite(v)):
            raise _LineError(f"profile point {index + 1}: numbers must be finite")
        points.append([t, v])
    if not points:
        raise _LineError("a profile needs at least one 'time value' point")
    return points


# --------------------------------------------------------------------------- headers and annotations

_HEADER = re.compile(r"^#\s*(?P<key>[a-z_]+)\s*:\s*(?P<value>.*)$")
_HEADER_KEYS = ("format", "name", "description", "standard", "abuse", "safety", "sampling", "variable")


def _pairs(text: str, allowed: Iterable[str], what: str) -> dict[str, str]:
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError as exc:
        raise _LineError(f"{what}: {exc}") from None
    allowed = tuple(allowed)
    pairs: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep:
            raise _LineError(f"{what}: expected key=value, got {token!r}")
        if key not in allowed:
            raise _LineError(f"{what}: unknown key {key!r}; expected one of {', '.join(allowed)}")
        pairs[key] = value
    return pairs


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _LineError(f"{what}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise _LineError(f"{what}: expected a finite number, got {text!r}")
    return value


def _header(key: str, value: str, document: dict[str, Any]) -> None:
    value = value.strip()
    if key in ("format", "name", "description", "standard"):
        document[key] = json.loads(value) if value.startswith('"') else value
    elif key == "abuse":
        if value.lower() not in ("true", "false"):
            raise _LineError(f"abuse: expected true or false, got {value!r}")
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
            raise _LineError("variable: expected 'variable: NAME value=.. [min=..] [max=..] [unit=..]'")
        pairs = _pairs(rest, ("value", "min", "max", "unit", "description"), f"variable {name}")
        if "value" not in pairs:
            raise _LineError(f"variable {name}: value= is required")
        variable: dict[str, Any] = {}
        for field in ("value", "min", "max"):
            if field in pairs:
                variable[field] = _number(pairs[field], f"variable {name} {field}")
        for field in ("unit", "description"):
            if field in pairs:
                variable[field] = pairs[field]
        variables = document.setdefault("variables", {})
        if name in variables:
            raise _LineError(f"variable {name} is declared twice")
        variables[name] = variable


def _split_annotation(line: str) -> tuple[str, str]:
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


def _annotation(text: str, step: dict[str, Any]) -> None:
    if not re.match(r"^(label|tags)=", text):
        return  # an ordinary trailing comment
    pairs = _pairs(text, ("label", "tags"), "step annotation")
    if "label" in pairs:
        step["label"] = pairs["label"]
    if "tags" in pairs:
        step["tags"] = [tag for tag in pairs["tags"].split(",") if tag]


# --------------------------------------------------------------------------- parse


def parse_text(text: str) -> ParsedText:
    """Parse the text form; raise :class:`ProcedureError` naming every line that does not parse,
    and every schema problem with its step path and line."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise ProcedureError([Problem(message=f"the text is larger than {MAX_TEXT_BYTES} bytes")])
    # Only a newline ends a line (str.splitlines would also split on \x1e, \u2028, ...).
    raw_lines = [line.removesuffix("\r") for line in text.split("\n")]
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    if len(raw_lines) > MAX_LINES:
        raise ProcedureError([Problem(message=f"the text has more than {MAX_LINES} lines")])
    document: dict[str, Any] = {}
    problems: list[Problem] = []
    lines: dict[str, int] = {}
    # (indent, list of steps, path prefix); the root block has indent -1 until its first step.
    stack: list[tuple[int, list[dict[str, Any]], str]] = [(-1, [], "steps")]
    root = stack[0][1]
    pending_repeat: tuple[int, int, dict[str, Any]] | None = None  # (line, indent, step)
    seen_step = False
    for number, raw in enumerate(raw_lines, start=1):
        line = raw.expandtabs(4).rstrip()
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            header = _HEADER.match(stripped)
            if header and not seen_step and header.group("key") in _HEADER_KEYS:
                try:
                    _header(header.group("key"), header.group("value"), document)
                except (_LineError, json.JSONDecodeError) as exc:
                    problems.append(Problem(message=str(exc), line=number))
            continue
        seen_step = True
        indent = len(line) - len(line.lstrip(" "))
        body, note = _split_annotation(stripped)
        if pending_repeat is not None:
            repeat_line, repeat_indent, repeat = pending_repeat
            pending_repeat = None
            if indent > repeat_indent:
                stack.append((indent, repeat["steps"], stack[-1][2] + f"[{len(stack[-1][1]) - 1}].steps"))
            else:
                problems.append(Problem(message="'Repeat N times:' needs an indented block of steps", line=repeat_line))
        while len(stack) > 1 and indent < stack[-1][0]:
            stack.pop()
        block_indent, block, prefix = stack[-1]
        if block_indent == -1:
            stack[-1] = (indent, block, prefix)
        elif indent != block_indent:
            problems.append(
                Problem(
                    message=f"indentation {indent} does not match its block (expected {block_indent} spaces)",
                    line=number,
                )
            )
            continue
        path = f"{prefix}[{len(block)}]"
        is_repeat = bool(_REPEAT_LOOSE.match(body))
        try:
            step = _repeat(body) if is_repeat else _leaf(body)
            if note:
                _annotation(note, step)
        except _LineError as exc:
            problems.append(Problem(message=exc.message, line=number))
            # A placeholder keeps the later paths (and a repeat's block) right.
            step = {"type": "repeat", "count": 1, "steps": []} if is_repeat else {"type": "rest"}
        if is_repeat:
            pending_repeat = (number, indent, step)
        block.append(step)
        lines[path] = number
    if pending_repeat is not None:
        problems.append(Problem(message="'Repeat N times:' needs an indented block of steps", line=pending_repeat[0]))
    if not root and not problems:
        problems.append(Problem(message="the procedure has no step"))
    if problems:
        raise ProcedureError(problems)
    document["steps"] = root
    return ParsedText(procedure=parse_json(document, lines), lines=lines)


def _repeat(text: str) -> dict[str, Any]:
    m = _REPEAT.match(text)
    if not m:
        raise _LineError("expected 'Repeat N times:' (a whole count of at least 1, or {variable}, then a colon)")
    count_text = m.group("n")
    count: int | str
    if re.fullmatch(_VAR, count_text):
        count = count_text
    else:
        try:
            count = int(count_text)
        except ValueError:
            raise _LineError(f"expected a whole repeat count, got {count_text!r}") from None
        if count < 1:
            raise _LineError(f"a repeat count is at least 1, got {count}")
    step: dict[str, Any] = {"type": "repeat", "count": count, "steps": []}
    if m.group("cycle"):
        step["cycle"] = m.group("cycle").lower() == "counting cycles"
    return step


# --------------------------------------------------------------------------- format


def _num(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _duration(value: float | str) -> str:
    if isinstance(value, str):
        return f"{value} s"
    if value >= 3600 and value % 3600 == 0:
        hours = int(value // 3600)
        return f"{hours} hour" if hours == 1 else f"{hours} hours"
    if value >= 60 and value % 60 == 0:
        minutes = int(value // 60)
        return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
    return f"{_num(value)} s"


def _c_rate(value: float | str) -> str:
    if isinstance(value, str):
        return f"{value}C"
    if 0 < value < 1:
        divisor = round(1.0 / value)
        if divisor >= 3 and 1.0 / divisor == value:
            return f"C/{divisor}"
    return f"{_num(value)}C"


def _current(amps: float | str | None, c_rate: float | str | None) -> str:
    return f"{_num(amps)} A" if amps is not None else _c_rate(c_rate if c_rate is not None else 0.0)


def _condition(t: Termination, natural_voltage: str | None, natural_temperature: str | None) -> str:
    key, value = t.key, t.value
    if key == "time_s":
        return f"for {_duration(value)}"
    if key in ("voltage_above_V", "voltage_below_V"):
        side = "above" if key == "voltage_above_V" else "below"
        return f"until {_num(value)} V" if side == natural_voltage else f"until {side} {_num(value)} V"
    if key == "current_below_A":
        return f"until {_num(value)} A"
    if key == "current_below_c_rate":
        return f"until {_c_rate(value)}"
    if key == "charge_Ah":
        return f"until {_num(value)} Ah"
    side = "above" if key == "temperature_above_C" else "below"
    return f"until {_num(value)} degC" if side == natural_temperature else f"until {side} {_num(value)} degC"


def _conditions_text(until: Sequence[Termination], natural_voltage: str | None, natural_temperature: str | None) -> str:
    if not until:
        return ""
    return " " + " or ".join(_condition(t, natural_voltage, natural_temperature) for t in until)


def step_text(step: AnyStep) -> str:
    """The one-line text of a step (a repeat's head line, without its block)."""
    if isinstance(step, RestStep):
        return "Rest" + _conditions_text(step.until, None, None)
    if isinstance(step, CcStep):
        natural = "above" if step.direction == "charge" else "below"
        return f"{step.direction.capitalize()} at {_current(step.current_A, step.c_rate)}" + _conditions_text(
            step.until, natural, "above"
        )
    if isinstance(step, CpStep):
        natural = "above" if step.direction == "charge" else "below"
        return f"{step.direction.capitalize()} at {_num(step.power_W)} W" + _conditions_text(
            step.until, natural, "above"
        )
    if isinstance(step, CvStep):
        text = f"Hold at {_num(step.voltage_V)} V"
        if step.current_limit_A is not None or step.current_limit_c_rate is not None:
            text += f" limited to {_current(step.current_limit_A, step.current_limit_c_rate)}"
        return text + _conditions_text(step.until, None, None)
    if isinstance(step, PulseStep):
        return f"Pulse {step.direction} at {_current(step.current_A, step.c_rate)} for {_duration(step.duration_s)}"
    if isinstance(step, AmbientStep):
        text = f"Set ambient to {_num(step.temperature_C)} degC"
        return text + (" and rest" + _conditions_text(step.until, None, None) if step.until else "")
    if isinstance(step, ProfileStep):
        text = f"Follow {step.quantity} profile"
        if step.interpolation != "previous":
            text += f" ({step.interpolation})"
        if step.source is not None:
            text += " from custom_profile"
        text += _conditions_text(step.until, None, None)
        if step.points is not None:
            text += ": " + "; ".join(f"{_num(t)} {_num(v)}" for t, v in step.points)
        return text
    if isinstance(step, ExternalStep):
        text = f"External {step.action} for {_duration(step.duration_s)}"
        return text + (f" {json.dumps(step.description, ensure_ascii=False)}" if step.description else "")
    assert isinstance(step, RepeatStep)
    count = step.count if isinstance(step.count, str) else str(step.count)
    suffix = "" if step.cycle is None else (" counting cycles" if step.cycle else " not counting cycles")
    return f"Repeat {count} time{'s' if count != '1' else ''}{suffix}:"


def format_step(step: AnyStep) -> str:
    """A step's line with its ``# label=.. tags=..`` annotation, when it has one."""
    text = step_text(step)
    notes = []
    if step.label is not None:
        notes.append("label=" + shlex.quote(step.label))
    if step.tags:
        notes.append("tags=" + ",".join(step.tags))
    return text + ("  # " + " ".join(notes) if notes else "")


def format_text(procedure: Procedure, *, indent: int = 4) -> str:
    """The text form: header lines for what is not the default, then one line per step."""
    out: list[str] = []
    if procedure.format != FORMAT:
        out.append(f"# format: {procedure.format}")
    out.append(f"# name: {_header_text(procedure.name)}")
    if procedure.description:
        out.append(f"# description: {_header_text(procedure.description)}")
    if procedure.standard is not None:
        out.append(f"# standard: {_header_text(procedure.standard)}")
    if procedure.abuse:
        out.append("# abuse: true")
    for name, variable in procedure.variables.items():
        parts = [f"value={_num(variable.value)}"]
        if variable.min is not None:
            parts.append(f"min={_num(variable.min)}")
        if variable.max is not None:
            parts.append(f"max={_num(variable.max)}")
        if variable.unit:
            parts.append("unit=" + shlex.quote(variable.unit))
        if variable.description:
            parts.append("description=" + shlex.quote(variable.description))
        out.append(f"# variable: {name} " + " ".join(parts))
    safety = procedure.safety.model_dump(exclude_none=True)
    if safety:
        out.append("# safety: " + " ".join(f"{k}={_num(v)}" for k, v in safety.items()))
    sampling = procedure.sampling.model_dump(exclude_defaults=True, exclude_none=True)
    if sampling:
        out.append("# sampling: " + " ".join(f"{k}={_num(v)}" for k, v in sampling.items()))

    def block(steps: Sequence[AnyStep], depth: int) -> None:
        for step in steps:
            out.append(" " * (indent * depth) + format_step(step))
            if isinstance(step, RepeatStep):
                block(step.steps, depth + 1)

    block(procedure.steps, 0)
    return "\n".join(out) + "\n"


def _header_text(text: str) -> str:
    """Header values are the rest of the line; quote (JSON) when the text would not survive."""
    if text != text.strip() or any(ord(c) < 32 or ord(c) == 127 for c in text) or text.startswith('"') or not text:
        return json.dumps(text, ensure_ascii=False)
    return text


def is_text(value: object) -> bool:
    """Whether a request's ``test_procedures`` value is the text form (a string or list of lines)."""
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def load(value: object) -> ParsedText:
    """A procedure from a request: JSON (an object) or the text form (a string or a list of
    lines). Raises :class:`ProcedureError` naming every problem."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if len(value) > MAX_LINES:
            raise ProcedureError([Problem(message=f"the text has more than {MAX_LINES} lines")])
        return parse_text("\n".join(value))
    if isinstance(value, str):
        return parse_text(value)
    return ParsedText(procedure=parse_json(value), lines={})

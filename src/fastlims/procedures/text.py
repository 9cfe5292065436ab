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
from dataclasses import dataclass
from typing import Any

from fastlims.procedures.model import Procedure, parse_json
from fastlims.procedures.problems import Problem, ProcedureError
from fastlims.procedures.text_format import format_step, format_text, step_text
from fastlims.procedures.text_lines import (
    HEADER,
    HEADER_KEYS,
    REPEAT_START,
    LineError,
    annotation,
    header_line,
    repeat_head,
    split_annotation,
    step_line,
)

MAX_TEXT_BYTES = 8 * 1024 * 1024
MAX_LINES = 50_000

# format_step, format_text and step_text live in .text_format and are re-exported here.
__all__ = ["ParsedText", "format_step", "format_text", "is_text", "load", "parse_text", "step_text"]


@dataclass(frozen=True)
class ParsedText:
    """A procedure read from text, and the 1-based line of each step (by its path)."""

    procedure: Procedure
    lines: dict[str, int]


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
            header = HEADER.match(stripped)
            if header and not seen_step and header.group("key") in HEADER_KEYS:
                try:
                    header_line(header.group("key"), header.group("value"), document)
                except (LineError, json.JSONDecodeError) as exc:
                    problems.append(Problem(message=str(exc), line=number))
            continue
        seen_step = True
        indent = len(line) - len(line.lstrip(" "))
        body, note = split_annotation(stripped)
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
        is_repeat = bool(REPEAT_START.match(body))
        try:
            step = repeat_head(body) if is_repeat else step_line(body)
            if note:
                annotation(note, step)
        except LineError as exc:
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


# --------------------------------------------------------------------------- reading a request's procedure


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

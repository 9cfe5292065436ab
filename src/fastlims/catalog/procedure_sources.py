"""Reading a procedure as people write it (text lines, a text file, a JSON object or file) so that
one answer names every problem: when parts do not parse, the rest is still checked.

:func:`fastlims.procedures.text.load` stops at the first phase that fails: a line that does not
parse hides the over-current two lines below it. :func:`read` replaces each part that did not
parse with a harmless one that keeps every other step's path and line (a text line by a comment,
a 1 s rest or a repeat of one; a JSON step by a 1 s rest) and returns that ``rest`` to resolve,
with what to skip. A procedure with placeholders is only ever checked, never run.

Pure (no I/O); used by the request's submit check and by ``fastlims procedures check``. Here and
not in the procedures core, which another part of the work owns.
"""

from __future__ import annotations

import bisect
import json
import json.scanner
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastlims.procedures.model import Problem, Procedure, ProcedureError, Safety, parse_json
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.resolve import validate
from fastlims.procedures.text import MAX_LINES, parse_text

__all__ = ["Reading", "json_with_lines", "read", "read_file", "validate_all"]

_PLACEHOLDER_STEP = {"type": "rest", "until": [{"time_s": 1}]}


@dataclass(frozen=True)
class Reading:
    """A procedure as read: ``procedure`` when it parsed, else ``problems`` and, when the rest of
    it parses once the bad parts are replaced, ``rest`` to check (``skip`` says which problems
    belong to the placeholders). ``lines`` maps step paths to lines (text, or a JSON file)."""

    procedure: Procedure | None
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    rest: Procedure | None = None
    placeholder_lines: frozenset[int] = frozenset()
    placeholder_paths: frozenset[str] = frozenset()
    text: tuple[str, ...] | None = None  # the text form's lines, to quote a line that did not parse

    @property
    def to_check(self) -> Procedure | None:
        """What to resolve for more problems: the procedure, or the rest of it."""
        return self.procedure if self.procedure is not None else self.rest

    def skip(self, problem: Problem) -> bool:
        """Whether a problem of :attr:`to_check` is a placeholder's."""
        return problem.line in self.placeholder_lines or problem.path in self.placeholder_paths

    def describe(self, problem: Problem) -> str:
        """The problem as a person reads it; a text line that did not parse is quoted."""
        text = self.text
        if problem.step is None and problem.line is not None and text is not None and problem.line <= len(text):
            quoted = text[problem.line - 1].strip()[:200]
            return f"{problem.path + ', ' if problem.path else ''}line {problem.line} ({quoted!r}): {problem.message}"
        return str(problem)


def validate_all(
    procedure: Procedure,
    ratings: UutRatings,
    *,
    lines: Mapping[str, int] | None = None,
    custom_profile: Sequence[tuple[float, float]] | None = None,
) -> list[Problem]:
    """Every problem of ``procedure`` on this UUT. Resolution stops before the steps when the
    safety limits are wrong; the steps are then checked once more under the UUT's own limits, so
    a looser limit does not hide a step's over-current."""
    problems = validate(procedure, ratings, lines=lines, custom_profile=custom_profile)
    if any(p.path is None and p.message.startswith("safety ") for p in problems):
        own_limits = procedure.model_copy(update={"safety": Safety(delay_s=procedure.safety.delay_s)})
        problems += [
            p
            for p in validate(own_limits, ratings, lines=lines, custom_profile=custom_profile)
            if p.path is not None and p not in problems
        ]
    return problems


def read(value: object) -> Reading:
    """A procedure from text (a string or a list of lines) or a JSON-shaped object."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if len(value) > MAX_LINES:
            return Reading(None, problems=[Problem(message=f"the text has more than {MAX_LINES} lines")])
        return _read_text("\n".join(value))
    if isinstance(value, str):
        return _read_text(value)
    return _read_json(value, {})


def read_file(text: str, *, json_form: bool) -> Reading:
    """A procedure file's content: JSON (steps get the line their object starts on) or the text form."""
    if not json_form:
        return _read_text(text)
    try:
        data, lines = json_with_lines(text)
    except json.JSONDecodeError as exc:
        return Reading(None, problems=[Problem(message=f"not valid JSON: {exc.msg}", line=exc.lineno)])
    except RecursionError:
        return Reading(None, problems=[Problem(message="the JSON is nested too deeply")])
    return _read_json(data, lines)


def _read_text(text: str) -> Reading:
    lines = tuple(text.split("\n"))
    try:
        parsed = parse_text(text)
    except ProcedureError as exc:
        rest, bad = _patched_text(list(lines), exc.problems)
        return Reading(
            None,
            problems=exc.problems,
            rest=rest.procedure if rest else None,
            lines=dict(rest.lines) if rest else {},
            placeholder_lines=bad,
            text=lines,
        )
    return Reading(parsed.procedure, dict(parsed.lines), text=lines)


def _patched_text(text: list[str], found: Sequence[Problem]) -> tuple[Any, frozenset[int]]:
    bad = frozenset(p.line for p in found if p.line is not None)
    if not bad or len(bad) < len({p.line for p in found}) or any(p.line is None for p in found) or max(bad) > len(text):
        return None, bad
    for number in bad:
        line = text[number - 1]
        indent = line[: len(line) - len(line.lstrip())]
        body = line.strip()
        text[number - 1] = indent + (
            "#" if body.startswith("#") else "Repeat 1 time:" if body.lower().startswith("repeat") else "Rest for 1 s"
        )
    try:
        return parse_text("\n".join(text)), bad
    except ProcedureError:
        return None, bad


def _read_json(data: object, lines: dict[str, int]) -> Reading:
    try:
        return Reading(parse_json(data, lines), lines)
    except ProcedureError as exc:
        rest, paths = _patched_json(data, exc.problems, lines)
        return Reading(None, lines, exc.problems, rest=rest, placeholder_paths=paths)


def _patched_json(
    data: object, found: Sequence[Problem], lines: Mapping[str, int]
) -> tuple[Procedure | None, frozenset[str]]:
    paths = frozenset(p.path for p in found if p.path)
    if not paths or any(p.path is None for p in found) or not isinstance(data, Mapping):
        return None, paths
    document = json.loads(json.dumps(data))
    for path in paths:
        holder: Any = document
        indices = [int(part.split("]")[0]) for part in path.split("[")[1:]]
        try:
            for index in indices[:-1]:
                holder = holder["steps"][index]
            holder["steps"][indices[-1]] = dict(_PLACEHOLDER_STEP)
        except (KeyError, IndexError, TypeError, ValueError):
            return None, paths
    try:
        return parse_json(document, lines), paths
    except ProcedureError:
        return None, paths


def json_with_lines(text: str) -> tuple[Any, dict[str, int]]:
    """Parse a JSON procedure and find the line each step starts on (by its path, ``steps[2].steps[0]``)."""
    newlines = [index for index, char in enumerate(text) if char == "\n"]
    starts: dict[int, int] = {}
    decoder: Any = json.JSONDecoder()  # typeshed lists neither parse_object nor scan_once
    parse_object = decoder.parse_object

    def remember(s_and_end: tuple[str, int], *args: Any) -> tuple[Any, int]:
        found, end = parse_object(s_and_end, *args)
        starts[id(found)] = bisect.bisect_left(newlines, s_and_end[1] - 1) + 1  # the line of its '{'
        return found, end

    decoder.parse_object = remember
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]  # calls parse_object
    data = decoder.decode(text)
    lines: dict[str, int] = {}
    stack: list[tuple[Any, str]] = [(data.get("steps"), "steps")] if isinstance(data, dict) else []
    while stack:
        steps, prefix = stack.pop()
        if not isinstance(steps, list):
            continue
        for index, step in enumerate(steps):
            path = f"{prefix}[{index}]"
            if id(step) in starts and isinstance(step, dict):
                lines[path] = starts[id(step)]
                stack.append((step.get("steps"), f"{path}.steps"))
    return data, lines

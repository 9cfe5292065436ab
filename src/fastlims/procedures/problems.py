"""What is wrong with a procedure, said so a person can fix it: :class:`Problem` (where: step path
and/or text line; what), :class:`ProcedureError` carrying every problem found, and
:func:`schema_problems`, which turns pydantic's errors into problems that name the step path and
field (one message for a number-or-variable field, not one per union member).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from fastlims.procedures.vocabulary import STEP_TYPES


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a procedure: where (step path and/or text line) and what."""

    message: str
    path: str | None = None  # e.g. "steps[3].steps[1]"
    line: int | None = None  # 1-based line of the text form
    step: str | None = None  # the step's text, e.g. "Discharge at 3C until 2.5 V"

    @property
    def where(self) -> str:
        """``steps[3].steps[1] (Discharge at 3C until 2.5 V), line 7`` or the parts that are known."""
        parts: list[str] = []
        if self.path:
            parts.append(f"{self.path} ({self.step})" if self.step else self.path)
        if self.line is not None:
            parts.append(f"line {self.line}")
        return ", ".join(parts) or "procedure"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"where": self.where, "path": self.path, "line": self.line, "step": self.step, "message": self.message}


class ProcedureError(ValueError):
    """A procedure that cannot run; ``problems`` lists every problem found, not only the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the procedure"
        super().__init__(head + ":\n" + "\n".join(f"- {p}" for p in self.problems))


def schema_problems(exc: ValidationError, lines: Mapping[str, int] | None = None) -> list[Problem]:
    """Pydantic's errors as :class:`Problem` s naming the step path (and line, when known).

    A number-or-variable field reports one message, not one per union member.
    """
    problems: list[Problem] = []
    seen: set[tuple[str | None, str]] = set()
    for error in exc.errors(include_url=False):
        path, field = _split_loc(error["loc"])
        if (path, field) in seen and _union_member(error["loc"]):
            continue  # the other member of a number-or-variable union: one message is enough
        seen.add((path, field))
        line = lines.get(path) if lines and path else None
        problems.append(Problem(message=_message(error, field), path=path, line=line))
    return problems


_UNION_MEMBERS = {"float", "constrained-str", "str", "int", "none", "tuple[float, float]", "list[...]"}


def _union_member(loc: tuple[int | str, ...]) -> bool:
    return bool(loc) and isinstance(loc[-1], str) and _is_member(loc[-1])


def _is_member(item: int | str) -> bool:
    """Whether a loc item names a union member (pydantic's ``float``, ``constrained-str``, ...)."""
    return isinstance(item, str) and (
        item in _UNION_MEMBERS or "[" in item or item.startswith(("constrained-", "function-"))
    )


def _split_loc(loc: tuple[int | str, ...]) -> tuple[str | None, str]:
    """``('steps', 3, 'repeat', 'steps', 1, 'cc', 'current_A', 'float')`` ->
    ``('steps[3].steps[1]', 'current_A')``."""
    path = ""
    rest: list[str] = []
    index = 0
    items = list(loc)
    while index < len(items):
        item = items[index]
        if item == "steps" and index + 1 < len(items) and isinstance(items[index + 1], int) and not rest:
            path += (".steps" if path else "steps") + f"[{items[index + 1]}]"
            index += 2
            if index < len(items) and items[index] in STEP_TYPES:
                index += 1  # the discriminator's tag
            continue
        if _is_member(item):
            index += 1
            continue
        rest.append(f"[{item}]" if isinstance(item, int) else str(item))
        index += 1
    field = ".".join(rest).replace(".[", "[")
    return (path or None), field


def _message(error: Any, field: str) -> str:
    kind = error["type"]
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", "?")
        return f"unknown step type {tag!r}; expected one of {', '.join(STEP_TYPES)}"
    if kind == "union_tag_not_found":
        return f"a step needs a 'type', one of {', '.join(STEP_TYPES)}"
    if kind == "extra_forbidden":
        return f"unknown field {field!r}"
    if kind == "missing":
        return f"{field} is required"
    if kind in ("string_pattern_mismatch", "float_type", "float_parsing", "int_type", "int_parsing") and isinstance(
        error.get("input"), str
    ):
        return f'{field}: expected a number or a variable reference like "{{name}}", got {error.get("input")!r}'
    return f"{field}: {msg}" if field else msg

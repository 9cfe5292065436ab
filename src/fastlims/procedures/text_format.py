"""A procedure written back in the text form (:mod:`.text`): header lines for what is not the
default, then one line per step, each with its ``# label=.. tags=..`` annotation; numbers in the
units a person would write (``2 hours``, ``C/3``). :func:`fastlims.procedures.text.parse_text`
reads the result back to the same procedure.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence

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
)
from fastlims.procedures.vocabulary import FORMAT

__all__ = ["format_step", "format_text", "step_text"]


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

"""Resolve a procedure against one UUT's ratings, and name every problem on the way.

:func:`resolve` substitutes variables (a DoE run's values, else each variable's ``value``; see
:mod:`.variables`), turns C-rates into amperes (x NominalCapacityAh), signs currents and powers by
the Battery Data Format convention (positive = charge), fills the safety limits from the ratings
and checks each step against them. :func:`validate` runs the same checks and returns every :class:`Problem` (step path,
text line, message) instead of raising.

Safety limits left out come from the ratings: voltages from the rated window widened by
:data:`VOLTAGE_MARGIN_PER_CELL_V` per cell in series (a CV hold at MaxVoltageV regulates to a
fraction of a millivolt, not exactly, and a cut-off at MinVoltageV is seen one sample late: a
cycler's limits sit just outside its operating window), temperatures from the rated window,
currents from MaxPulseCurrentA (a pulse at the pulse rating must not trip the run; each step's
continuous current is checked against MaxCharge/MaxDischargeCurrentA here, before the run), and
``delay_s`` 1 s. A procedure may only tighten them. An ``abuse`` procedure (overcharge, forced
discharge, short circuit, thermal abuse) may loosen them, and its steps tagged ``abuse`` are
exempt from the rating checks; its other steps are still checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
    check_points,
)
from fastlims.procedures.problems import Problem, ProcedureError
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.resolved import (
    AnyResolved,
    ResolvedAmbient,
    ResolvedCc,
    ResolvedCp,
    ResolvedCv,
    ResolvedExternal,
    ResolvedProcedure,
    ResolvedProfile,
    ResolvedPulse,
    ResolvedRepeat,
    ResolvedRest,
    ResolvedSafety,
    ResolvedTermination,
)
from fastlims.procedures.text_format import step_text
from fastlims.procedures.variables import substitute

__all__ = ["ABUSE_TAG", "DEFAULT_DELAY_S", "resolve", "validate"]

ABUSE_TAG = "abuse"
VOLTAGE_MARGIN_PER_CELL_V = 0.02  # default voltage limits: the rated window widened by this per cell
DEFAULT_DELAY_S = 1.0
# Terminations that the physics guarantees will end a step, by step kind and direction.
_GUARANTEED = {
    ("cc", "charge"): {"time_s", "charge_Ah", "voltage_above_V"},
    ("cc", "discharge"): {"time_s", "charge_Ah", "voltage_below_V"},
    ("cp", "charge"): {"time_s", "charge_Ah", "voltage_above_V"},
    ("cp", "discharge"): {"time_s", "charge_Ah", "voltage_below_V"},
    ("cv", None): {"time_s", "charge_Ah", "current_below_A"},
}
# Terminations that cannot end a step (or end it at once), with the reason.
_IMPOSSIBLE = {
    ("cc", "charge"): {
        "voltage_below_V": "a charge raises the voltage: 'until below' a voltage cannot end it",
        "current_below_A": "a constant current does not fall: a taper cannot end it",
    },
    ("cc", "discharge"): {
        "voltage_above_V": "a discharge lowers the voltage: 'until above' a voltage cannot end it",
        "current_below_A": "a constant current does not fall: a taper cannot end it",
    },
    ("cp", "charge"): {"voltage_below_V": "a charge raises the voltage: 'until below' a voltage cannot end it"},
    ("cp", "discharge"): {"voltage_above_V": "a discharge lowers the voltage: 'until above' a voltage cannot end it"},
    ("cv", None): {
        "voltage_above_V": "a voltage hold keeps the voltage: a voltage condition cannot end it",
        "voltage_below_V": "a voltage hold keeps the voltage: a voltage condition cannot end it",
    },
    ("rest", None): {
        "current_below_A": "at rest the current is zero: a current condition would end it at once",
        "charge_Ah": "at rest no charge passes: a charge condition cannot end it",
    },
    ("ambient", None): {
        "current_below_A": "at rest the current is zero: a current condition would end it at once",
        "charge_Ah": "at rest no charge passes: a charge condition cannot end it",
    },
}


def resolve(
    procedure: Procedure,
    ratings: UutRatings,
    values: Mapping[str, float] | None = None,
    *,
    lines: Mapping[str, int] | None = None,
    custom_profile: Sequence[tuple[float, float]] | None = None,
) -> ResolvedProcedure:
    """The procedure ready to run on this UUT; raises :class:`ProcedureError` with every problem.

    ``values``: a DoE run's variable values; ``lines``: step path -> text line (from
    :func:`fastlims.procedures.text.parse_text`) so problems name lines; ``custom_profile``: the
    request's ``[t_s, value]`` table for profile steps with ``source: custom_profile``.
    """
    resolved, problems = _run(procedure, ratings, values, lines, custom_profile)
    if problems or resolved is None:
        raise ProcedureError(problems)
    return resolved


def validate(
    procedure: Procedure,
    ratings: UutRatings,
    values: Mapping[str, float] | None = None,
    *,
    lines: Mapping[str, int] | None = None,
    custom_profile: Sequence[tuple[float, float]] | None = None,
) -> list[Problem]:
    """Every problem :func:`resolve` would raise (an empty list: the procedure resolves)."""
    return _run(procedure, ratings, values, lines, custom_profile)[1]


# --------------------------------------------------------------------------- the walk


@dataclass
class _Context:
    procedure: Procedure
    ratings: UutRatings
    safety: ResolvedSafety
    lines: Mapping[str, int]
    custom_profile: Sequence[tuple[float, float]] | None
    problems: list[Problem]
    next_id: int = 0

    def problem(self, path: str, step: AnyStep, message: str) -> None:
        self.problems.append(Problem(message=message, path=path, line=self.lines.get(path), step=step_text(step)))


def _run(
    procedure: Procedure,
    ratings: UutRatings,
    values: Mapping[str, float] | None,
    lines: Mapping[str, int] | None,
    custom_profile: Sequence[tuple[float, float]] | None,
) -> tuple[ResolvedProcedure | None, list[Problem]]:
    problems: list[Problem] = []
    concrete, chosen = substitute(procedure, values, lines, problems)
    safety = _safety(procedure, ratings, problems)
    if concrete is None or safety is None:
        return None, problems
    context = _Context(concrete, ratings, safety, dict(lines or {}), custom_profile, problems)
    steps = tuple(_steps(concrete.steps, "steps", context, depth=0))
    if problems:
        return None, problems
    resolved = ResolvedProcedure(
        name=concrete.name,
        description=concrete.description,
        standard=concrete.standard,
        abuse=concrete.abuse,
        uut=ratings.code,
        values=chosen,
        steps=steps,
        safety=safety,
        sampling=concrete.sampling,
    )
    return resolved, problems


def _safety(procedure: Procedure, r: UutRatings, problems: list[Problem]) -> ResolvedSafety | None:
    given = procedure.safety
    margin = VOLTAGE_MARGIN_PER_CELL_V * r.series_count
    rated = {
        "max_voltage_V": r.max_voltage_V + margin,
        "min_voltage_V": r.min_voltage_V - margin,
        "max_charge_current_A": r.max_pulse_current_A,
        "max_discharge_current_A": r.max_pulse_current_A,
        "max_temperature_C": r.max_temperature_C,
        "min_temperature_C": r.min_temperature_C,
    }
    source = {
        "max_voltage_V": f"MaxVoltageV {r.max_voltage_V:g} + {margin:g} V",
        "min_voltage_V": f"MinVoltageV {r.min_voltage_V:g} - {margin:g} V",
        "max_charge_current_A": "MaxPulseCurrentA",
        "max_discharge_current_A": "MaxPulseCurrentA",
        "max_temperature_C": "MaxTemperatureC",
        "min_temperature_C": "MinTemperatureC",
    }
    source = {key: text if " " in text else f"{text} {rated[key]:g}" for key, text in source.items()}
    filled: dict[str, float] = {}
    for key, rating in rated.items():
        value = getattr(given, key)
        if value is None:
            filled[key] = rating
            continue
        looser = value > rating if key.startswith("max") else value < rating
        if looser and not procedure.abuse:
            problems.append(
                Problem(
                    message=f"safety {key} {value:g} is looser than {rating:g} (the UUT's {source[key]}); "
                    "a procedure may only tighten the ratings (declare abuse: true for an abuse test)"
                )
            )
        filled[key] = value
    if filled["min_voltage_V"] >= filled["max_voltage_V"]:
        problems.append(Problem(message="safety min_voltage_V must be below max_voltage_V"))
    if filled["min_temperature_C"] >= filled["max_temperature_C"]:
        problems.append(Problem(message="safety min_temperature_C must be below max_temperature_C"))
    delay = given.delay_s if given.delay_s is not None else DEFAULT_DELAY_S
    if problems:
        return None
    return ResolvedSafety(delay_s=delay, **filled)


def _steps(steps: Sequence[AnyStep], prefix: str, c: _Context, depth: int) -> list[AnyResolved]:
    out: list[AnyResolved] = []
    for index, step in enumerate(steps):
        path = f"{prefix}[{index}]"
        resolved = _step(step, path, c, depth)
        if resolved is not None:
            out.append(resolved)
    return out


def _common(step: AnyStep, path: str, c: _Context) -> dict[str, Any]:
    return {
        "path": path,
        "line": c.lines.get(path),
        "label": step.label,
        "tags": tuple(step.tags),
        "text": step_text(step),
    }


def _leaf_common(step: AnyStep, path: str, c: _Context) -> dict[str, Any]:
    common = _common(step, path, c)
    common["id"] = c.next_id
    c.next_id += 1
    return common


def _step(step: AnyStep, path: str, c: _Context, depth: int) -> AnyResolved | None:
    r = c.ratings
    abuse = c.procedure.abuse and ABUSE_TAG in step.tags
    if isinstance(step, RepeatStep):
        common = _common(step, path, c)
        count = step.count
        if not isinstance(count, int) or count < 1:
            c.problem(path, step, f"a repeat needs a whole count of at least 1, got {count!r}")
            count = 1
        children = tuple(_steps(step.steps, f"{path}.steps", c, depth + 1))
        cycle = step.cycle if step.cycle is not None else depth == 0
        return ResolvedRepeat(count=count, cycle=cycle, steps=children, **common) if children else None

    kind = step.type
    direction = getattr(step, "direction", None)
    _check_terminations(step, path, c, kind, direction, abuse)
    until = _until(getattr(step, "until", []), r)
    common = _leaf_common(step, path, c)
    sign = 1.0 if direction == "charge" else -1.0
    charge_limit, discharge_limit = _limits(c, abuse)

    if isinstance(step, RestStep):
        return ResolvedRest(until=until, **common)
    if isinstance(step, CcStep | PulseStep):
        amps = _amps(step.current_A, step.c_rate, r)
        over = False
        if not abuse:
            if isinstance(step, PulseStep):
                over = _at_most(c, path, step, amps, r.max_pulse_current_A, "MaxPulseCurrentA", "pulse current")
            elif direction == "charge":
                over = _at_most(c, path, step, amps, r.max_charge_current_A, "MaxChargeCurrentA", "charge current")
            else:
                over = _at_most(
                    c, path, step, amps, r.max_discharge_current_A, "MaxDischargeCurrentA", "discharge current"
                )
        if not over:  # one message per step: the rating's, else the safety limit's
            limit = c.safety.max_charge_current_A if direction == "charge" else c.safety.max_discharge_current_A
            _at_most(c, path, step, amps, limit, f"safety max_{direction}_current_A", "current")
        if isinstance(step, PulseStep):
            return ResolvedPulse(current_A=sign * amps, duration_s=_f(step.duration_s), **common)
        return ResolvedCc(current_A=sign * amps, until=until, **common)
    if isinstance(step, CvStep):
        volts = _f(step.voltage_V)
        if not abuse:
            _within_voltage(c, path, step, volts, "hold voltage")
        _within_safety_voltage(c, path, step, volts, "hold voltage", abuse)
        if step.current_limit_A is not None or step.current_limit_c_rate is not None:
            limit = _amps(step.current_limit_A, step.current_limit_c_rate, r)
            if not abuse:  # a cap, not a demand: a short hold (cranking) may use the pulse rating
                _at_most(c, path, step, limit, r.max_pulse_current_A, "MaxPulseCurrentA", "current limit")
            charge_limit = min(limit, c.safety.max_charge_current_A)
            discharge_limit = min(limit, c.safety.max_discharge_current_A)
        return ResolvedCv(
            voltage_V=volts, charge_limit_A=charge_limit, discharge_limit_A=discharge_limit, until=until, **common
        )
    if isinstance(step, CpStep):
        watts = _f(step.power_W)
        if not abuse:
            worst = watts / r.min_voltage_V
            rating = r.max_charge_current_A if direction == "charge" else r.max_discharge_current_A
            column = "MaxChargeCurrentA" if direction == "charge" else "MaxDischargeCurrentA"
            if worst > rating:
                c.problem(
                    path,
                    step,
                    f"{watts:g} W needs up to {worst:.4g} A at MinVoltageV {r.min_voltage_V:g} V, "
                    f"above the UUT's {column} {rating:g} A",
                )
        return ResolvedCp(
            power_W=sign * watts, charge_limit_A=charge_limit, discharge_limit_A=discharge_limit, until=until, **common
        )
    if isinstance(step, ProfileStep):
        points = _profile_points(step, path, c)
        if points is None:
            return None
        if not abuse:
            _check_profile(step, points, path, c)
        return ResolvedProfile(
            quantity=step.quantity,
            points=tuple((t, v) for t, v in points),
            interpolation=step.interpolation,
            charge_limit_A=charge_limit,
            discharge_limit_A=discharge_limit,
            until=until,
            **common,
        )
    if isinstance(step, AmbientStep):
        temperature = _f(step.temperature_C)
        if not abuse and not r.min_temperature_C <= temperature <= r.max_temperature_C:
            c.problem(
                path,
                step,
                f"ambient {temperature:g} degC is outside the UUT's rated range "
                f"{r.min_temperature_C:g}..{r.max_temperature_C:g} degC (MinTemperatureC..MaxTemperatureC)",
            )
        return ResolvedAmbient(temperature_C=temperature, until=until, **common)
    assert isinstance(step, ExternalStep)
    return ResolvedExternal(action=step.action, description=step.description, duration_s=_f(step.duration_s), **common)


def _f(value: float | str | None) -> float:
    # Variables are substituted before the walk; a leftover reference is a bug, not bad input.
    assert isinstance(value, float | int), value
    return float(value)


def _amps(amps: float | str | None, c_rate: float | str | None, r: UutRatings) -> float:
    return _f(amps) if amps is not None else r.amperes(_f(c_rate))


def _limits(c: _Context, abuse: bool) -> tuple[float, float]:
    """The current a regulated step may command: the continuous ratings within the safety limits
    (an abuse step: the safety limits)."""
    if abuse:
        return c.safety.max_charge_current_A, c.safety.max_discharge_current_A
    return (
        min(c.ratings.max_charge_current_A, c.safety.max_charge_current_A),
        min(c.ratings.max_discharge_current_A, c.safety.max_discharge_current_A),
    )


def _until(until: Sequence[Termination], r: UutRatings) -> tuple[ResolvedTermination, ...]:
    out: list[ResolvedTermination] = []
    for term in until:
        key, value = term.key, _f(term.value)
        if key == "current_below_c_rate":
            out.append(ResolvedTermination(kind="current_below_A", value=r.amperes(value)))
        else:
            out.append(ResolvedTermination(kind=key, value=value))  # type: ignore[arg-type]  # one of the kinds
    return tuple(out)


def _at_most(c: _Context, path: str, step: AnyStep, amps: float, limit: float, source: str, what: str) -> bool:
    """Report a current above ``limit``; return whether it was."""
    if amps > limit * (1 + 1e-9):
        rating = "the UUT's " if not source.startswith("safety") else ""
        c.problem(path, step, f"{what} {amps:.6g} A is above {rating}{source} {limit:g} A")
        return True
    return False


def _within_voltage(c: _Context, path: str, step: AnyStep, volts: float, what: str) -> None:
    r = c.ratings
    if not r.min_voltage_V <= volts <= r.max_voltage_V:
        c.problem(
            path,
            step,
            f"{what} {volts:g} V is outside the UUT's voltage limits {r.min_voltage_V:g}..{r.max_voltage_V:g} V "
            "(MinVoltageV..MaxVoltageV)",
        )


def _within_safety_voltage(c: _Context, path: str, step: AnyStep, volts: float, what: str, abuse: bool) -> None:
    """Outside the ratings is reported once (by the rating check), except for an abuse step."""
    s = c.safety
    inside_ratings = c.ratings.min_voltage_V <= volts <= c.ratings.max_voltage_V
    if (inside_ratings or abuse) and not s.min_voltage_V <= volts <= s.max_voltage_V:
        c.problem(
            path,
            step,
            f"{what} {volts:g} V is outside the safety limits {s.min_voltage_V:g}..{s.max_voltage_V:g} V: "
            "the run would trip",
        )


def _check_terminations(step: AnyStep, path: str, c: _Context, kind: str, direction: str | None, abuse: bool) -> None:
    until: Sequence[Termination] = getattr(step, "until", [])
    if kind in ("rest", "cc", "cv", "cp") and not until:
        example = {"rest": "'for 1 hour'", "cc": "'until 2.5 V'", "cv": "'until C/20'", "cp": "'until 2.5 V'"}[kind]
        c.problem(path, step, f"this step could run forever: add a termination, e.g. {example}")
        return
    impossible = _IMPOSSIBLE.get((kind, direction), {})
    for term in until:
        key = "current_below_A" if term.key == "current_below_c_rate" else term.key
        if key in impossible:
            c.problem(path, step, f"{term.key} cannot end this step: {impossible[key]}")
    guaranteed = _GUARANTEED.get((kind, direction))
    if guaranteed is not None and until:
        keys = {"current_below_A" if t.key == "current_below_c_rate" else t.key for t in until}
        if not keys & guaranteed:
            c.problem(
                path,
                step,
                "none of its terminations is sure to end it; add one of " + ", ".join(sorted(guaranteed)),
            )
    r = c.ratings
    for term in until:
        value = _f(term.value)
        if term.key in ("voltage_above_V", "voltage_below_V") and not abuse:
            _within_voltage(c, path, step, value, f"termination {term.key}")
        if term.key in ("voltage_above_V", "voltage_below_V"):
            _within_safety_voltage(c, path, step, value, f"termination {term.key}", abuse)
        temperature = term.key in ("temperature_above_C", "temperature_below_C")
        if temperature and not abuse and not r.min_temperature_C <= value <= r.max_temperature_C:
            c.problem(
                path,
                step,
                f"termination {term.key} {value:g} degC is outside the UUT's rated range "
                f"{r.min_temperature_C:g}..{r.max_temperature_C:g} degC: the safety limit would trip first",
            )


def _profile_points(step: ProfileStep, path: str, c: _Context) -> list[tuple[float, float]] | None:
    if step.points is not None:
        return [(float(t), float(v)) for t, v in step.points]
    if c.custom_profile is None:
        c.problem(path, step, "this profile takes the request's variables.custom_profile, and none was given")
        return None
    points = [(float(t), float(v)) for t, v in c.custom_profile]
    try:
        if any(not (math.isfinite(t) and math.isfinite(v)) for t, v in points):
            raise ValueError("custom_profile values must be finite numbers")
        check_points(points)
    except ValueError as exc:
        c.problem(path, step, f"custom_profile: {exc}")
        return None
    return points


def _check_profile(step: ProfileStep, points: Sequence[tuple[float, float]], path: str, c: _Context) -> None:
    r = c.ratings
    values = [v for _, v in points]
    if step.quantity == "voltage":
        low, high = min(values), max(values)
        if low < r.min_voltage_V or high > r.max_voltage_V:
            c.problem(
                path,
                step,
                f"profile voltages {low:g}..{high:g} V leave the UUT's limits "
                f"{r.min_voltage_V:g}..{r.max_voltage_V:g} V",
            )
        return
    if step.quantity == "current":
        charge, discharge = max(max(values), 0.0), max(-min(values), 0.0)
        what = "A"
    else:
        charge, discharge = max(max(values), 0.0) / r.min_voltage_V, max(-min(values), 0.0) / r.min_voltage_V
        what = "A (power / MinVoltageV)"
    peak = max(charge, discharge)
    if peak > r.max_pulse_current_A:
        c.problem(
            path,
            step,
            f"profile peak current {peak:.6g} {what} is above the UUT's MaxPulseCurrentA {r.max_pulse_current_A:g} A",
        )

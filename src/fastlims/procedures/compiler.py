"""From a :class:`~.model.ResolvedProcedure` to the :class:`~.program.Program` the executors run.

Repeats become a ``LOOP_BEGIN``/``LOOP_END`` pair around their steps; a pulse is a constant
current for its duration; a profile gets a time termination at its last point (so it ends there
unless an earlier termination ends it); an external step runs for its duration. Current limits
of the regulating steps (CV, CP, profiles) come resolved with the step. Pure.
"""

from __future__ import annotations

import math

import numpy as np

from fastlims.procedures.program import Mode, Op, Program, Safety, Sampling, Until, check
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
    ResolvedTermination,
)

UNTIL = {
    "time_s": Until.TIME,
    "voltage_above_V": Until.VOLTAGE_ABOVE,
    "voltage_below_V": Until.VOLTAGE_BELOW,
    "current_below_A": Until.CURRENT_BELOW,
    "charge_Ah": Until.CHARGE,
    "temperature_above_C": Until.TEMPERATURE_ABOVE,
    "temperature_below_C": Until.TEMPERATURE_BELOW,
}
PROFILE_MODES = {"current": Mode.PROFILE_CURRENT, "power": Mode.PROFILE_POWER, "voltage": Mode.PROFILE_VOLTAGE}
# Before a current step has shown the UUT's resistance, the CV regulator assumes this share of
# (voltage window / largest current): large on purpose, since too large only slows the first
# samples of a hold while too small makes it oscillate.
RESISTANCE_GUESS_SHARE = 0.5


def compile_procedure(procedure: ResolvedProcedure, *, initial_ambient_C: float = math.nan) -> Program:  # noqa: N803
    """The program of ``procedure``; ``initial_ambient_C``: the ambient before any ambient step
    (the UUT model's own, for the record)."""
    safety = procedure.safety
    limits = (safety.max_charge_current_A, safety.max_discharge_current_A)
    builder = _Builder()
    builder.steps(procedure.steps)
    window = safety.max_voltage_V - safety.min_voltage_V
    largest = max(limits)
    guess = RESISTANCE_GUESS_SHARE * window / largest if window > 0 and largest > 0 else 0.1
    sampling = procedure.sampling
    program = Program(
        ops=tuple(builder.ops),
        profile=np.array(builder.profile, dtype=np.float64).reshape(-1, 2),
        safety=Safety(
            max_voltage_V=safety.max_voltage_V,
            min_voltage_V=safety.min_voltage_V,
            max_charge_current_A=safety.max_charge_current_A,
            max_discharge_current_A=safety.max_discharge_current_A,
            max_temperature_C=safety.max_temperature_C,
            min_temperature_C=safety.min_temperature_C,
            delay_s=safety.delay_s,
        ),
        sampling=Sampling(
            period_s=sampling.period_s,
            voltage_delta_V=sampling.voltage_delta_V if sampling.voltage_delta_V is not None else math.inf,
            current_delta_A=sampling.current_delta_A if sampling.current_delta_A is not None else math.inf,
        ),
        initial_ambient_C=initial_ambient_C,
        resistance_guess_ohm=guess,
        steps=tuple(builder.texts),
    )
    return check(program)


class _Builder:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.profile: list[tuple[float, float]] = []
        self.texts: list[str] = []

    def steps(self, steps: tuple[AnyResolved, ...]) -> None:
        for step in steps:
            if isinstance(step, ResolvedRepeat):
                begin = len(self.ops)
                self.ops.append(Op(Mode.LOOP_BEGIN, float(step.count), cycle=step.cycle))
                self.steps(step.steps)
                self.ops.append(Op(Mode.LOOP_END, target=begin))
            else:
                self.leaf(step)

    def leaf(self, step: AnyResolved) -> None:
        step_id = len(self.texts)
        if getattr(step, "id", step_id) != step_id:
            raise ValueError(f"{step.path}: step id {getattr(step, 'id', None)} is not its position {step_id}")
        self.texts.append(step.label or step.text or step.path)
        if isinstance(step, ResolvedRest):
            op = Op(Mode.REST, until=_until(step.until), step_id=step_id)
        elif isinstance(step, ResolvedCc):
            op = Op(Mode.CC, step.current_A, until=_until(step.until), step_id=step_id)
        elif isinstance(step, ResolvedPulse):
            op = Op(Mode.CC, step.current_A, until=((Until.TIME, step.duration_s),), step_id=step_id)
        elif isinstance(step, ResolvedCv):
            limits = (step.charge_limit_A, step.discharge_limit_A)
            op = Op(Mode.CV, step.voltage_V, until=_until(step.until), limits=limits, step_id=step_id)
        elif isinstance(step, ResolvedCp):
            limits = (step.charge_limit_A, step.discharge_limit_A)
            op = Op(Mode.CP, step.power_W, until=_until(step.until), limits=limits, step_id=step_id)
        elif isinstance(step, ResolvedProfile):
            start = len(self.profile)
            self.profile.extend((float(t), float(v)) for t, v in step.points)
            end = (Until.TIME, float(step.points[-1][0]))
            op = Op(
                PROFILE_MODES[step.quantity],
                profile=(start, len(step.points)),
                linear=step.interpolation == "linear",
                until=(*_until(step.until), end),
                limits=(step.charge_limit_A, step.discharge_limit_A),
                step_id=step_id,
            )
        elif isinstance(step, ResolvedAmbient):
            op = Op(Mode.AMBIENT, ambient=step.temperature_C, until=_until(step.until), step_id=step_id)
        elif isinstance(step, ResolvedExternal):
            op = Op(Mode.EXTERNAL, until=((Until.TIME, step.duration_s),), step_id=step_id)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"{step.path}: no executor for step type {type(step).__name__}")
        self.ops.append(op)


def _until(terminations: tuple[ResolvedTermination, ...]) -> tuple[tuple[Until, float], ...]:
    return tuple((UNTIL[t.kind], float(t.value)) for t in terminations)

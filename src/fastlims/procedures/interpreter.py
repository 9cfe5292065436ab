"""The reference executor of a :class:`~.program.Program`, in Python, sample by sample.

It is the readable statement of the execution rules in :mod:`.program`; the C controller that the
virtual bench compiles into its step loop follows it line for line, and the tests hold both to
the same samples. A bench (the physical bench emulator, a test harness) drives it::

    run = Interpreter(program)
    current = run.begin(t0)                 # the current for [t0, t0 + h)
    while True:
        # apply `current` (A, positive = charge) and `run.ambient_C`, advance the UUT to t ...
        sample = run.sample(t, voltage_V, temperature_C)   # measured with `current` flowing
        if sample.code is not Code.CONTINUE:
            break
        current = sample.next_current

Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastlims.procedures.program import (
    LIMIT_NAMES,
    LIMIT_QUANTITY,
    Code,
    Limit,
    Mode,
    Op,
    Program,
    Safety,
    Until,
    check,
)

CURRENT_STEP_SHARE = 0.02  # a current change this share of the largest rating re-measures R for CV
EPSILON = 1e-9
_CURRENTS = (Limit.MAX_CHARGE_CURRENT, Limit.MAX_DISCHARGE_CURRENT)
_UPPER = (Limit.MAX_VOLTAGE, *_CURRENTS, Limit.MAX_TEMPERATURE)


@dataclass(frozen=True)
class Sample:
    """What one sample decided, and the columns of its row.

    ``code``: go on (``CONTINUE``) or why the run ends; ``next_current``: the current for the next
    interval; ``record``: whether the row is kept (the sampling rules); the counters are those of
    the row (cumulative since the test's start, BDF semantics)."""

    code: Code
    next_current: float
    record: bool
    current: float
    step_count: int
    cycle_count: int
    step_id: int
    charge_Ah: float
    discharge_Ah: float
    charge_Wh: float
    discharge_Wh: float
    ambient_C: float


@dataclass(frozen=True)
class Trip:
    """The safety limit that ended a run: which, the value seen, when, and for how long."""

    limit: Limit
    value: float
    at: float
    held_s: float


def trip_reason(trip: Trip, safety: Safety, t0: float = 0.0) -> str:
    """The words a run's report gives a safety trip: the limit, the value, the test time (every
    bench kind says it the same way)."""
    name = LIMIT_NAMES[trip.limit]
    quantity, unit, side = LIMIT_QUANTITY[trip.limit]
    bound = float(safety.as_array()[int(trip.limit)])
    held = f", held {trip.held_s:.10g} s" if trip.held_s > 0 else ""
    return (
        f"safety limit {name} = {bound:.6g} {unit}: {quantity} {trip.value:.6g} {unit} {side} it at test "
        f"time {trip.at - t0:.10g} s{held}"
    )


class Interpreter:
    """Executes one program once (see the module doc)."""

    def __init__(self, program: Program, *, allow_external: bool = False) -> None:
        self.program = check(program)
        self.allow_external = allow_external  # a physical bench runs an external step as open circuit
        self.ops = program.ops
        safety = program.safety
        self.limits = (
            safety.max_voltage_V,
            safety.min_voltage_V,
            safety.max_charge_current_A,
            safety.max_discharge_current_A,
            safety.max_temperature_C,
            safety.min_temperature_C,
        )
        self.delay = safety.delay_s
        self.rating_scale = max(
            (x for x in (safety.max_charge_current_A, safety.max_discharge_current_A) if math.isfinite(x)),
            default=0.0,
        )
        self.tick = program.sampling.period_s
        self.opening = False
        self.error = math.nan  # the last voltage error of a regulating step (its oscillation guard)
        self.pc = 0
        self.loops: list[int] = []  # remaining iterations of each open repeat, innermost last
        self.step_count = 0
        self.cycle_count = 0
        self.ambient_C = program.initial_ambient_C
        self.resistance = program.resistance_guess_ohm
        self.command = 0.0
        self.previous: tuple[float, float, float] | None = None  # (t, current, voltage) of the last sample
        self.step_start = 0.0
        self.step_charge = 0.0
        self.step_new = True  # the active step starts at the next sample
        self.charge_Ah = self.discharge_Ah = self.charge_Wh = self.discharge_Wh = 0.0
        self.exceeded_since = [math.nan] * len(Limit)
        self.last_recorded: tuple[float, float, float] | None = None
        self.trip: Trip | None = None
        self.finished: Code | None = None

    # --- program counter ---------------------------------------------------------------------------

    def _settle(self) -> bool:
        """Move ``pc`` to the next op that takes time (through repeats and instant ambient ops);
        False at the end of the program."""
        while self.pc < len(self.ops):
            op = self.ops[self.pc]
            if op.mode is Mode.LOOP_BEGIN:
                self.loops.append(int(op.value))
                if op.cycle:
                    self.cycle_count += 1
                self.pc += 1
            elif op.mode is Mode.LOOP_END:
                self.loops[-1] -= 1
                if self.loops[-1] > 0:
                    self.pc = op.target + 1
                    if self.ops[op.target].cycle:
                        self.cycle_count += 1
                else:
                    self.loops.pop()
                    self.pc += 1
            elif op.mode is Mode.AMBIENT and not op.until:
                self.ambient_C = op.ambient
                self.pc += 1
            else:
                if op.mode is Mode.AMBIENT:
                    self.ambient_C = op.ambient
                return True
        return False

    def _activate_next(self, t_next: float) -> bool:
        self.pc += 1
        return self._activate(t_next)

    def _activate(self, t_start: float) -> bool:
        if not self._settle():
            return False
        self.step_count += 1
        self.step_start = t_start
        self.step_new = True
        self.error = math.nan
        return True

    # --- commands -----------------------------------------------------------------------------------

    def _profile_value(self, op: Op, step_time: float) -> float:
        start, count = op.profile
        table = self.program.profile[start : start + count]
        times, values = table[:, 0], table[:, 1]
        if step_time <= times[0]:
            return float(values[0])
        if step_time >= times[-1]:
            return float(values[-1])
        index = int((times <= step_time).sum()) - 1
        if not op.linear:
            return float(values[index])
        t0, t1 = times[index], times[index + 1]
        return float(values[index] + (values[index + 1] - values[index]) * (step_time - t0) / (t1 - t0))

    def _clamp(self, op: Op, current: float) -> float:
        charge, discharge = op.limits
        return min(charge, max(-discharge, current))

    def _command(self, op: Op, t_next: float, voltage: float) -> float:
        """The current ``op`` commands for the interval starting at ``t_next``."""
        mode = op.mode
        if mode is Mode.CC:
            return op.value
        if mode in (Mode.REST, Mode.AMBIENT, Mode.EXTERNAL):
            return 0.0
        step_time = t_next - self.step_start
        if mode is Mode.PROFILE_CURRENT:
            return self._profile_value(op, step_time)
        if mode in (Mode.CP, Mode.PROFILE_POWER):
            power = op.value if mode is Mode.CP else self._profile_value(op, step_time)
            return self._clamp(op, power / voltage) if voltage > 0 else 0.0
        target = op.value if mode is Mode.CV else self._profile_value(op, step_time)
        error = target - voltage
        if error * self.error < 0 and abs(error) > abs(self.error):
            self.resistance *= 2.0  # the hold oscillates: the resistance was underestimated
        self.error = error
        return self._clamp(op, self.command + error / self.resistance)

    # --- the run --------------------------------------------------------------------------------------

    def begin(self, t0: float, tick_s: float) -> float:
        """Start at ``t0`` with samples every ``tick_s``; returns the current for ``[t0, t0 + tick_s)``:
        zero, since every run opens with one sample at open circuit (the UUT's voltage before the
        test, and the reference from which the first current step measures its resistance)."""
        if not tick_s > 0:
            raise ValueError(f"tick_s must be positive, got {tick_s}")
        self.tick = tick_s
        self.opening = True
        self.command = 0.0
        return 0.0

    def sample(self, t: float, voltage: float, temperature: float = math.nan) -> Sample:
        """The sample at ``t`` (voltage and temperature measured with the current commanded last)."""
        if self.finished is not None:
            raise RuntimeError("the program has ended; start a new Interpreter")
        current = self.command
        if self.previous is not None:
            t_last, i_last, v_last = self.previous
            dt = t - t_last
            charge = i_last * dt / 3600.0
            energy = charge * v_last
            if charge > 0:
                self.charge_Ah += charge
                self.charge_Wh += energy
            else:
                self.discharge_Ah -= charge
                self.discharge_Wh -= energy
            self.step_charge += abs(charge)
            jump = abs(current - i_last)
            if jump >= CURRENT_STEP_SHARE * self.rating_scale and jump > 0:
                measured = (voltage - v_last) / (current - i_last)
                if 1e-6 <= measured <= 1e3:
                    self.resistance = measured
        first = self.step_new
        if first:
            self.step_charge = 0.0
            self.step_new = False
        opening = self.opening
        op = None if opening else self.ops[self.pc]
        h = self.tick
        self.previous = (t, current, voltage)
        code = Code.CONTINUE
        if math.isnan(voltage):
            code = Code.INVALID
        elif self._safety(t, voltage, current, temperature):
            code = Code.SAFETY
        elif op is not None and op.mode is Mode.EXTERNAL and not self.allow_external:
            code = Code.EXTERNAL
        ended = code is not Code.CONTINUE
        # the row's columns belong to the step that commanded its current, even if it ends here
        row_step_count, row_cycle, row_ambient = self.step_count, self.cycle_count, self.ambient_C
        row_step_id = -1 if op is None else op.step_id
        if opening and not ended:
            self.opening = False
            ended = True
            if not self._activate(t + h):
                code = Code.COMPLETE
        elif op is not None and not ended and self._terminated(op, t, h, voltage, current, temperature, first):
            ended = True
            if not self._activate_next(t + h):
                code = Code.COMPLETE
        if code is Code.CONTINUE:
            self.command = self._command(self.ops[self.pc], t + h, voltage)
        else:
            self.finished = code
            self.command = 0.0
        record = self._record(t, voltage, current, first or ended)
        return Sample(
            code=code,
            next_current=self.command,
            record=record,
            current=current,
            step_count=row_step_count,
            cycle_count=row_cycle,
            step_id=row_step_id,
            charge_Ah=self.charge_Ah,
            discharge_Ah=self.discharge_Ah,
            charge_Wh=self.charge_Wh,
            discharge_Wh=self.discharge_Wh,
            ambient_C=row_ambient,
        )

    def _safety(self, t: float, voltage: float, current: float, temperature: float) -> bool:
        seen = (voltage, voltage, current, -current, temperature, temperature)
        for limit in Limit:
            value, bound = seen[limit], self.limits[limit]
            exceeded = value > bound if limit in _UPPER else value < bound
            if not exceeded:
                self.exceeded_since[limit] = math.nan
                continue
            if math.isnan(self.exceeded_since[limit]):
                self.exceeded_since[limit] = t
            held = t - self.exceeded_since[limit]
            if held >= self.delay - EPSILON:
                self.trip = Trip(limit, abs(value) if limit in _CURRENTS else value, t, held)
                return True
        return False

    def _terminated(
        self, op: Op, t: float, h: float, voltage: float, current: float, temperature: float, first: bool
    ) -> bool:
        step_time_next = t + h - self.step_start
        charge_next = self.step_charge + abs(current) * h / 3600.0
        for kind, value in op.until:
            if kind is Until.TIME:
                hit = step_time_next >= value - EPSILON * max(1.0, value)
            elif kind is Until.CHARGE:
                hit = charge_next >= value - EPSILON * max(1.0, value)
            elif kind is Until.VOLTAGE_ABOVE:
                hit = voltage >= value
            elif kind is Until.VOLTAGE_BELOW:
                hit = voltage <= value
            elif kind is Until.CURRENT_BELOW:
                hit = not first and abs(current) <= value
            elif kind is Until.TEMPERATURE_ABOVE:
                hit = temperature >= value
            else:
                hit = temperature <= value
            if hit:
                return True
        return False

    def _record(self, t: float, voltage: float, current: float, boundary: bool) -> bool:
        sampling = self.program.sampling
        last = self.last_recorded
        keep = (
            boundary
            or last is None
            or t - last[0] >= sampling.period_s - EPSILON * max(1.0, sampling.period_s)
            or abs(voltage - last[1]) >= sampling.voltage_delta_V
            or abs(current - last[2]) >= sampling.current_delta_A
            or self.finished is not None
        )
        if keep:
            self.last_recorded = (t, voltage, current)
        return keep

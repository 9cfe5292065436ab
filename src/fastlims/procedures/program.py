"""A procedure flattened for execution: the form both executors run, sample by sample.

A :class:`Program` is a list of :class:`Op` (leaf steps, and the begin and end of each repeat)
plus one table of profile points, all numbers SI and BDF-signed (current positive = charge). The
C controller (``procedures/controller.c``, compiled into the co-simulation's step loop) and the
Python :mod:`.interpreter` execute the same program with the same rules; tests hold them to the
same samples. :meth:`Program.arrays` is the layout the C side reads.

Execution rules (both executors; ``h`` is the sample period, ``I_k`` the current commanded for
``[t_k, t_k+h)``):

* At sample ``k`` the executor sees the voltage (and temperature) measured with ``I_k`` flowing,
  accounts the charge and energy of ``[t_k-h, t_k]``, checks the safety limits, then the active
  step's terminations, and decides ``I_k+1``. A step that ends at sample ``k`` hands over at
  ``t_k+h``: the next step's current flows from the next sample (a sampled cycler's latency).
* Time, charge and profile-end terminations look one sample ahead (a step "for 1 hour" commands
  exactly 3600 s of current); voltage, current and temperature terminations use the measurement.
  A taper (``current below``) is not checked on a step's first sample.
* A safety limit trips when it has been exceeded on consecutive samples for ``delay_s`` or more
  (``delay_s = 0``: at once); each limit has its own timer.
* Repeats, and ``ambient`` steps without terminations, take no time.
* CV: ``I_k+1 = I_k + (V_set - V_k) / R``, clamped to the step's current limits; ``R`` is the
  UUT's resistance as last seen at a current step (``ΔV/ΔI`` of a sample whose current changed by
  at least 2 % of the largest current rating), initially a conservative guess.
* CP: ``I_k+1 = P / V_k``. Voltage profiles are followed as CV with a moving set-point.

Pure: data in, data out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Mode(IntEnum):
    REST = 0
    CC = 1
    CV = 2
    CP = 3
    PROFILE_CURRENT = 4
    PROFILE_POWER = 5
    PROFILE_VOLTAGE = 6
    AMBIENT = 7
    EXTERNAL = 8
    LOOP_BEGIN = 9
    LOOP_END = 10


class Until(IntEnum):
    """Termination kinds (a step ends at the first one met)."""

    TIME = 1
    VOLTAGE_ABOVE = 2
    VOLTAGE_BELOW = 3
    CURRENT_BELOW = 4
    CHARGE = 5
    TEMPERATURE_ABOVE = 6
    TEMPERATURE_BELOW = 7


class Limit(IntEnum):
    """Safety limits, in the order of :attr:`Program.safety` (also the C side's trip codes)."""

    MAX_VOLTAGE = 0
    MIN_VOLTAGE = 1
    MAX_CHARGE_CURRENT = 2
    MAX_DISCHARGE_CURRENT = 3
    MAX_TEMPERATURE = 4
    MIN_TEMPERATURE = 5


class Code(IntEnum):
    """What a sample returns: go on, or why the run ends. The values are distinct from the FMI
    statuses (0-4) the co-simulation loop also sees, so the loop tells the controller's end apart
    from an FMU's error and never mistakes it for a warning (1)."""

    CONTINUE = 0
    COMPLETE = 10
    SAFETY = 11
    EXTERNAL = 12  # an operator/fixture step: only a physical bench can run it
    INVALID = 13  # a NaN measurement or a broken program
    FMU_ERROR = 14  # an FMU refused the current or ambient the controller set


LIMIT_NAMES = {
    Limit.MAX_VOLTAGE: "max_voltage_V",
    Limit.MIN_VOLTAGE: "min_voltage_V",
    Limit.MAX_CHARGE_CURRENT: "max_charge_current_A",
    Limit.MAX_DISCHARGE_CURRENT: "max_discharge_current_A",
    Limit.MAX_TEMPERATURE: "max_temperature_C",
    Limit.MIN_TEMPERATURE: "min_temperature_C",
}
LIMIT_QUANTITY = {
    Limit.MAX_VOLTAGE: ("voltage", "V", "above"),
    Limit.MIN_VOLTAGE: ("voltage", "V", "below"),
    Limit.MAX_CHARGE_CURRENT: ("charge current", "A", "above"),
    Limit.MAX_DISCHARGE_CURRENT: ("discharge current", "A", "above"),
    Limit.MAX_TEMPERATURE: ("temperature", "degC", "above"),
    Limit.MIN_TEMPERATURE: ("temperature", "degC", "below"),
}

MAX_TERMINATIONS = 8
# Columns of one op in the array the C side reads (keep in step with controller.c).
OP_MODE, OP_VALUE, OP_AMBIENT, OP_PROFILE_START, OP_PROFILE_COUNT, OP_LINEAR = 0, 1, 2, 3, 4, 5
OP_LIMIT_CHARGE, OP_LIMIT_DISCHARGE, OP_COUNT, OP_CYCLE, OP_STEP_ID, OP_TERMINATIONS = 6, 7, 8, 9, 10, 11
OP_FIRST_TERMINATION = 12
OP_WIDTH = OP_FIRST_TERMINATION + 2 * MAX_TERMINATIONS


@dataclass(frozen=True)
class Op:
    """One entry of a program.

    ``value``: the set-point (A for CC, V for CV, W for CP; BDF-signed), or the repeat count of a
    ``LOOP_BEGIN``. ``ambient``: the set-point of an ``AMBIENT`` op (degC). ``profile``: for a
    profile op, ``(start, count)`` in :attr:`Program.profile`; ``linear`` interpolates between
    points (else the previous point holds). ``limits``: the largest charge and discharge current
    a CV, CP or profile op may command (magnitudes). ``until``: ``(Until, value)`` pairs; a time
    limit is added to profile ops by the compiler. ``step_id``: the leaf's index (the ``Step ID``
    column), ``-1`` for loop ops; ``target``: a ``LOOP_END``'s ``LOOP_BEGIN``.
    """

    mode: Mode
    value: float = 0.0
    ambient: float = math.nan
    profile: tuple[int, int] = (0, 0)
    linear: bool = False
    limits: tuple[float, float] = (math.inf, math.inf)
    until: tuple[tuple[Until, float], ...] = ()
    cycle: bool = False
    step_id: int = -1
    target: int = -1


@dataclass(frozen=True)
class Safety:
    """Absolute limits of the run (SI; currents are magnitudes) and how long one may be exceeded."""

    max_voltage_V: float = math.inf
    min_voltage_V: float = -math.inf
    max_charge_current_A: float = math.inf
    max_discharge_current_A: float = math.inf
    max_temperature_C: float = math.inf
    min_temperature_C: float = -math.inf
    delay_s: float = 0.0

    def as_array(self) -> np.ndarray:
        return np.array(
            [
                self.max_voltage_V,
                self.min_voltage_V,
                self.max_charge_current_A,
                self.max_discharge_current_A,
                self.max_temperature_C,
                self.min_temperature_C,
                self.delay_s,
            ],
            dtype=np.float64,
        )


@dataclass(frozen=True)
class Sampling:
    """A sample is recorded every ``period_s``, and whenever the voltage or current has moved by
    the delta since the last recorded one, and at the first and last sample of every step."""

    period_s: float = 1.0
    voltage_delta_V: float = math.inf
    current_delta_A: float = math.inf


@dataclass(frozen=True)
class Program:
    """A flattened procedure. ``steps`` describes each leaf (``Step ID`` -> text) for reports;
    ``resistance_guess_ohm`` seeds the CV regulator before a current step has been seen."""

    ops: tuple[Op, ...]
    profile: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    safety: Safety = Safety()
    sampling: Sampling = Sampling()
    initial_ambient_C: float = math.nan
    resistance_guess_ohm: float = 0.1
    steps: tuple[str, ...] = ()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ops, profile)`` as C-contiguous float64 arrays (``ops``: one row of ``OP_WIDTH`` per op)."""
        table = np.zeros((max(1, len(self.ops)), OP_WIDTH), dtype=np.float64)
        for index, op in enumerate(self.ops):
            row = table[index]
            row[OP_MODE] = int(op.mode)
            row[OP_VALUE] = op.value if op.mode is not Mode.LOOP_END else op.target
            row[OP_AMBIENT] = op.ambient
            row[OP_PROFILE_START], row[OP_PROFILE_COUNT] = op.profile
            row[OP_LINEAR] = 1.0 if op.linear else 0.0
            row[OP_LIMIT_CHARGE], row[OP_LIMIT_DISCHARGE] = op.limits
            row[OP_COUNT] = op.value if op.mode is Mode.LOOP_BEGIN else 0.0
            row[OP_CYCLE] = 1.0 if op.cycle else 0.0
            row[OP_STEP_ID] = op.step_id
            row[OP_TERMINATIONS] = len(op.until)
            for j, (kind, value) in enumerate(op.until):
                row[OP_FIRST_TERMINATION + 2 * j] = int(kind)
                row[OP_FIRST_TERMINATION + 2 * j + 1] = value
        profile = np.ascontiguousarray(self.profile, dtype=np.float64).reshape(-1, 2)
        if not len(profile):
            profile = np.zeros((1, 2))
        return table, profile


class ProgramError(ValueError):
    """A program the executors cannot run (a compiler bug or hand-built nonsense)."""


def check(program: Program) -> Program:
    """Structural checks both executors rely on; returns the program unchanged."""
    problems: list[str] = []
    open_loops: list[int] = []
    leaves = 0
    profile_rows = len(program.profile)
    for index, op in enumerate(program.ops):
        where = f"op {index} ({op.mode.name})"
        if len(op.until) > MAX_TERMINATIONS:
            problems.append(f"{where}: more than {MAX_TERMINATIONS} terminations")
        if any(not math.isfinite(value) for _, value in op.until):
            problems.append(f"{where}: a termination value is not finite")
        if op.mode is Mode.LOOP_BEGIN:
            if not (op.value >= 1 and float(op.value).is_integer()):
                problems.append(f"{where}: a repeat needs a whole count of at least 1, got {op.value}")
            open_loops.append(index)
        elif op.mode is Mode.LOOP_END:
            if not open_loops or open_loops[-1] != op.target:
                problems.append(f"{where}: does not close the innermost open repeat")
            else:
                open_loops.pop()
        else:
            if op.step_id != leaves:
                problems.append(f"{where}: step_id {op.step_id}, expected {leaves} (leaves in order)")
            leaves += 1
            if op.mode in (Mode.PROFILE_CURRENT, Mode.PROFILE_POWER, Mode.PROFILE_VOLTAGE):
                start, count = op.profile
                if count < 1 or start < 0 or start + count > profile_rows:
                    problems.append(f"{where}: profile rows {start}..{start + count} outside the table")
            if op.mode in (Mode.REST, Mode.CC, Mode.CV, Mode.CP) and not op.until:
                problems.append(f"{where}: an open-ended step needs a termination")
    if open_loops:
        problems.append(f"repeat(s) at op {', '.join(map(str, open_loops))} not closed")
    if leaves == 0:
        problems.append("the program has no step")
    if not program.sampling.period_s > 0:
        problems.append("sampling period must be positive")
    if problems:
        raise ProgramError("; ".join(problems))
    return program


def leaf_count(ops: Sequence[Op]) -> int:
    return sum(1 for op in ops if op.mode not in (Mode.LOOP_BEGIN, Mode.LOOP_END))

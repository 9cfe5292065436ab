"""One run on the emulated UUT: the run file's procedure, sample by sample, with what a cycler
reports (the recorded rows in Battery Data Format columns, and the run events).

The executor is the reference interpreter, the same rules the virtual bench's C controller
follows, so a procedure behaves alike on both bench kinds. :meth:`EmulatedRun.advance` moves the
test clock forward to a time and returns what happened meanwhile; the driver calls it as the wall
clock (times the speed factor) goes by. ``record_index`` numbers the recorded rows from 0 without
gaps: the LIMS stores each sample once, whatever is resent.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from fastlims.benches.emulator.cell import EmulatedUut
from fastlims.procedures.compiler import compile_procedure
from fastlims.procedures.interpreter import Interpreter, Sample, trip_reason
from fastlims.procedures.program import LIMIT_NAMES, Code, Program
from fastlims.procedures.runfile import RunProcedure

#: The columns of an emulated bench's rows (Battery Data Format names), in order.
COLUMNS = (
    "Test Time / s",
    "Voltage / V",
    "Current / A",
    "Temperature T1 / degC",
    "Ambient Temperature / degC",
    "Step Count / 1",
    "Cycle Count / 1",
    "Step ID",
    "Charge Capacity / Ah",
    "Discharge Capacity / Ah",
    "Charge Energy / Wh",
    "Discharge Energy / Wh",
)

EndCause = Literal["procedure_complete", "safety_limit", "error"]


@dataclass(frozen=True)
class Event:
    """A run event: ``kind`` is ``step_started``, ``step_ended``, ``safety_tripped``, ``completed``
    or ``failed``; ``details`` what the LIMS reports (charge and energy of a step, the limit)."""

    kind: str
    test_time_s: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Chunk:
    """What :meth:`EmulatedRun.advance` produced: rows (one list per column of :data:`COLUMNS`),
    the index of the first row, and the events, in order."""

    first_index: int
    rows: dict[str, list[float]]
    events: list[Event]

    @property
    def count(self) -> int:
        return len(self.rows[COLUMNS[0]])


@dataclass
class _Step:
    step_id: int
    cycle_count: int
    started_s: float
    charge_Ah: float
    discharge_Ah: float
    charge_Wh: float
    discharge_Wh: float


class EmulatedRun:
    """The run of ``run_file`` on ``uut`` with samples every ``tick_s`` (default: the procedure's
    sampling period, at most 1 s)."""

    def __init__(self, run_file: RunProcedure, uut: EmulatedUut, *, tick_s: float | None = None) -> None:
        self.run_file = run_file
        self.uut = uut
        self.program: Program = compile_procedure(run_file.procedure, initial_ambient_C=uut.ambient_C)
        period = self.program.sampling.period_s
        self.tick_s = float(tick_s if tick_s is not None else min(1.0, period if period > 0 else 1.0))
        self.interpreter = Interpreter(self.program, allow_external=True)
        self.t = 0.0
        self.current = self.interpreter.begin(0.0, self.tick_s)
        self.next_index = 0
        self.end_cause: EndCause | None = None
        self.reason: str | None = None
        self._step: _Step | None = None

    @property
    def ended(self) -> bool:
        return self.end_cause is not None

    def advance(self, until_s: float, *, max_rows: int = 10_000) -> Chunk:
        """Run samples up to test time ``until_s`` (or until ``max_rows`` rows are recorded, or the
        run ends) and return the rows recorded and the events."""
        rows: dict[str, list[float]] = {name: [] for name in COLUMNS}
        events: list[Event] = []
        first = self.next_index
        while not self.ended and self.t <= until_s and len(rows[COLUMNS[0]]) < max_rows:
            uut = self.uut
            uut.ambient_C = self.interpreter.ambient_C if math.isfinite(self.interpreter.ambient_C) else uut.ambient_C
            voltage = uut.voltage(self.current)
            temperature = uut.temperature()
            sample = self.interpreter.sample(self.t, voltage, temperature)
            self._track_steps(sample, events)
            if sample.record or sample.code is not Code.CONTINUE:
                self._append(rows, sample, voltage, temperature)
            if sample.code is not Code.CONTINUE:
                self._finish(sample, events)
                break
            uut.hold(self.current, self.tick_s)
            self.current = sample.next_current
            self.t += self.tick_s
        return Chunk(first, rows, events)

    def abort(self, reason: str) -> None:
        """End the run now (an operator's abort or a bench fault): the UUT goes to open circuit."""
        if not self.ended:
            self.end_cause = "error"
            self.reason = reason
            self.current = 0.0

    # --- internals --------------------------------------------------------------------------------

    def _append(self, rows: dict[str, list[float]], sample: Sample, voltage: float, temperature: float) -> None:
        values = (
            self.t,
            voltage,
            sample.current,
            temperature,
            sample.ambient_C,
            float(sample.step_count),
            float(sample.cycle_count),
            float(sample.step_id),
            sample.charge_Ah,
            sample.discharge_Ah,
            sample.charge_Wh,
            sample.discharge_Wh,
        )
        for name, value in zip(COLUMNS, values, strict=True):
            rows[name].append(value)
        self.next_index += 1

    def _track_steps(self, sample: Sample, events: list[Event]) -> None:
        """``step_started`` when a new step commands its first current, ``step_ended`` (with the
        charge and energy it moved) when the next one starts or the run ends."""
        if self._step is not None and sample.step_id != self._step.step_id:
            self._end_step(sample, events)
        if self._step is None and sample.step_id >= 0:
            self._step = _Step(
                sample.step_id,
                sample.cycle_count,
                self.t,
                sample.charge_Ah,
                sample.discharge_Ah,
                sample.charge_Wh,
                sample.discharge_Wh,
            )
            events.append(
                Event(
                    "step_started",
                    self.t,
                    {"step_id": sample.step_id, "step_count": sample.step_count, "cycle_count": sample.cycle_count},
                )
            )

    def _end_step(self, sample: Sample, events: list[Event]) -> None:
        step = self._step
        if step is None:
            return
        events.append(
            Event(
                "step_ended",
                self.t,
                {
                    "step_id": step.step_id,
                    "cycle_count": step.cycle_count,
                    "duration_s": self.t - step.started_s,
                    "charge_Ah": sample.charge_Ah - step.charge_Ah,
                    "discharge_Ah": sample.discharge_Ah - step.discharge_Ah,
                    "charge_Wh": sample.charge_Wh - step.charge_Wh,
                    "discharge_Wh": sample.discharge_Wh - step.discharge_Wh,
                },
            )
        )
        self._step = None

    def _finish(self, sample: Sample, events: list[Event]) -> None:
        self._end_step(sample, events)
        if sample.code is Code.COMPLETE:
            self.end_cause = "procedure_complete"
            self.reason = f"the procedure completed at test time {self.t:.10g} s ({sample.step_count} steps)"
            events.append(Event("completed", self.t, {"reason": self.reason}))
        elif sample.code is Code.SAFETY and self.interpreter.trip is not None:
            trip = self.interpreter.trip
            self.end_cause = "safety_limit"
            self.reason = trip_reason(trip, self.program.safety)
            events.append(
                Event(
                    "safety_tripped",
                    self.t,
                    {"limit": LIMIT_NAMES[trip.limit], "value": trip.value, "at_s": trip.at, "reason": self.reason},
                )
            )
            events.append(Event("failed", self.t, {"end_cause": "safety_limit", "reason": self.reason}))
        else:
            self.end_cause = "error"
            self.reason = f"the run ended with {sample.code.name} at test time {self.t:.10g} s"
            events.append(Event("failed", self.t, {"end_cause": "error", "reason": self.reason}))
        self.current = 0.0

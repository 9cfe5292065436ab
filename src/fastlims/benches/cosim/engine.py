"""The co-simulation master: fixed communication step, Jacobi or Gauss-Seidel, FMI 2.0 and 3.0.

How a run goes. Fresh instances are created, the DoE run's parameters set, and in initialization
mode the profiles' first values and the connections are propagated (two sweeps, so values
settle along chains) before the first step. Then, at every communication point t_k = start + k·h:

* **exchange** (both algorithms): FMU by FMU in topological order, set its profile inputs and
  its connected inputs (from the outputs just read of the FMUs before it), then read its
  outputs. Direct feedthrough along a chain is resolved at the point itself, so the row
  recorded for t_k is consistent (a cell's V is read after its I is set). An input on a loop
  reads its driver before that driver's own inputs are updated (the previous point's value).
* **step**: Jacobi: every FMU steps from t_k with the inputs of t_k. Gauss-Seidel: in the same
  order, each FMU first takes the outputs at t_k+1 of the FMUs before it, then steps.

The model is plain data (:class:`~.system.CosimSystem`, :class:`~.plan.Plan`) and the runner a
free function, :func:`run`, as in FMPy's ``simulate_fmu``. The FMI calls of a block of points are
prepared once and made from a loop in C (:mod:`.fastpath`); per block, NumPy fills in times and
profile values, checks NaN/inf, stop conditions and FMI 3 termination requests, and the recorded
rows are copied out (:mod:`.recording`); Python runs no code per step.

A run ends with ``status="failed"`` and a reason naming the FMU, the call and the time, with
what the FMU logged, on: a status other than OK/warning, a NaN or inf read from an FMU, an
exception in ``on_batch``. A crash (SIGSEGV) kills the process: see :mod:`.isolated`.
"""

from __future__ import annotations

import ctypes
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from fmpy.fmi1 import FMICallException

from fastlims.benches.cosim.control import end_of, start_controller
from fastlims.benches.cosim.errors import CosimError
from fastlims.benches.cosim.fastpath import (
    MAX_CHUNK,
    CallInfo,
    MasterTiming,
    PreparedCalls,
    Program,
    RowBuffers,
    RowCall,
)
from fastlims.benches.cosim.instance import Instance
from fastlims.benches.cosim.plan import Plan, Profile, make_plan, seconds
from fastlims.benches.cosim.recording import Batch, BatchCallbackError, Recorder, RunResult, Status
from fastlims.benches.cosim.spec import SimulationSpec
from fastlims.benches.cosim.system import CosimSystem, Port
from fastlims.procedures.native import FmuInput, NativeController

FIRST_CHUNK = 8  # the first block is short: a slow FMU reports progress early
CHUNK_TARGET_S = 0.02  # blocks grow or shrink towards this wall time (cancel, progress, metrics latency)
WARNINGS_NOTED = 5
LOG_KEPT = 200
CONTROLLER = "procedure controller"  # the row call that runs a test procedure (spec.procedure)


@dataclass(frozen=True)
class _End:
    """How a run ended: ``status``, ``end_cause`` and ``reason`` of its :class:`RunResult`."""

    status: Status
    end_cause: str
    reason: str


class _Stop(Exception):
    """Ends a run early (raised inside it, turned into its result)."""

    def __init__(self, status: Status, end_cause: str, reason: str) -> None:
        super().__init__(reason)
        self.end = _End(status, end_cause, reason)


@dataclass(frozen=True)
class _Event:
    """How a block ended a run: the outcome, and how many of its rows stand."""

    status: Status
    end_cause: str
    reason: str
    rows: int


class _Runner:
    """One run: set-up, then blocks of points until an end."""

    def __init__(self, system: CosimSystem, spec: SimulationSpec, plan: Plan, row_calls: Sequence[RowCall]) -> None:
        self.system, self.spec, self.plan, self.row_calls = system, spec, plan, row_calls
        self.log: deque[str] = deque(maxlen=LOG_KEPT)
        self.instances: dict[str, Instance] = {}
        self.notes = list(plan.notes)
        self.warnings = 0
        self.buffers: RowBuffers
        self.calls: PreparedCalls
        self.program: Program  # the calls of the block being run
        self.timing: MasterTiming | None = None  # set when the calls are prepared
        self.controller: NativeController | None = None  # runs spec.procedure, when there is one
        columns = [p.column for profiles in plan.profiles.values() for p in profiles if not p.controlled]
        self._profile_columns = np.array(columns, dtype=np.intp)
        self._profile_set = np.full(len(columns), np.nan)  # what the profile inputs hold now

    def _guarded(self, instance: Instance, what: str, action: Callable[..., Any], *arguments: Any) -> Any:
        """A set-up call; a failure ends the run naming the FMU, the call and what it logged."""
        mark = instance.problem_count
        try:
            return action(*arguments)
        except FMICallException as exc:
            logged = instance.logged_since(mark)
            raise _Stop(
                "failed", "error",
                f"FMU {instance.name!r} returned {instance.status_name(exc.status)} in {what} at "
                f"t={seconds(self.plan.start)} s (set-up)" + (f": {logged}" if logged else ""),
            ) from exc  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - FMPy raises bare Exceptions, e.g. a NULL instance
            logged = instance.logged_since(mark)
            reason = f"FMU {instance.name!r} failed in {what} (set-up): {exc}" + (f": {logged}" if logged else "")
            raise _Stop("failed", "error", reason) from exc

    def start(self) -> None:
        plan, spec = self.plan, self.spec
        for name in plan.order:
            try:
                self.instances[name] = Instance(self.system.fmus[name], spec.fmu_logging, self.log)
            except Exception as exc:  # noqa: BLE001 - FMPy raises bare Exceptions when a library will not load
                raise _Stop("failed", "error", f"FMU {name!r}: its binary cannot be loaded: {exc}") from exc
        order = [self.instances[name] for name in plan.order]
        end = plan.time(plan.steps)
        for i in order:
            self._guarded(i, "fmi3InstantiateCoSimulation" if i.fmi3 else "fmi2Instantiate", i.instantiate)
            if not i.fmi3:
                self._guarded(i, "fmi2SetupExperiment", i.slave.setupExperiment, None, plan.start, end)
        for port, value in plan.parameters:
            i = self.instances[port.fmu]
            self._guarded(i, f"setting parameter {port.name}={value!r}", i.set_parameter, port, value)
        for i in order:
            if i.fmi3:
                self._guarded(i, "fmi3EnterInitializationMode", i.slave.enterInitializationMode, None, plan.start, end)
            else:
                self._guarded(i, "fmi2EnterInitializationMode", i.slave.enterInitializationMode)
        initial = self._start_controller() if plan.control is not None else {}
        # Initial values before the first step: profiles at the start, then the connections along
        # the order, twice (the second sweep carries values around loops).
        for _sweep in range(2):
            for i in order:
                for profile in plan.profiles[i.name]:
                    if profile.controlled:
                        value = initial[profile.column]
                    else:
                        value = float(self.profile_values(profile, np.array([plan.start]))[0])
                    self._guarded(
                        i, f"setting input {profile.port.name}", i.set_reals, [profile.port.value_reference], [value]
                    )
                for group in plan.groups[i.name]:
                    source = self.instances[group.source]
                    values = self._guarded(
                        source, "reading outputs in initialization mode", source.get_reals, group.source_vrs
                    )
                    self._guarded(
                        i,
                        f"setting input(s) {group.inputs} in initialization mode",
                        i.set_reals,
                        group.target_vrs,
                        values,
                    )
        for i in order:
            exit_mode = "fmi3ExitInitializationMode" if i.fmi3 else "fmi2ExitInitializationMode"
            self._guarded(i, exit_mode, i.slave.exitInitializationMode)
        self.buffers = RowBuffers(plan, sum(1 for i in order if i.fmi3))
        row_calls = list(self.row_calls)
        if self.controller is not None:  # the first point's commands, then the controller at every point
            for column, value in initial.items():
                self.buffers.rows[0, column] = value
            row_calls.append(RowCall(CONTROLLER, self.controller.row_function, self.controller.handle, after_step=True))
        self.calls = PreparedCalls(plan, self.instances, spec.algorithm, self.buffers, row_calls)
        self.program = self.calls.full
        self.timing = MasterTiming(self.calls.null)
        for profiles in plan.profiles.values():
            for profile in profiles:  # as set in initialization mode
                if profile.controlled:
                    continue
                index = int(np.flatnonzero(self._profile_columns == profile.column)[0])
                self._profile_set[index] = self.profile_values(profile, np.array([plan.start]))[0]

    def _start_controller(self) -> dict[int, float]:
        """Start the procedure's controller; returns the controlled inputs' first values (raw)."""
        control = self.plan.control
        assert control is not None
        layout = control.layout
        driven = {p.column: p.port for ps in self.plan.profiles.values() for p in ps if p.controlled}
        ambient_port = driven.get(layout.ambient_command)
        controller = self.controller = start_controller(
            control,
            tick_s=self.plan.step,
            t0=self.plan.start,
            current=self._fmu_input(driven[layout.current_command]),
            ambient=self._fmu_input(ambient_port) if ambient_port is not None else None,
        )
        values = {layout.current_command: controller.command_raw}
        if ambient_port is not None:
            raw = control.initial_ambient_raw
            if math.isnan(raw):  # no ambient before the procedure sets one: the model's own
                instance = self.instances[ambient_port.fmu]
                read = self._guarded(
                    instance, f"reading {ambient_port.name}", instance.get_reals, [ambient_port.value_reference]
                )
                raw = float(read[0])
                gain, bias = control.conversions.ambient
                controller.state.ambient = (raw - bias) / gain
            values[layout.ambient_command] = raw
        return values

    def _fmu_input(self, port: Port) -> FmuInput:
        """Where the controller sets ``port`` itself (its FMU's raw setter and instance handle)."""
        instance = self.instances[port.fmu]
        setter = instance.function("fmi3SetFloat64" if instance.fmi3 else "fmi2SetReal")
        address = ctypes.cast(setter, ctypes.c_void_p).value
        return FmuInput(address or 0, instance.handle.value or 0, port.value_reference, instance.fmi3)

    def close(self) -> None:
        for instance in self.instances.values():
            instance.close()

    def profile_values(self, profile: Profile, times: np.ndarray) -> np.ndarray:
        relative = times - self.plan.start  # profile timestamps count from the start of the test
        if self.spec.profile_interpolation == "previous":
            index = np.clip(np.searchsorted(profile.times, relative, side="right") - 1, 0, len(profile.values) - 1)
            return np.asarray(profile.values[index])
        return np.asarray(np.interp(relative, profile.times, profile.values))

    def fill(self, first_step: int, rows: int) -> None:
        """The block's times and profile values (``rows`` includes a final exchange row)."""
        times = self.plan.start + (first_step + np.arange(rows)) * self.plan.step
        self.buffers.times[:rows] = times
        self.buffers.rows[:rows, 0] = times
        for profiles in self.plan.profiles.values():
            for profile in profiles:
                if not profile.controlled:
                    self.buffers.rows[:rows, profile.column] = self.profile_values(profile, times)
        if self.calls.fmi3_column:
            self.buffers.flags[:rows] = 0
        self.program = self.calls.full
        if self._profile_columns.size:
            values = self.buffers.rows[:rows][:, self._profile_columns]
            if np.array_equal(values, np.broadcast_to(self._profile_set, values.shape)):
                self.program = self.calls.held  # the inputs already hold these values
            else:
                self._profile_set = values[-1].copy()

    def execute(self, rows: int, final: bool, first_step: int, marks: dict[str, int]) -> tuple[int, int] | None:
        """Make the block's calls (:mod:`.fastpath`); warnings are noted and passed over. Returns
        the failing call (index, status), or None."""

        def warned(index: int) -> None:
            self.warnings += 1
            if self.warnings <= WARNINGS_NOTED:
                row, info = self.program.locate(index, rows)
                at = seconds(self.plan.time(first_step + row))
                if info.function == "call":
                    self.notes.append(f"{info.what} warned at t={at} s")
                    return
                logged = self.instances[info.fmu].logged_since(marks[info.fmu]) or "(nothing logged)"
                self.notes.append(f"FMU {info.fmu!r} warned in {info.what} at t={at} s: {logged}")

        assert self.timing is not None, "start() prepares the calls"
        return self.timing.execute(self.program, rows, final, warned)

    def outcome(
        self, failure: tuple[int, int] | None, first_step: int, rows: int, total: int, marks: dict[str, int]
    ) -> _Event | None:
        """How the block ends the run, if it does: the earliest of a stop condition, a NaN, an FMU
        asking to terminate, a failed call. Each is looked for only in the rows before the others."""
        plan, data = self.plan, self.buffers.rows
        valid = total
        event: _Event | None = None
        scan = total  # rows a NaN is looked for in: also the row of a failed exchange (a refused NaN input)
        if failure is not None:
            row, info = self.program.locate(failure[0], rows)
            valid = row if info.exchange else row + 1
            if self.controller is not None and not (info.function == "call" and info.fmu == CONTROLLER):
                valid = row  # the controller (the last call of a point) never saw it: no BDF columns
            scan = min(row + 1, total)
            event = self._failed_call(info, failure[1], row, first_step, valid, marks)
        if self.calls.fmi3_column and valid > 0:
            asked_rows = np.flatnonzero(self.buffers.flags[: min(valid, rows)].any(axis=1))
            if asked_rows.size:
                row = int(asked_rows[0])
                who = next(n for n, j in self.calls.fmi3_column.items() if self.buffers.flags[row, j])
                valid = scan = row + 1
                at = seconds(plan.time(first_step + row))
                event = _Event(
                    "completed",
                    "fmu_terminated",
                    f"FMU {who!r} asked to end the simulation in the step from t={at} s",
                    valid,
                )
        fmu_width = plan.control.layout.out[0] if plan.control is not None else plan.width  # the FMUs' columns
        if scan > 0 and fmu_width > 1:
            finite = np.isfinite(data[:scan, 1:fmu_width])
            if not finite.all():
                bad_row, bad_column = (int(x[0]) for x in np.nonzero(~finite))
                name = plan.owners.get(bad_column + 1, f"column {bad_column + 1}")
                fmu, _, variable = name.partition(".")
                value = data[bad_row, bad_column + 1]
                valid = bad_row
                at = seconds(plan.time(first_step + bad_row))
                event = _Event("failed", "nan", f"FMU {fmu!r} output {variable!r} is {value} at t={at} s", valid)
        for condition in plan.conditions:
            hits = np.flatnonzero(condition.compare(data[:valid, condition.column], condition.value))
            if hits.size:
                row = int(hits[0])
                valid = row + 1
                seen = f"{data[row, condition.column]:.6g} {condition.unit}".rstrip()
                at = seconds(plan.time(first_step + row))
                event = _Event(
                    "completed", "stop_condition", f"stop condition {condition.text} met at t={at} s ({seen})", valid
                )
        return event

    def seen(self, rows: int, total: int) -> int:
        """The rows of a block that stand: all ``total``, but with a procedure only the ``rows`` its
        controller has seen; it runs after the steps, so never on the run's last point (an exchange
        without a step), whose BDF columns would hold whatever the buffer held before."""
        return rows if self.controller is not None else total

    def _failed_call(
        self, info: CallInfo, status: int, row: int, first_step: int, valid: int, marks: dict[str, int]
    ) -> _Event:
        """The end of a run whose call ``info`` returned ``status`` at point ``row``: failed, naming
        the FMU, the call and the time with what the FMU logged, or completed when an FMU's
        doStep discarded because it asked to terminate."""
        at = seconds(self.plan.time(first_step + row))
        if info.function == "call" and info.fmu == CONTROLLER and self.controller is not None:
            ended, cause, reason = end_of(self.controller, status, self.plan.time(first_step + row), self.plan.start)
            return _Event(ended, cause, reason, valid)  # type: ignore[arg-type]
        if info.function == "call":
            return _Event("failed", "error", f"{info.what} returned status {status} at t={at} s", valid)
        instance = self.instances[info.fmu]
        logged = instance.logged_since(marks[info.fmu])
        label = instance.status_name(status)
        if info.function == "doStep":
            text = f"FMU {info.fmu!r} returned {label} in doStep at t={at} s"
        else:
            version = "fmi3" if instance.fmi3 else "fmi2"
            function = {
                "get": "GetFloat64" if instance.fmi3 else "GetReal",
                "set": "SetFloat64" if instance.fmi3 else "SetReal",
            }[info.function]
            text = f"FMU {info.fmu!r} returned {label} in {info.what} at t={at} s ({version}{function})"
        if info.function == "doStep" and status == 2:
            column = self.calls.fmi3_column.get(info.fmu)
            asked = instance.asked_to_terminate() if column is None else bool(self.buffers.flags[row, column])
            if asked:
                return _Event(
                    "completed",
                    "fmu_terminated",
                    f"FMU {info.fmu!r} asked to end the simulation in the step from t={at} s",
                    valid,
                )
            text += " (it could not complete the step; the master does not retry with a smaller one)"
        return _Event("failed", "error", text + (f": {logged}" if logged else ""), valid)


def run(
    system: CosimSystem,
    spec: SimulationSpec,
    on_batch: Callable[[Batch], None] | None = None,
    *,
    batch_rows: int | None = None,
    batch_every_s: float | None = None,
    cancel: Callable[[], bool] | None = None,
    on_progress: Callable[[float], None] | None = None,
    on_block_start: Callable[[float, float], None] | None = None,
    wall_timeout_s: float | None = None,
    row_calls: Sequence[RowCall] = (),
) -> RunResult:
    """Simulate ``spec`` on ``system`` with fresh instances (freed at the end); see the module doc.

    ``on_batch`` receives the recorded rows as :class:`Batch` es, every row exactly once, in
    order: ``batch_rows`` rows each (the last may be shorter), or whatever accumulated every
    ``batch_every_s`` of wall time (default 0.5 s). Between blocks of steps (about every 20 ms)
    ``cancel`` is asked and ``on_progress`` told the simulated time every FMU has reached;
    ``on_block_start`` gets the first and last point of each block before it runs (to place a
    crash). ``wall_timeout_s`` fails a run that takes longer. ``row_calls`` are made at every
    point between the exchange and the steps (:class:`~.fastpath.RowCall`). Raises
    :class:`CosimError` for a spec that cannot run on this system, before any FMU is
    instantiated; whatever goes wrong while simulating is in the result.
    """
    if batch_rows is not None and batch_rows < 1:
        raise CosimError([f"batch_rows must be at least 1, got {batch_rows}"])
    if batch_every_s is not None and not batch_every_s > 0:
        raise CosimError([f"batch_every_s must be positive, got {batch_every_s}"])
    started = time.perf_counter()
    plan = make_plan(system, spec)
    runner = _Runner(system, spec, plan, row_calls)
    every = None if batch_rows is not None else (batch_every_s or 0.5)
    record = plan.control.record_column if plan.control is not None else None
    recorder = Recorder(plan, spec.decimation, on_batch, batch_rows, every, record_column=record)
    end = _End("completed", plan.end_cause, "")
    setup_time = 0.0
    cpu_started = time.thread_time()
    try:
        try:
            runner.start()
            setup_time = time.perf_counter() - started
            cpu_started = time.thread_time()
            end = _blocks(runner, recorder, started, cancel, on_progress, on_block_start, wall_timeout_s)
        except _Stop as stop:
            end = stop.end
        except BatchCallbackError as exc:
            end = _End("failed", "callback", str(exc))
        try:
            recorder.emit(True)
        except BatchCallbackError as exc:
            end = _End("failed", "callback", str(exc))
    finally:
        runner.close()
    stopped_at = recorder.last_time if recorder.last_time is not None else plan.start
    if end.status == "completed" and on_progress is not None:
        on_progress(stopped_at)
    steps = int(round((stopped_at - plan.start) / plan.step))
    wall = time.perf_counter() - started
    cpu = time.thread_time() - cpu_started  # of the stepping loop
    fmu_time = None if runner.timing is None else runner.timing.fmu_time_s(steps)
    return RunResult(
        status=end.status,
        reason=end.reason,
        end_cause=end.end_cause,
        stopped_at=stopped_at,
        columns=recorder.columns(),
        units=recorder.units,
        steps=steps,
        wall_time_s=wall,
        step_size=spec.step_size,
        algorithm=spec.algorithm,
        setup_time_s=setup_time,
        cpu_time_s=cpu,
        master_overhead=None if fmu_time is None or cpu <= 0 else min(1.0, max(0.0, 1.0 - fmu_time / cpu)),
        fmu_time_s=fmu_time,
        parameters={port.signal: value for port, value in plan.parameters},
        fmus=system.describe(),
        notes=runner.notes,
        fmu_log=list(runner.log),
        batches=recorder.seq,
    )


def _blocks(
    runner: _Runner,
    recorder: Recorder,
    started: float,
    cancel: Callable[[], bool] | None,
    on_progress: Callable[[float], None] | None,
    on_block_start: Callable[[float, float], None] | None,
    wall_timeout_s: float | None,
) -> _End:
    """Blocks of points until an end; each block grows or shrinks towards ``CHUNK_TARGET_S``."""
    plan = runner.plan
    done, chunk = 0, FIRST_CHUNK  # done: steps every FMU has taken
    while True:
        rows = min(chunk, plan.steps - done)
        final = done + rows == plan.steps
        total = rows + 1 if final else rows  # the last point is an exchange without a step
        runner.fill(done, total)
        if on_block_start is not None:
            on_block_start(plan.time(done), plan.time(done + rows))
        marks = {name: i.problem_count for name, i in runner.instances.items()}
        block_started = time.perf_counter()
        failure = runner.execute(rows, final, done, marks)
        block_wall = time.perf_counter() - block_started
        event = runner.outcome(failure, done, rows, total, marks)
        kept = runner.seen(rows, total) if event is None else event.rows
        recorder.keep(runner.buffers.rows, done, kept, last=event is not None or final)
        if event is not None:
            return _End(event.status, event.end_cause, event.reason)
        done += rows
        if final:
            end = seconds(plan.time(done))
            if plan.end_cause == "timeout":
                limit = seconds(plan.time(done) - plan.start)
                return _End("failed", "timeout", f"the procedure did not end within its time limit of {limit} s")
            if plan.end_cause == "stop_time":
                return _End("completed", plan.end_cause, f"reached the stop time t={end} s")
            return _End("completed", plan.end_cause, f"reached the end of the profile at t={end} s")
        recorder.emit(False)
        if on_progress is not None:
            on_progress(plan.time(done))
        if cancel is not None and cancel():
            raise _Stop("cancelled", "cancelled", f"cancelled at t={seconds(recorder.last_time or plan.start)} s")
        if wall_timeout_s is not None and time.perf_counter() - started > wall_timeout_s:
            at = seconds(recorder.last_time or plan.start)
            raise _Stop(
                "failed", "timeout", f"the run exceeded its wall-time limit of {wall_timeout_s:g} s at t={at} s"
            )
        if block_wall < CHUNK_TARGET_S / 2:
            chunk = min(MAX_CHUNK, chunk * 2)
        elif block_wall > CHUNK_TARGET_S * 2:
            chunk = max(1, chunk // 2)

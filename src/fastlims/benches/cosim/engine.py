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

The fast path. Every FMI call of a block of up to ``MAX_CHUNK`` points is prepared once as a
tuple (raw function pointer, handle, value-reference array, count, pointer into a NumPy row
buffer); a block runs as ``next(filter(None, starmap(call, ops)))``, a loop in C that stops at
the first status other than OK. Outputs are read straight into the row buffer and connected
inputs set straight from it. Per block, NumPy fills in times and profile values, checks NaN/inf,
stop conditions and FMI 3 termination requests, and copies the recorded rows out; Python runs
no code per step.

A run ends with ``status="failed"`` and a reason naming the FMU, the call and the time, with
what the FMU logged, on: a status other than OK/warning, a NaN or inf read from an FMU, an
exception in ``on_batch``. A crash (SIGSEGV) kills the process: see :mod:`.isolated`.
"""

from __future__ import annotations

import ctypes
import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import starmap
from operator import call, length_hint
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from fmpy.fmi1 import FMICallException

from fastlims.benches.cosim.errors import CosimError
from fastlims.benches.cosim.instance import Instance
from fastlims.benches.cosim.plan import Plan, Profile, make_plan, seconds
from fastlims.benches.cosim.spec import SimulationSpec
from fastlims.benches.cosim.system import System

if TYPE_CHECKING:
    from fastlims.messaging.schemas import MetricsBatch

Status = Literal["completed", "failed", "cancelled"]
MAX_CHUNK = 1024  # points per block; the calls are prepared for this many rows
FIRST_CHUNK = 8  # the first block is short: a slow FMU reports progress early
CHUNK_TARGET_S = 0.02  # blocks grow or shrink towards this wall time (cancel, progress, metrics latency)
SAMPLE_EVERY = 4  # one block in this many starts with points timed call by call (the master's share)
SAMPLE_ROWS = 64  # points timed in such a block; the rest of it runs at full speed
WARNINGS_NOTED = 5
LOG_KEPT = 200


# --- what a run produces ------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """Consecutive recorded rows, handed to ``on_batch`` during a run.

    ``seq`` counts batches from 0 without gaps; ``first_row`` is the index of the first row in
    the run's results, so the batches concatenated in order are exactly the results. The
    arrays are copies the receiver may keep.
    """

    seq: int
    first_row: int
    time: np.ndarray
    signals: dict[str, np.ndarray]
    units: dict[str, str]

    @property
    def rows(self) -> int:
        return len(self.time)

    def to_message(self, *, run_id: str, test_uuid: str, t0_utc: str | None = None) -> MetricsBatch:
        """This batch as the MQTT ``MetricsBatch`` message (``…/runs/{run_id}/metrics``)."""
        from fastlims.messaging.schemas import MetricsBatch, SignalSeries

        return MetricsBatch(
            run_id=run_id,
            test_UUID=test_uuid,
            seq=self.seq,
            t0_utc=t0_utc,
            timestamps=self.time.tolist(),
            signals={
                name: SignalSeries(unit=self.units.get(name, ""), values=values.tolist())
                for name, values in self.signals.items()
            },
        )


@dataclass
class RunResult:
    """What a run did.

    ``status``: ``completed`` (it reached its end; ``end_cause`` says which: ``stop_time``,
    ``profile_end``, ``stop_condition``, ``fmu_terminated``), ``failed`` (``error``, ``nan``,
    ``crash``, ``timeout``, ``callback``; ``reason`` names the FMU, the call or signal, and the
    time) or ``cancelled``. ``columns``: ``time`` and one array per recorded signal
    (``FMU.variable``), every kept point up to ``stopped_at``; ``units`` per column. ``steps``:
    communication steps up to ``stopped_at``. ``master_overhead``: the share of the stepping loop's
    CPU time (``cpu_time_s``, this thread's: FMU code runs in it; ``setup_time_s`` is the wall time
    before the first step, loading and initializing the FMUs) not spent inside FMU code, estimated from
    points timed call by call (medians per call; the cost of a ctypes call itself counts as the
    master's); None when the run was too short to sample.
    """

    status: Status
    reason: str
    end_cause: str
    stopped_at: float
    columns: dict[str, np.ndarray]
    units: dict[str, str]
    steps: int
    wall_time_s: float
    step_size: float
    algorithm: str
    setup_time_s: float = 0.0
    cpu_time_s: float = 0.0
    master_overhead: float | None = None
    fmu_time_s: float | None = None
    parameters: dict[str, float | int | bool] = field(default_factory=dict)
    fmus: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fmu_log: list[str] = field(default_factory=list)
    batches: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @property
    def rows(self) -> int:
        return len(self.columns.get("time", ()))

    @property
    def steps_per_s(self) -> float:
        """Communication steps per second of the stepping loop (set-up excluded)."""
        loop = self.wall_time_s - self.setup_time_s
        return self.steps / loop if loop > 0 else math.inf


class _Stop(Exception):
    """Ends a run early (raised inside it, turned into its result)."""

    def __init__(self, status: Status, end_cause: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.end_cause, self.reason = status, end_cause, reason


@dataclass(frozen=True)
class _Event:
    """How a block ended a run: the outcome, and how many of its rows stand."""

    status: Status
    end_cause: str
    reason: str
    rows: int


# --- the prepared calls -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _CallInfo:
    fmu: str
    function: str  # "get", "set" or "doStep"
    what: str
    exchange: bool  # in the exchange (the row is incomplete if it fails) or in the step


@dataclass(frozen=True)
class _Template:
    """One call of a point: what stays the same for every row, and where the row's pointer goes."""

    info: _CallInfo
    head: tuple[Any, ...]
    where: int | Any = None  # a column of the row buffer, or a fixed buffer
    tail: tuple[Any, ...] = ()


class _Calls:
    """Every FMI call of a block of up to ``MAX_CHUNK`` points (plus a final exchange), prepared once.

    A call is a tuple ``(function, handle, *arguments)`` for ``operator.call``: raw function
    pointers, ``c_size_t`` counts, ``c_double`` times, and every pointer (the instance handle, the
    value-reference array, the cells of the row buffer the values go to or come from) as a
    ``byref`` argument object, which ctypes passes as it is; other ctypes objects would be
    converted on every call (about a third more time per call, measured).
    """

    def __init__(self, plan: Plan, instances: dict[str, Instance], algorithm: str, buffers: _Buffers) -> None:
        self._keep: list[Any] = []  # ctypes objects the calls point to
        self._buffers = buffers
        self._stride = buffers.rows.strides[0]
        # ctypes views of the NumPy buffers: byref(view, offset) points into them
        self._row_view = (ctypes.c_double * buffers.rows.size).from_buffer(buffers.rows)  # type: ignore[arg-type]
        self._flag_view = (ctypes.c_uint8 * buffers.flags.size).from_buffer(buffers.flags)  # type: ignore[arg-type]
        self._handles = {name: self._pointer_to(i.handle.value) for name, i in instances.items()}
        self.fmi3_column = {n: j for j, n in enumerate(n for n in plan.order if instances[n].fmi3)}
        self._instances = instances
        self._dt = self._kept(ctypes.c_double(plan.step))
        self._yes = self._kept(ctypes.c_bool(True))
        # FMI 3 doStep outputs nobody reads (earlyReturn is not allowed, no event mode).
        self._unread = [ctypes.byref(self._kept(x)) for x in (ctypes.c_bool(), ctypes.c_bool(), ctypes.c_double())]
        # One point's calls, in order; each becomes a call per row (only pointers into the row vary).
        self._templates: list[_Template] = []
        for name in plan.order:
            own = plan.profiles[name]
            if own:
                inputs = ", ".join(p.port.name for p in own)
                info = _CallInfo(name, "set", f"setting profile input(s) {inputs}", True)
                self._transfer(info, [p.port.value_reference for p in own], own[0].column)
            for group in plan.groups[name]:
                if not group.forward:
                    info = _CallInfo(group.source, "get", f"reading outputs for {name}", True)
                    self._transfer(info, group.source_vrs, group.column)
                info = _CallInfo(name, "set", f"setting input(s) {group.inputs} from {group.source}", True)
                self._transfer(info, group.target_vrs, group.column)
            block_start, block_vrs = plan.blocks[name]
            if block_vrs:
                self._transfer(_CallInfo(name, "get", "reading outputs", True), block_vrs, block_start)
        self.exchange_count = len(self._templates)
        for name in plan.order:
            if algorithm == "gauss_seidel":
                for group in plan.groups[name]:
                    if group.forward:  # the values of t_k+1: read after the source has stepped
                        scratch = self._kept((ctypes.c_double * len(group.connections))())
                        what = f"reading outputs for {name} (Gauss-Seidel)"
                        self._transfer(_CallInfo(group.source, "get", what, False), group.source_vrs, scratch)
                        what = f"setting input(s) {group.inputs} from {group.source} (Gauss-Seidel)"
                        self._transfer(_CallInfo(name, "set", what, False), group.target_vrs, scratch)
            instance = instances[name]
            function = instance.function("fmi3DoStep" if instance.fmi3 else "fmi2DoStep")
            self._templates.append(_Template(_CallInfo(name, "doStep", "doStep", False), (function, instance.handle)))

        self.full = _Program([(t, self._per_row(t)) for t in self._templates], self.exchange_count)
        # The same without the profile inputs, for blocks in which every profile value stays what it
        # was (a staircase profile): a call per step less.
        profiles = [t for t in self._templates if t.info.what.startswith("setting profile")]
        kept = [(t, calls) for t, calls in self.full.templates if t not in profiles]
        self.held = _Program(kept, self.exchange_count - len(profiles)) if profiles else self.full
        # A read of no value reference: what a prepared call costs with the FMU doing nothing.
        null = self._transfer(_CallInfo(plan.order[0], "get", "nothing", True), [], MAX_CHUNK, keep=False)
        self.null = self._build(null, MAX_CHUNK)

    def _transfer(self, info: _CallInfo, vrs: list[int], where: int | Any, keep: bool = True) -> _Template:
        """fmi2GetReal/fmi2SetReal(c, vrs, n, values); fmi3GetFloat64/fmi3SetFloat64(i, vrs, n, values, n)."""
        instance = self._instances[info.fmu]
        name = {
            "get": "GetFloat64" if instance.fmi3 else "GetReal",
            "set": "SetFloat64" if instance.fmi3 else "SetReal",
        }
        function = instance.function(("fmi3" if instance.fmi3 else "fmi2") + name[info.function])
        array = ctypes.byref(self._kept((ctypes.c_uint32 * max(1, len(vrs)))(*vrs)))
        count = self._kept(ctypes.c_size_t(len(vrs)))
        if not isinstance(where, int):
            where = ctypes.byref(where)
        head = (function, self._handles[info.fmu], array, count)
        template = _Template(info, head, where, (count,) if instance.fmi3 else ())
        if keep:
            self._templates.append(template)
        return template

    def _build(self, template: _Template, row: int) -> tuple[Any, ...]:
        if template.info.function != "doStep":
            where = template.where
            if isinstance(where, int):  # a cell of the row buffer
                where = ctypes.byref(self._row_view, row * self._stride + 8 * where)
            return (*template.head, where, *template.tail)
        time_arg = self._buffers.time_args[row]
        column = self.fmi3_column.get(template.info.fmu)
        if column is None:  # fmi2DoStep(c, t, h, noSetFMUStatePriorToCurrentPoint)
            return (*template.head, time_arg, self._dt, 1)
        terminate = ctypes.byref(self._flag_view, row * self._buffers.flags.strides[0] + column)
        # fmi3DoStep(i, t, h, noSetFMUStatePriorToCurrentPoint, *eventHandlingNeeded, *terminateSimulation,
        #            *earlyReturn, *lastSuccessfulTime)
        return (*template.head, time_arg, self._dt, self._yes, self._unread[0], terminate, *self._unread[1:])

    def _per_row(self, template: _Template) -> list[tuple[Any, ...]]:
        return [self._build(template, row) for row in range(MAX_CHUNK + 1)]

    def _pointer_to(self, address: int | None) -> Any:
        """A ``byref`` argument that passes ``address`` itself (an FMU's opaque instance handle)."""
        return ctypes.byref(self._kept((ctypes.c_char * 1).from_address(address or 0)))

    def _kept(self, obj: Any) -> Any:
        self._keep.append(obj)
        return obj


class _Program:
    """The calls of a block of points, laid out row after row (the exchange, then the step)."""

    def __init__(self, templates: list[tuple[_Template, list[tuple[Any, ...]]]], exchange_count: int) -> None:
        self.templates = templates
        self.exchange_count = exchange_count
        self.infos = [t.info for t, _ in templates]
        self.per_row = len(templates)
        self.flat = [calls[row] for row in range(MAX_CHUNK) for _, calls in templates]
        # Per row: its exchange alone (the run's last point has no step).
        self.final = [[calls[row] for _, calls in templates[:exchange_count]] for row in range(MAX_CHUNK + 1)]

    def block(self, rows: int, final: bool) -> list[tuple[Any, ...]]:
        calls = self.flat if rows == MAX_CHUNK else self.flat[: rows * self.per_row]
        return calls + self.final[rows] if final else calls

    def locate(self, index: int, rows: int) -> tuple[int, _CallInfo]:
        """The row and description of call ``index`` of a block of ``rows`` points."""
        row, position = divmod(index, self.per_row)
        return (row, self.infos[position]) if row < rows else (rows, self.infos[index - rows * self.per_row])


def _execute(calls: list[tuple[Any, ...]]) -> tuple[int, int]:
    """Make the calls until one returns a status other than OK: (its index, status), or (-1, 0)."""
    remaining = iter(calls)
    status = next(filter(None, starmap(call, remaining)), 0)
    return (len(calls) - length_hint(remaining) - 1, status) if status else (-1, 0)


def _execute_timed(calls: list[tuple[Any, ...]], durations: list[int]) -> tuple[int, int]:
    """:func:`_execute`, timing every call (ns, appended to ``durations``)."""
    clock = time.perf_counter_ns
    for index, prepared in enumerate(calls):
        started = clock()
        status = call(*prepared)
        durations.append(clock() - started)
        if status:
            return index, status
    return -1, 0


# --- the run --------------------------------------------------------------------------------------------


class _Buffers:
    """The row buffer the FMUs read from and write to, the times the doStep calls take (ctypes
    doubles living in a NumPy array, so a block's times are set in one assignment), and the FMI 3
    terminateSimulation flags, one per point and FMU."""

    def __init__(self, plan: Plan, fmi3_count: int) -> None:
        self.rows = np.zeros((MAX_CHUNK + 1, plan.width))
        self.times = np.zeros(MAX_CHUNK + 1)
        # ctypes accepts any writable buffer; NumPy arrays are one (the stubs do not say so)
        self.time_args = [ctypes.c_double.from_buffer(self.times, 8 * r) for r in range(MAX_CHUNK + 1)]  # type: ignore[arg-type]
        self.flags = np.zeros((MAX_CHUNK + 1, max(1, fmi3_count)), dtype=np.uint8)


class _Runner:
    """One run: set-up, then blocks of points until an end."""

    def __init__(self, system: System, spec: SimulationSpec, plan: Plan) -> None:
        self.system, self.spec, self.plan = system, spec, plan
        self.log: deque[str] = deque(maxlen=LOG_KEPT)
        self.instances: dict[str, Instance] = {}
        self.notes = list(plan.notes)
        self.warnings = 0
        self.buffers: _Buffers
        self.calls: _Calls
        self.program: _Program  # the calls of the block being run
        columns = [p.column for profiles in plan.profiles.values() for p in profiles]
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
        # Initial values before the first step: profiles at the start, then the connections along
        # the order, twice (the second sweep carries values around loops).
        for _sweep in range(2):
            for i in order:
                for profile in plan.profiles[i.name]:
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
        self.buffers = _Buffers(plan, sum(1 for i in order if i.fmi3))
        self.calls = _Calls(plan, self.instances, spec.algorithm, self.buffers)
        self.program = self.calls.full
        for profiles in plan.profiles.values():
            for profile in profiles:  # as set in initialization mode
                index = int(np.flatnonzero(self._profile_columns == profile.column)[0])
                self._profile_set[index] = self.profile_values(profile, np.array([plan.start]))[0]

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

    def calibrate(self) -> float:
        """Median cost (ns) of a prepared call in which the FMU does nothing, timed as the samples are."""
        clock, null = time.perf_counter_ns, self.calls.null
        costs = []
        for _ in range(101):
            started = clock()
            call(*null)
            costs.append(clock() - started)
        return float(sorted(costs)[50])

    def execute(
        self, calls: list[tuple[Any, ...]], rows: int, first_step: int, timed: int, durations: list[int]
    ) -> tuple[int, int] | None:
        """Make a block's calls, timing the first ``timed`` of them into ``durations``; warnings are
        noted and passed over. Returns the failing call (index, status), or None."""
        marks = {name: i.problem_count for name, i in self.instances.items()}
        start = 0
        while True:
            if start < timed:
                index, status = _execute_timed(calls[start:timed], durations)
                if index < 0:
                    start = timed
                    continue
            else:
                index, status = _execute(calls if start == 0 else calls[start:])
                if index < 0:
                    return None
            index += start
            if status != 1:
                return index, status
            self.warnings += 1
            if self.warnings <= WARNINGS_NOTED:
                row, info = self.program.locate(index, rows)
                logged = self.instances[info.fmu].logged_since(marks[info.fmu]) or "(nothing logged)"
                at = seconds(self.plan.time(first_step + row))
                self.notes.append(f"FMU {info.fmu!r} warned in {info.what} at t={at} s: {logged}")
            start = index + 1

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
            index, status = failure
            row, info = self.program.locate(index, rows)
            instance = self.instances[info.fmu]
            at = seconds(plan.time(first_step + row))
            valid = row if info.exchange else row + 1
            scan = min(row + 1, total)
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
                    event = _Event(
                        "completed",
                        "fmu_terminated",
                        f"FMU {info.fmu!r} asked to end the simulation in the step from t={at} s",
                        valid,
                    )
                else:
                    text += " (it could not complete the step; the master does not retry with a smaller one)"
            if event is None:
                event = _Event("failed", "error", text + (f": {logged}" if logged else ""), valid)
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
        if scan > 0 and plan.width > 1:
            finite = np.isfinite(data[:scan, 1 : plan.width])
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


class _Recorder:
    """The recorded rows (growing) and their delivery to ``on_batch``."""

    def __init__(
        self,
        plan: Plan,
        decimation: int,
        on_batch: Callable[[Batch], None] | None,
        batch_rows: int | None,
        batch_every_s: float | None,
    ) -> None:
        self.names = list(plan.signals)
        self.units = {"time": "s", **{name: unit for name, (_, unit) in plan.signals.items()}}
        self._columns = np.array([0, *(column for column, _ in plan.signals.values())], dtype=np.intp)
        self.data = np.empty((max(16, min(plan.steps // decimation + 2, 1 << 16)), len(self._columns)))
        self.count = 0
        self.decimation = decimation
        self.on_batch, self.batch_rows, self.batch_every_s = on_batch, batch_rows, batch_every_s
        self.emitted = 0
        self.seq = 0
        self._last_emit = time.perf_counter()
        self._tail: np.ndarray | None = None  # the last point of the previous block, kept or not

    def keep(self, rows: np.ndarray, first_step: int, valid: int, last: bool) -> None:
        """Keep every decimation-th of the block's first ``valid`` rows, and the last one if the run ends."""
        chosen = np.arange((-first_step) % self.decimation, valid, self.decimation)
        if last and valid and (chosen.size == 0 or chosen[-1] != valid - 1):
            chosen = np.append(chosen, valid - 1)
        picked = rows[chosen][:, self._columns]
        if last and not valid and self._tail is not None and (self.count == 0 or self._tail[0] > self.last_time):
            picked = self._tail[None, :]  # the run ended right after the previous block: keep its last point
        if valid:
            self._tail = rows[valid - 1, self._columns].copy()
        if not len(picked):
            return
        needed = self.count + len(picked)
        if needed > len(self.data):
            grown = np.empty((max(needed, 2 * len(self.data)), self.data.shape[1]))
            grown[: self.count] = self.data[: self.count]
            self.data = grown
        self.data[self.count : needed] = picked
        self.count = needed

    @property
    def last_time(self) -> float | None:
        return float(self.data[self.count - 1, 0]) if self.count else None

    def emit(self, force: bool) -> None:
        """Hand out what is due: full batches of ``batch_rows``, or everything every
        ``batch_every_s``; with ``force``, everything left."""
        if self.on_batch is None:
            return
        while self.emitted < self.count:
            pending = self.count - self.emitted
            if self.batch_rows is not None:
                take = min(self.batch_rows, pending)
                if take < self.batch_rows and not force:
                    return
            elif force or time.perf_counter() - self._last_emit >= (self.batch_every_s or 0.0):
                take = pending
            else:
                return
            block = self.data[self.emitted : self.emitted + take]
            batch = Batch(
                seq=self.seq,
                first_row=self.emitted,
                time=block[:, 0].copy(),
                signals={name: block[:, j + 1].copy() for j, name in enumerate(self.names)},
                units={name: self.units[name] for name in self.names},
            )
            self.emitted += take
            self.seq += 1
            self._last_emit = time.perf_counter()
            try:
                self.on_batch(batch)
            except Exception as exc:
                raise _Stop("failed", "callback", f"the metrics callback (on_batch) raised {exc!r}") from exc

    def columns(self) -> dict[str, np.ndarray]:
        data = np.ascontiguousarray(self.data[: self.count].T)
        return {"time": data[0], **{name: data[j + 1] for j, name in enumerate(self.names)}}


def run(
    system: System,
    spec: SimulationSpec,
    on_batch: Callable[[Batch], None] | None = None,
    *,
    batch_rows: int | None = None,
    batch_every_s: float | None = None,
    cancel: Callable[[], bool] | None = None,
    on_progress: Callable[[float], None] | None = None,
    on_block_start: Callable[[float, float], None] | None = None,
    wall_timeout_s: float | None = None,
) -> RunResult:
    """Simulate ``spec`` on ``system`` with fresh instances (freed at the end); see the module doc.

    ``on_batch`` receives the recorded rows as :class:`Batch` es, every row exactly once, in
    order: ``batch_rows`` rows each (the last may be shorter), or whatever accumulated every
    ``batch_every_s`` of wall time (default 0.5 s). Between blocks of steps (about every 20 ms)
    ``cancel`` is asked and ``on_progress`` told the simulated time every FMU has reached;
    ``on_block_start`` gets the first and last point of each block before it runs (to place a
    crash). ``wall_timeout_s`` fails a run that takes longer. Raises :class:`CosimError` for a
    spec that cannot run on this system, before any FMU is instantiated; whatever goes wrong
    while simulating is in the result.
    """
    if batch_rows is not None and batch_rows < 1:
        raise CosimError([f"batch_rows must be at least 1, got {batch_rows}"])
    if batch_every_s is not None and not batch_every_s > 0:
        raise CosimError([f"batch_every_s must be positive, got {batch_every_s}"])
    started = time.perf_counter()
    plan = make_plan(system, spec)
    runner = _Runner(system, spec, plan)
    every = None if batch_rows is not None else (batch_every_s or 0.5)
    recorder = _Recorder(plan, spec.decimation, on_batch, batch_rows, every)
    status: Status = "completed"
    end_cause, reason = plan.end_cause, ""
    setup_time = 0.0
    cpu_started = time.thread_time()
    floor_ns = 0.0
    samples: list[float] = []  # per sampled block: ns a point spends inside the FMUs
    try:
        try:
            runner.start()
            floor_ns = runner.calibrate()
            setup_time = time.perf_counter() - started
            cpu_started = time.thread_time()
            done, chunk, block = 0, FIRST_CHUNK, 0  # done: steps every FMU has taken
            while True:
                rows = min(chunk, plan.steps - done)
                final = done + rows == plan.steps
                total = rows + 1 if final else rows  # the last point is an exchange without a step
                runner.fill(done, total)
                if on_block_start is not None:
                    on_block_start(plan.time(done), plan.time(done + rows))
                timed = min(rows, SAMPLE_ROWS) if block % SAMPLE_EVERY == 1 else 0
                marks = {name: i.problem_count for name, i in runner.instances.items()}
                block_started = time.perf_counter()
                durations: list[int] = []
                program = runner.program
                failure = runner.execute(program.block(rows, final), rows, done, timed * program.per_row, durations)
                block_wall = time.perf_counter() - block_started
                if timed and failure is None:  # per call, its median (a preempted call does not count) less its cost
                    medians = np.median(np.reshape(durations, (timed, program.per_row)), axis=0)
                    samples.append(float(np.clip(medians - floor_ns, 0.0, None).sum()))
                event = runner.outcome(failure, done, rows, total, marks)
                kept = total if event is None else event.rows
                recorder.keep(runner.buffers.rows, done, kept, last=event is not None or final)
                if event is not None:
                    status, end_cause, reason = event.status, event.end_cause, event.reason
                    break
                done += rows
                if final:
                    end = seconds(plan.time(done))
                    reason = (
                        f"reached the stop time t={end} s"
                        if end_cause == "stop_time"
                        else f"reached the end of the profile at t={end} s"
                    )
                    break
                recorder.emit(False)
                if on_progress is not None:
                    on_progress(plan.time(done))
                if cancel is not None and cancel():
                    raise _Stop(
                        "cancelled", "cancelled", f"cancelled at t={seconds(recorder.last_time or plan.start)} s"
                    )
                if wall_timeout_s is not None and time.perf_counter() - started > wall_timeout_s:
                    at = seconds(recorder.last_time or plan.start)
                    raise _Stop(
                        "failed", "timeout", f"the run exceeded its wall-time limit of {wall_timeout_s:g} s at t={at} s"
                    )
                block += 1
                if block_wall < CHUNK_TARGET_S / 2:
                    chunk = min(MAX_CHUNK, chunk * 2)
                elif block_wall > CHUNK_TARGET_S * 2:
                    chunk = max(1, chunk // 2)
        except _Stop as stop:
            status, end_cause, reason = stop.status, stop.end_cause, stop.reason
        try:
            recorder.emit(True)
        except _Stop as stop:
            status, end_cause, reason = stop.status, stop.end_cause, stop.reason
    finally:
        runner.close()
    stopped_at = recorder.last_time if recorder.last_time is not None else plan.start
    if status == "completed" and on_progress is not None:
        on_progress(stopped_at)
    steps = int(round((stopped_at - plan.start) / plan.step))
    wall = time.perf_counter() - started
    cpu = time.thread_time() - cpu_started  # of the stepping loop
    fmu_time = None
    if samples:
        fmu_time = statistics.median(samples) * steps / 1e9
    return RunResult(
        status=status,
        reason=reason,
        end_cause=end_cause,
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

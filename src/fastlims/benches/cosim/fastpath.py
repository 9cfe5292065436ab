"""The fast path of the co-simulation master: every FMI call of a block of points prepared once,
and made from a loop in C.

Every call of a block of up to :data:`MAX_CHUNK` points is prepared once as a tuple (raw function
pointer, handle, value-reference array, count, pointer into a NumPy row buffer); a block runs as
``next(filter(None, starmap(call, ops)))``, a loop in C that stops at the first status other than
OK. Outputs are read straight into the row buffer and connected inputs set straight from it, so
Python runs no code per step. This module is the one place where these per-row calls are built
(:class:`PreparedCalls`) and made (:func:`run_block`); the master (:mod:`.engine`) fills the row
buffer per block and reads what the calls left in it.

A point's calls, in order: the exchange (FMU by FMU: profile inputs, connected inputs, outputs
read), then the :class:`RowCall` s (the seam for a closed-loop controller: one prepared call per
row, after the exchange's reads and before the steps), then the steps (Gauss-Seidel reads and
sets, doStep). :class:`MasterTiming` times a few points call by call to estimate the master's
share of the loop.
"""

from __future__ import annotations

import ctypes
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import starmap
from operator import call, length_hint
from typing import Any

import numpy as np

from fastlims.benches.cosim.instance import Instance
from fastlims.benches.cosim.plan import Plan

MAX_CHUNK = 1024  # points per block; the calls are prepared for this many rows
SAMPLE_EVERY = 4  # one block in this many starts with points timed call by call (the master's share)
SAMPLE_ROWS = 64  # points timed in such a block; the rest of it runs at full speed


@dataclass(frozen=True)
class CallInfo:
    fmu: str  # the FMU called, or a row call's name
    function: str  # "get", "set", "doStep", or "call" (a row call)
    what: str
    exchange: bool  # in the exchange (the row is incomplete if it fails) or after it


@dataclass(frozen=True)
class RowCall:
    """One more prepared call per point, made after the exchange has read every output into the
    row and before the first doStep (or, with ``after_step``, after the last doStep, when the FMUs
    are at the next point and may take its inputs): ``function(state, row)``, ``row`` pointing at
    the point's first cell (``double *``: column 0 is the time, then the columns of
    :class:`~.plan.Plan`).

    This is the seam for code that runs in the loop beside the FMUs (a closed-loop controller):
    ``function`` is a raw C function pointer (or any ctypes function taking two pointers and
    returning an int status), ``state`` its first argument as a ``byref`` (or ``c_void_p``)
    argument object. It returns a status as the FMUs do: 0 OK, 1 a warning (noted, the run goes
    on), anything else fails the run with a reason naming ``name``. The run's last point is an
    exchange without a step, so it has no row call.
    """

    name: str
    function: Any
    state: Any
    after_step: bool = False


@dataclass(frozen=True)
class Template:
    """One call of a point: what stays the same for every row, and where the row's pointer goes."""

    info: CallInfo
    head: tuple[Any, ...]
    where: int | Any = None  # a column of the row buffer, or a fixed buffer
    tail: tuple[Any, ...] = ()


class PreparedCalls:
    """Every FMI call of a block of up to ``MAX_CHUNK`` points (plus a final exchange), prepared once.

    A call is a tuple ``(function, handle, *arguments)`` for ``operator.call``: raw function
    pointers, ``c_size_t`` counts, ``c_double`` times, and every pointer (the instance handle, the
    value-reference array, the cells of the row buffer the values go to or come from) as a
    ``byref`` argument object, which ctypes passes as it is; other ctypes objects would be
    converted on every call (about a third more time per call, measured).
    """

    def __init__(
        self,
        plan: Plan,
        instances: dict[str, Instance],
        algorithm: str,
        buffers: RowBuffers,
        row_calls: Sequence[RowCall] = (),
    ) -> None:
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
        self._templates: list[Template] = []
        for name in plan.order:
            own = [p for p in plan.profiles[name] if not p.controlled]  # a controller sets the others
            if own:
                inputs = ", ".join(p.port.name for p in own)
                info = CallInfo(name, "set", f"setting profile input(s) {inputs}", True)
                self._transfer(info, [p.port.value_reference for p in own], own[0].column)
            for group in plan.groups[name]:
                if not group.forward:
                    info = CallInfo(group.source, "get", f"reading outputs for {name}", True)
                    self._transfer(info, group.source_vrs, group.column)
                info = CallInfo(name, "set", f"setting input(s) {group.inputs} from {group.source}", True)
                self._transfer(info, group.target_vrs, group.column)
            block_start, block_vrs = plan.blocks[name]
            if block_vrs:
                self._transfer(CallInfo(name, "get", "reading outputs", True), block_vrs, block_start)
        self.exchange_count = len(self._templates)
        # The seam: calls that read (and may write) the complete row before any FMU steps.
        for extra in row_calls:
            if not extra.after_step:
                info = CallInfo(extra.name, "call", f"the row call {extra.name!r}", False)
                self._templates.append(Template(info, (extra.function, extra.state), 0))
        for name in plan.order:
            if algorithm == "gauss_seidel":
                for group in plan.groups[name]:
                    if group.forward:  # the values of t_k+1: read after the source has stepped
                        scratch = self._kept((ctypes.c_double * len(group.connections))())
                        what = f"reading outputs for {name} (Gauss-Seidel)"
                        self._transfer(CallInfo(group.source, "get", what, False), group.source_vrs, scratch)
                        what = f"setting input(s) {group.inputs} from {group.source} (Gauss-Seidel)"
                        self._transfer(CallInfo(name, "set", what, False), group.target_vrs, scratch)
            instance = instances[name]
            function = instance.function("fmi3DoStep" if instance.fmi3 else "fmi2DoStep")
            self._templates.append(Template(CallInfo(name, "doStep", "doStep", False), (function, instance.handle)))
        for extra in row_calls:
            if extra.after_step:
                info = CallInfo(extra.name, "call", f"the row call {extra.name!r}", False)
                self._templates.append(Template(info, (extra.function, extra.state), 0))

        self.full = Program([(t, self._per_row(t)) for t in self._templates], self.exchange_count)
        # The same without the profile inputs, for blocks in which every profile value stays what it
        # was (a staircase profile): a call per step less.
        profiles = [t for t in self._templates if t.info.what.startswith("setting profile")]
        kept = [(t, calls) for t, calls in self.full.templates if t not in profiles]
        self.held = Program(kept, self.exchange_count - len(profiles)) if profiles else self.full
        # A read of no value reference: what a prepared call costs with the FMU doing nothing.
        null = self._transfer(CallInfo(plan.order[0], "get", "nothing", True), [], MAX_CHUNK, keep=False)
        self.null = self._build(null, MAX_CHUNK)

    def _transfer(self, info: CallInfo, vrs: list[int], where: int | Any, keep: bool = True) -> Template:
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
        template = Template(info, head, where, (count,) if instance.fmi3 else ())
        if keep:
            self._templates.append(template)
        return template

    def _build(self, template: Template, row: int) -> tuple[Any, ...]:
        if template.info.function != "doStep":
            where = template.where
            if isinstance(where, int):  # a cell of the row buffer (column 0 for a row call: the whole row)
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

    def _per_row(self, template: Template) -> list[tuple[Any, ...]]:
        return [self._build(template, row) for row in range(MAX_CHUNK + 1)]

    def _pointer_to(self, address: int | None) -> Any:
        """A ``byref`` argument that passes ``address`` itself (an FMU's opaque instance handle)."""
        return ctypes.byref(self._kept((ctypes.c_char * 1).from_address(address or 0)))

    def _kept(self, obj: Any) -> Any:
        self._keep.append(obj)
        return obj


class Program:
    """The calls of a block of points, laid out row after row (the exchange, the row calls, then
    the step)."""

    def __init__(self, templates: list[tuple[Template, list[tuple[Any, ...]]]], exchange_count: int) -> None:
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

    def locate(self, index: int, rows: int) -> tuple[int, CallInfo]:
        """The row and description of call ``index`` of a block of ``rows`` points."""
        row, position = divmod(index, self.per_row)
        return (row, self.infos[position]) if row < rows else (rows, self.infos[index - rows * self.per_row])


class RowBuffers:
    """The row buffer the FMUs read from and write to, the times the doStep calls take (ctypes
    doubles living in a NumPy array, so a block's times are set in one assignment), and the FMI 3
    terminateSimulation flags, one per point and FMU."""

    def __init__(self, plan: Plan, fmi3_count: int) -> None:
        self.rows = np.zeros((MAX_CHUNK + 1, plan.width))
        self.times = np.zeros(MAX_CHUNK + 1)
        # ctypes accepts any writable buffer; NumPy arrays are one (the stubs do not say so)
        self.time_args = [ctypes.c_double.from_buffer(self.times, 8 * r) for r in range(MAX_CHUNK + 1)]  # type: ignore[arg-type]
        self.flags = np.zeros((MAX_CHUNK + 1, max(1, fmi3_count)), dtype=np.uint8)


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


def run_block(
    calls: list[tuple[Any, ...]], timed: int, durations: list[int], warned: Callable[[int], None]
) -> tuple[int, int] | None:
    """Make a block's calls, timing the first ``timed`` of them into ``durations``. A warning
    (status 1) is passed to ``warned`` with the call's index and the calls go on. Returns the
    failing call (index, status), or None."""
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
        warned(index)
        start = index + 1


class MasterTiming:
    """How much of the stepping loop's time the master takes, estimated while it runs.

    One block in :data:`SAMPLE_EVERY` starts with :data:`SAMPLE_ROWS` points timed call by call.
    Per call, its median over those points (a preempted call does not count) less the cost of a
    prepared call in which the FMU does nothing (the ``null`` call, calibrated once) is time
    inside FMU code; the rest of the loop's CPU time is the master's.
    """

    def __init__(self, null: tuple[Any, ...]) -> None:
        self.floor_ns = _median_cost(null)
        self.samples: list[float] = []  # per sampled block: ns a point spends inside the FMUs
        self.blocks = 0

    def execute(
        self, program: Program, rows: int, final: bool, warned: Callable[[int], None]
    ) -> tuple[int, int] | None:
        """:func:`run_block` on ``program``'s block of ``rows`` points, timed when its turn comes."""
        timed = min(rows, SAMPLE_ROWS) if self.blocks % SAMPLE_EVERY == 1 else 0
        self.blocks += 1
        durations: list[int] = []
        failure = run_block(program.block(rows, final), timed * program.per_row, durations, warned)
        if timed and failure is None:  # per call, its median less its cost
            medians = np.median(np.reshape(durations, (timed, program.per_row)), axis=0)
            self.samples.append(float(np.clip(medians - self.floor_ns, 0.0, None).sum()))
        return failure

    def fmu_time_s(self, steps: int) -> float | None:
        """Estimated time inside FMU code over ``steps`` points; None when nothing was sampled."""
        return statistics.median(self.samples) * steps / 1e9 if self.samples else None


def _median_cost(null: tuple[Any, ...]) -> float:
    """Median cost (ns) of the prepared ``null`` call, timed as the samples are."""
    clock = time.perf_counter_ns
    costs = []
    for _ in range(101):
        started = clock()
        call(*null)
        costs.append(clock() - started)
    return float(sorted(costs)[50])

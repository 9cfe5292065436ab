"""What a co-simulation run produces: the recorded rows (:class:`Recorder`), handed out during
the run as :class:`Batch` es, and the :class:`RunResult` at its end. Plain data and NumPy; no FMU
is called here (that is :mod:`.fastpath`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from fastlims.benches.cosim.plan import Plan

if TYPE_CHECKING:
    from fastlims.messaging.schemas import MetricsBatch

Status = Literal["completed", "failed", "cancelled"]


MAX_BATCH_ROWS = 10_000  # rows in a batch handed out by wall time (a MetricsBatch of a few MB at most)


class BatchCallbackError(Exception):
    """``on_batch`` raised: the run ends ``failed`` with end cause ``callback`` and this message."""


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
        """This batch as the MQTT ``MetricsBatch`` message (``…/benches/{bench}/runs/{run_id}/metrics``)."""
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
    row_count: int | None = None  # the rows a run handed out when its columns were not kept (streamed)

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    @property
    def rows(self) -> int:
        kept = len(self.columns.get("time", ()))
        return kept if kept or self.row_count is None else self.row_count

    @property
    def steps_per_s(self) -> float:
        """Communication steps per second of the stepping loop (set-up excluded)."""
        loop = self.wall_time_s - self.setup_time_s
        return self.steps / loop if loop > 0 else math.inf


class Recorder:
    """The recorded rows (growing) and their delivery to ``on_batch``."""

    def __init__(
        self,
        plan: Plan,
        decimation: int,
        on_batch: Callable[[Batch], None] | None,
        batch_rows: int | None,
        batch_every_s: float | None,
        *,
        record_column: int | None = None,
    ) -> None:
        self.record_column = record_column  # keep the rows whose cell there is non-zero (else decimation)
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
        """Keep every decimation-th of the block's first ``valid`` rows (or those its record column
        marks), and the last one if the run ends."""
        if self.record_column is not None:
            chosen = np.flatnonzero(rows[:valid, self.record_column])
        else:
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
        ``batch_every_s`` in batches of at most :data:`MAX_BATCH_ROWS` (a simulation far faster
        than real time would otherwise hand out one huge batch, or thousands of small ones);
        with ``force``, everything left."""
        if self.on_batch is None:
            return
        while self.emitted < self.count:
            pending = self.count - self.emitted
            if self.batch_rows is not None:
                take = min(self.batch_rows, pending)
                if take < self.batch_rows and not force:
                    return
            elif (
                force
                or pending >= MAX_BATCH_ROWS
                or time.perf_counter() - self._last_emit >= (self.batch_every_s or 0.0)
            ):
                take = min(pending, MAX_BATCH_ROWS)
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
                raise BatchCallbackError(f"the metrics callback (on_batch) raised {exc!r}") from exc

    def columns(self) -> dict[str, np.ndarray]:
        data = np.ascontiguousarray(self.data[: self.count].T)
        return {"time": data[0], **{name: data[j + 1] for j, name in enumerate(self.names)}}

"""Running a simulation in a child process, so that an FMU that crashes (SIGSEGV, abort) fails
one run instead of killing the worker.

The child loads the system and runs it; batches of recorded rows come back over a pipe as they
are produced (the parent hands them to ``on_batch`` and keeps them: they are the results), the
simulated time reached is shared after every block of steps, and cancel is a shared event. When
the child dies without a result, the run fails with the signal and the last time it reported.
"""

from __future__ import annotations

import math
import multiprocessing
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from fastlims.benches.cosim.engine import run
from fastlims.benches.cosim.errors import CosimError
from fastlims.benches.cosim.recording import Batch, RunResult
from fastlims.benches.cosim.spec import SimulationSpec
from fastlims.benches.cosim.system import load_system

FmuPaths = Mapping[str, Path | str] | Iterable[Path | str]


def simulate(
    fmus: FmuPaths,
    connections: object,
    spec: SimulationSpec,
    on_batch: Callable[[Batch], None] | None = None,
    *,
    work_dir: Path | None = None,
    **options: Any,
) -> RunResult:
    """Load the system (unpacking into ``work_dir``, default a temporary folder), run ``spec`` once
    (``options`` as :func:`~.engine.run`), unload it."""
    with load_system(fmus, connections, work_dir=work_dir) as system:
        return run(system, spec, on_batch, **options)


def _child(
    pipe: Connection,
    fmus: FmuPaths,
    connections: object,
    spec: SimulationSpec,
    batch_rows: int | None,
    batch_every_s: float | None,
    progress: Any,
    block: Any,
    stop: Any,
    work_dir: Path,
) -> None:
    def send_batch(batch: Batch) -> None:
        pipe.send(("batch", batch))

    def reached(t: float) -> None:
        progress.value = t

    def block_start(first: float, last: float) -> None:
        block[0], block[1] = first, last

    try:
        result = simulate(
            fmus, connections, spec, send_batch, work_dir=work_dir,
            batch_rows=batch_rows, batch_every_s=batch_every_s, cancel=stop.is_set, on_progress=reached,
            on_block_start=block_start,
        )  # fmt: skip
        # The rows came as batches; only a run without any sends its (empty) columns.
        pipe.send(("result", replace(result, columns={}) if result.batches else result))
    except CosimError as exc:
        pipe.send(("invalid", exc))
    except BaseException:  # noqa: BLE001 - reported to the parent, which decides
        pipe.send(("exception", traceback.format_exc()))
    finally:
        pipe.close()


def run_in_subprocess(
    fmus: FmuPaths,
    connections: object,
    spec: SimulationSpec,
    on_batch: Callable[[Batch], None] | None = None,
    *,
    batch_rows: int | None = None,
    batch_every_s: float | None = None,
    cancel: Callable[[], bool] | None = None,
    on_progress: Callable[[float], None] | None = None,
    timeout_s: float | None = None,
    grace_s: float = 5.0,
    start_method: str = "spawn",
) -> RunResult:
    """Like :func:`simulate`, in a child process (``spawn`` by default: safe in a threaded worker).

    ``on_batch`` and ``on_progress`` run in this process, ``cancel`` is polled here (about every
    50 ms) and passed on. ``timeout_s`` (wall time) and a cancel that the child does not honour
    within ``grace_s`` kill it. A child that dies without a result (an FMU crashed it) gives a
    failed result: "the simulation process died with SIGSEGV at t≈… s", with the rows received
    until then. Raises :class:`CosimError` for an invalid system or spec, as :func:`simulate`.
    """
    context: Any = multiprocessing.get_context(start_method)
    receiver, sender = context.Pipe(duplex=False)
    progress = context.RawValue("d", math.nan)  # simulated time reached (every point before it is done)
    block = context.RawArray("d", [math.nan, math.nan])  # the points of the block being run
    stop = context.Event()
    # Made here and removed here: a child that crashes cannot clean up after itself.
    work_dir = Path(tempfile.mkdtemp(prefix="fastlims-cosim-"))
    started = time.perf_counter()
    child = context.Process(
        target=_child,
        args=(
            sender,
            fmus,
            connections,
            spec,
            batch_rows,
            batch_every_s or (None if batch_rows else 0.5),
            progress,
            block,
            stop,
            work_dir,
        ),
        name="fastlims-cosim",
        daemon=True,
    )
    child.start()
    sender.close()
    batches: list[Batch] = []
    outcome: tuple[str, Any] | None = None
    stop_asked_at: float | None = None
    stop_cause: tuple[str, str, str] | None = None  # status, end_cause, reason when we had to stop it
    last_progress = math.nan
    try:
        while True:
            if receiver.poll(0.05):
                try:
                    kind, payload = receiver.recv()
                except EOFError:
                    break
                if kind == "batch":
                    if batches and payload.seq != batches[-1].seq + 1:
                        raise RuntimeError(f"metrics batch {payload.seq} arrived after {batches[-1].seq}")
                    batches.append(payload)
                    if on_batch is not None and stop_cause is None:
                        try:
                            on_batch(payload)
                        except Exception as exc:  # noqa: BLE001 - ends the run, as in-process
                            stop_cause = ("failed", "callback", f"the metrics callback (on_batch) raised {exc!r}")
                            stop.set()
                            stop_asked_at = time.perf_counter()
                    # no `continue`: a child sending batches without a pause must still meet its
                    # cancel, its wall-time limit and the progress reports below
                else:
                    outcome = (kind, payload)
                    break
            reached = progress.value
            if on_progress is not None and not math.isnan(reached) and reached != last_progress:
                last_progress = reached
                on_progress(reached)
            if not child.is_alive() and not receiver.poll(0):
                break
            now = time.perf_counter()
            if stop_asked_at is None:
                if cancel is not None and cancel():
                    stop.set()
                    stop_asked_at = now
                elif timeout_s is not None and now - started > timeout_s:
                    stop_cause = ("failed", "timeout", f"the run exceeded its wall-time limit of {timeout_s:g} s")
                    stop.set()
                    stop_asked_at = now
            elif now - stop_asked_at > grace_s and child.is_alive():
                child.kill()
    finally:
        receiver.close()
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
            child.join()
        shutil.rmtree(work_dir, ignore_errors=True)

    final_progress = progress.value
    if on_progress is not None and not math.isnan(final_progress) and final_progress != last_progress:
        on_progress(final_progress)
    columns = _columns(batches)
    last_t = float(columns["time"][-1]) if columns.get("time") is not None and len(columns["time"]) else math.nan
    reached = progress.value
    if outcome is not None and outcome[0] == "invalid":
        raise outcome[1]
    if outcome is not None and outcome[0] == "result":
        result: RunResult = outcome[1]
        result = replace(result, columns=columns or result.columns)
        if stop_cause is not None:
            status, cause, reason = stop_cause
            result = replace(result, status=status, end_cause=cause, reason=f"{reason}; {result.reason}")  # type: ignore[arg-type]
        return result
    at = reached if not math.isnan(reached) else last_t
    where = f"t≈{at:.10g} s" if not math.isnan(at) else "before the first step"
    if not math.isnan(block[0]):
        where += f" (in a step between t={block[0]:.10g} s and t={block[1]:.10g} s)"
    if outcome is not None:  # an exception in the child that is not the FMUs' doing
        status, cause, reason = (
            "failed",
            "error",
            f"the simulation process raised an exception at {where}:\n{outcome[1]}",
        )
    elif stop_cause is not None:
        status, cause, reason = stop_cause[0], stop_cause[1], f"{stop_cause[2]}; the process was stopped at {where}"
    elif stop_asked_at is not None:
        status, cause, reason = "cancelled", "cancelled", f"cancelled; the process was stopped at {where}"
    else:
        code = child.exitcode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            how = f"died with {name}"
        else:
            how = f"exited with code {code} without a result"
        status, cause = "failed", "crash"
        reason = (
            f"the simulation process {how} at {where}: an FMU crashed it (a crash takes the whole process, so "
            "which FMU and the exact time are not known; try the FMUs alone to find it)"
        )
    units = dict(batches[-1].units) if batches else {}
    return RunResult(
        status=status,  # type: ignore[arg-type]
        reason=reason,
        end_cause=cause,
        stopped_at=last_t if not math.isnan(last_t) else spec.start_time,
        columns=columns,
        units={"time": "s", **units},
        steps=int(round((last_t - spec.start_time) / spec.step_size)) if not math.isnan(last_t) else 0,
        wall_time_s=time.perf_counter() - started,
        step_size=spec.step_size,
        algorithm=spec.algorithm,
        parameters=dict(spec.parameters),
        batches=len(batches),
    )


def _columns(batches: list[Batch]) -> dict[str, np.ndarray]:
    if not batches:
        return {}
    columns = {"time": np.concatenate([b.time for b in batches])}
    for name in batches[0].signals:
        columns[name] = np.concatenate([b.signals[name] for b in batches])
    return columns

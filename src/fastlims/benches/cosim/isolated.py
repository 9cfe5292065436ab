"""Running a simulation in a sandboxed child process, so that an FMU fails one run instead of the
worker, and reaches nothing of the LIMS host.

The child is a fresh interpreter (:mod:`.child`) with a clean environment (no ``FASTLIMS_*``, no
credentials), confined by :mod:`fastlims.benches.sandbox` before it loads an FMU: it reads copies
of its FMUs and writes one scratch folder, both in a run folder made here and removed here (a child
that crashes cannot clean up after itself). Batches of recorded rows come back as they are produced
in :mod:`.channel` frames (never pickle; the parent hands them to ``on_batch`` and keeps them only
with ``keep_rows``), the simulated time reached is shared after every block of steps, cancel is a
message on the control pipe. When the child dies without a result, the run fails with the signal
(a sandbox limit named as such) and the last time it reported.
"""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from fastlims.benches.cosim import channel
from fastlims.benches.cosim.engine import run
from fastlims.benches.cosim.errors import CosimError
from fastlims.benches.cosim.recording import Batch, RunResult
from fastlims.benches.cosim.spec import SimulationSpec
from fastlims.benches.cosim.system import load_system
from fastlims.benches.sandbox.confine import exposes, runtime_paths, world_reachable
from fastlims.benches.sandbox.policy import NOBODY, Limits, Policy

FmuPaths = Mapping[str, Path | str] | Iterable[Path | str]
# What the child's environment holds: nothing of the parent's (no secrets, no FASTLIMS_*).
_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_BOOT = "import json, sys; sys.path[:0] = json.loads(sys.argv[1]); from fastlims.benches.cosim.child import main; " \
        "sys.exit(main(sys.argv[2:]))"  # fmt: skip
_LIMIT_SIGNALS = {
    signal.SIGXCPU: "its CPU-time limit of {cpu} s (FASTLIMS_VIRTUAL_BENCH_CPU_S)",
    signal.SIGXFSZ: "its file-size limit of {file} bytes (FASTLIMS_VIRTUAL_BENCH_FILE_SIZE_MB)",
}


@dataclass(frozen=True)
class Sandbox:
    """How to confine the simulation children (:mod:`fastlims.benches.sandbox.policy`): ``mode``
    (``namespaces``, ``landlock`` or ``none``), their ``limits``, the paths that must stay out of
    their reach (``deny``), and the uid a root parent's child runs as."""

    mode: str = "none"
    limits: Limits = field(default_factory=Limits)
    deny: tuple[str, ...] = ()
    uid: int = NOBODY


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


def _named(fmus: FmuPaths) -> dict[str, Path]:
    if isinstance(fmus, Mapping):
        return {str(name): Path(path) for name, path in fmus.items()}
    return {Path(path).name.removesuffix(".fmu"): Path(path) for path in fmus}


def _prepare(folder: Path, fmus: FmuPaths, sandbox: Sandbox) -> tuple[Policy, dict[str, Path]]:
    """Copy the FMUs into the run folder and say what the child may see of it."""
    copies, scratch, root = folder / "fmus", folder / "scratch", folder / "root"
    for made in (copies, scratch, root):
        made.mkdir()
    named: dict[str, Path] = {}
    for index, (name, path) in enumerate(_named(fmus).items()):
        target = copies / f"{index:03d}-{path.name}"
        if path.is_file():
            shutil.copyfile(path, target)
            named[name] = target
        else:
            named[name] = path  # load_system names the missing file
    drop = (
        os.geteuid() == 0
        and sandbox.mode != "none"
        and (sandbox.mode == "namespaces" or all(world_reachable(p) for p in runtime_paths()))
    )
    if drop:
        os.chmod(folder, 0o755)  # noqa: S103 - the child's uid must enter; nothing secret inside
        for path in (folder, copies, scratch, root, *copies.iterdir()):
            os.chown(path, sandbox.uid, sandbox.uid)
    policy = Policy(
        mode=sandbox.mode, read=(str(copies),), scratch=str(scratch), root=str(root), deny=sandbox.deny,
        limits=sandbox.limits, uid=sandbox.uid if drop else None, gid=sandbox.uid if drop else None,
    )  # fmt: skip
    return policy, named


def _environment(scratch: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": scratch, "TMPDIR": scratch,
            **dict.fromkeys(_THREADS, "1")}  # fmt: skip


class _Child:
    """The child process and its three channels (data in, control out, shared progress)."""

    def __init__(self, folder: Path, order: dict[str, Any]) -> None:
        data_r, data_w = os.pipe()
        control_r, control_w = os.pipe()
        self.shared_fd = os.memfd_create("fastlims-cosim-progress")
        os.ftruncate(self.shared_fd, 24)
        self.memory = mmap.mmap(self.shared_fd, 24)
        self.shared = np.frombuffer(self.memory, dtype=np.float64)
        self.shared[:] = math.nan
        deny = json.loads(order["policy"]).get("deny") or () if order.get("policy") else ()
        path = [p for p in sys.path if p and os.path.isabs(p) and not exposes(p, deny)]
        self.log = folder / "child.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-I", "-c", _BOOT, json.dumps(path), str(data_w), str(control_r),
                 str(self.shared_fd)],
                pass_fds=(data_w, control_r, self.shared_fd), env=_environment(order["work_dir"]),
                cwd=order["work_dir"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        os.close(data_w)
        os.close(control_r)
        self.data = Connection(data_r, writable=False)
        self.control = Connection(control_w, readable=False)
        self.control.send_bytes(pickle.dumps(order))  # parent -> child only: the child never sends pickle

    def alive(self) -> bool:
        """Without reaping it (its process group stays ours to kill until then)."""
        try:
            return os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False

    def cancel(self) -> None:
        with contextlib.suppress(OSError):
            self.control.send_bytes(b"cancel")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def close(self) -> int | None:
        self.data.close()
        with contextlib.suppress(OSError):
            self.control.close()
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.kill()  # and whatever it started that is still in its process group
        self.process.wait()
        del self.shared
        self.memory.close()
        os.close(self.shared_fd)
        return self.process.returncode

    def log_tail(self, size: int = 2000) -> str:
        with contextlib.suppress(OSError), open(self.log, "rb") as log:
            log.seek(max(0, self.log.stat().st_size - size))
            return log.read().decode("utf-8", "replace").strip()
        return ""


class _Received:
    """The batches as they arrive: checked for order and shape, kept only when asked."""

    def __init__(self, keep: bool, max_rows: int | None = None) -> None:
        self.keep, self.max_rows = keep, max_rows
        self.batches: list[Batch] = []
        self.count = 0
        self.rows = 0
        self.last_t = math.nan
        self.names: list[str] | None = None
        self.units: dict[str, str] = {}

    def add(self, batch: Batch) -> None:
        if batch.seq != self.count:
            raise channel.ChannelError(f"metrics batch {batch.seq} arrived after {self.count - 1}")
        if batch.first_row != self.rows:
            raise channel.ChannelError(f"metrics batch {batch.seq} starts at row {batch.first_row}, not {self.rows}")
        if self.names is None:
            self.names = list(batch.signals)
        elif list(batch.signals) != self.names:
            raise channel.ChannelError(f"metrics batch {batch.seq} has other signals than the first")
        self.count += 1
        self.rows += batch.rows
        if self.max_rows is not None and self.rows > self.max_rows:
            raise channel.ChannelError(f"more rows ({self.rows}) than the run has points ({self.max_rows})")
        self.units = dict(batch.units)
        if batch.rows:
            self.last_t = float(batch.time[-1])
        if self.keep:
            self.batches.append(batch)

    def columns(self) -> dict[str, np.ndarray]:
        if not self.batches:
            return {}
        columns = {"time": np.concatenate([b.time for b in self.batches])}
        for name in self.batches[0].signals:
            columns[name] = np.concatenate([b.signals[name] for b in self.batches])
        return columns


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
    sandbox: Sandbox | None = None,
    keep_rows: bool = True,
) -> RunResult:
    """Like :func:`simulate`, in a sandboxed child process (``sandbox``; default: only the clean
    environment and the limits).

    ``on_batch`` and ``on_progress`` run in this process, ``cancel`` is polled here (about every
    50 ms) and passed on. ``timeout_s`` (wall time) and a cancel that the child does not honour
    within ``grace_s`` kill it. A child that dies without a result (an FMU crashed it, a sandbox
    limit stopped it) gives a failed result naming the signal and the time reached, with the rows
    received until then. ``keep_rows=False``: the result has no columns (``rows`` still counts
    them); the caller keeps what ``on_batch`` got. Raises :class:`CosimError` for an invalid
    system or spec, as :func:`simulate`.
    """
    sandbox = sandbox or Sandbox()
    folder = Path(tempfile.mkdtemp(prefix="fastlims-sim-"))
    started = time.perf_counter()
    # A child cannot send more rows than the run has points (a hostile one would fill the disk).
    span = spec.stop_time - spec.start_time if spec.stop_time is not None else None
    received = _Received(keep_rows, None if span is None else int(span / spec.step_size) + 2)
    outcome: tuple[str, dict[str, Any], memoryview] | None = None
    stop_asked_at: float | None = None
    stop_cause: tuple[str, str, str] | None = None  # status, end_cause, reason when we had to stop it
    last_progress = math.nan
    child: _Child | None = None
    try:
        policy, named = _prepare(folder, fmus, sandbox)
        order = {
            "policy": policy.to_json(), "fmus": {k: str(v) for k, v in named.items()}, "connections": connections,
            "spec": spec, "work_dir": policy.scratch, "batch_rows": batch_rows,
            "batch_every_s": batch_every_s or (None if batch_rows else 0.5),
        }  # fmt: skip
        child = _Child(folder, order)
        while True:
            if child.data.poll(0.05):
                try:
                    kind, header, data = channel.decode(child.data.recv_bytes(channel.MAX_FRAME))
                    if kind == "batch":
                        batch = channel.decode_batch(header, data)
                        received.add(batch)
                except EOFError:
                    break
                except (OSError, channel.ChannelError) as exc:  # a hostile or broken child: stop it
                    stop_cause = ("failed", "error", f"the simulation process sent a malformed message: {exc}")
                    child.kill()
                    break
                if kind == "batch":
                    if on_batch is not None and stop_cause is None:
                        try:
                            on_batch(batch)
                        except Exception as exc:  # noqa: BLE001 - ends the run, as in-process
                            stop_cause = ("failed", "callback", f"the metrics callback (on_batch) raised {exc!r}")
                            child.cancel()
                            stop_asked_at = time.perf_counter()
                    # no `continue`: a child sending batches without a pause must still meet its
                    # cancel, its wall-time limit and the progress reports below
                elif kind != "sandbox":
                    outcome = (kind, header, data)
                    break
            reached = float(child.shared[0])
            if on_progress is not None and math.isfinite(reached) and reached != last_progress:
                last_progress = reached
                on_progress(reached)
            if not child.alive() and not child.data.poll(0):
                break
            now = time.perf_counter()
            if stop_asked_at is None:
                if cancel is not None and cancel():
                    child.cancel()
                    stop_asked_at = now
                elif timeout_s is not None and now - started > timeout_s:
                    stop_cause = ("failed", "timeout", f"the run exceeded its wall-time limit of {timeout_s:g} s")
                    child.cancel()
                    stop_asked_at = now
            elif now - stop_asked_at > grace_s:
                child.kill()
        reached, first, last = (float(v) for v in child.shared)
        code = child.close()
        log = child.log_tail()
    finally:
        if child is not None and child.process.returncode is None:
            child.kill()
            child.close()
        shutil.rmtree(folder, ignore_errors=True)

    if on_progress is not None and math.isfinite(reached) and reached != last_progress:
        on_progress(reached)
    if outcome is not None and outcome[0] == "invalid":
        problems = outcome[1].get("problems")
        raise CosimError(
            [str(p)[: channel.MAX_TEXT] for p in problems] if isinstance(problems, list) else [str(problems)]
        )
    if outcome is not None and outcome[0] == "result":
        try:
            result = channel.decode_result(outcome[1], outcome[2])
        except channel.ChannelError as exc:
            outcome, stop_cause = None, ("failed", "error", f"the simulation process sent a malformed result: {exc}")
        else:
            columns = received.columns() if keep_rows else {}
            result = replace(result, columns=columns or result.columns, row_count=received.rows or result.rows)
            if stop_cause is not None:
                status, cause, reason = stop_cause
                result = replace(result, status=status, end_cause=cause, reason=f"{reason}; {result.reason}")  # type: ignore[arg-type]
            return result
    at = reached if math.isfinite(reached) else received.last_t
    where = f"t≈{at:.10g} s" if math.isfinite(at) else "before the first step"
    if math.isfinite(first) and math.isfinite(last):
        where += f" (in a step between t={first:.10g} s and t={last:.10g} s)"
    status, cause, reason = _ending(outcome, stop_cause, stop_asked_at, code, where, sandbox.limits, log)
    return RunResult(
        status=status,  # type: ignore[arg-type]
        reason=reason,
        end_cause=cause,
        stopped_at=received.last_t if math.isfinite(received.last_t) else spec.start_time,
        columns=received.columns(),
        units={"time": "s", **received.units},
        steps=int(round((received.last_t - spec.start_time) / spec.step_size)) if math.isfinite(received.last_t) else 0,
        wall_time_s=time.perf_counter() - started,
        step_size=spec.step_size,
        algorithm=spec.algorithm,
        parameters=dict(spec.parameters),
        batches=received.count,
        row_count=received.rows,
    )


def _ending(
    outcome: tuple[str, dict[str, Any], memoryview] | None,
    stop_cause: tuple[str, str, str] | None,
    stop_asked_at: float | None,
    code: int | None,
    where: str,
    limits: Limits,
    log: str,
) -> tuple[str, str, str]:
    """(status, end_cause, reason) of a run whose child gave no result."""
    if outcome is not None and outcome[0] == "sandbox_failed":
        return "failed", "sandbox", f"the simulation sandbox could not be set up: {outcome[1].get('reason')}"
    if outcome is not None:  # an exception in the child that is not the FMUs' doing
        trace = str(outcome[1].get("traceback"))[: channel.MAX_TEXT]
        hint = f" (the sandbox's memory limit is {limits.memory_bytes >> 20} MB)" if "MemoryError" in trace else ""
        return "failed", "error", f"the simulation process raised an exception at {where}{hint}:\n{trace}"
    if stop_cause is not None:
        return stop_cause[0], stop_cause[1], f"{stop_cause[2]}; the process was stopped at {where}"
    if stop_asked_at is not None:
        return "cancelled", "cancelled", f"cancelled; the process was stopped at {where}"
    tail = f"; its last output: {log[-1000:]}" if log else ""
    if code is not None and code < 0:
        try:
            number = signal.Signals(-code)
        except ValueError:
            return "failed", "crash", f"the simulation process died with signal {-code} at {where}{tail}"
        if number in _LIMIT_SIGNALS:
            limit = _LIMIT_SIGNALS[number].format(cpu=limits.cpu_s, file=limits.file_bytes)
            return "failed", "sandbox", f"the sandbox stopped the simulation at {where}: it exceeded {limit}"
        how = f"died with {number.name}"
    else:
        how = f"exited with code {code} without a result"
    return (
        "failed",
        "crash",
        (
            f"the simulation process {how} at {where}: an FMU crashed it (a crash takes the whole process, so which "
            f"FMU and the exact time are not known; try the FMUs alone to find it){tail}"
        ),
    )

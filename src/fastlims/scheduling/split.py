"""The neighbourhood search of independent bench groups in processes of their own.

A run never leaves its group of compatible benches (:func:`.prepare.components`), so the
groups share nothing but the makespan. Threads cannot spread the ruin-and-recreate moves over
two cores (they are pure Python, and hold the GIL), processes can: each group gets a core and
its own annealing schedule, and the other groups' runs stay where the start schedule put them
(so the makespan they set still counts). Measured on 1,000 runs x 20 benches (two groups),
30 s, solver seeds 1-4: the moves doubled (about 160,000 against 75,000) and the virtual
group's lateness fell about 1.5 %, but the whole objective only 0.15 % (77.07 M against
77.18 M on average): the physical group, where the makespan is decided, gains little from
more moves of the same kind. It is kept because it costs nothing in quality and every group
gets a core of its own.

The other processes are fresh interpreters (``python -m fastlims.scheduling.split_child``), never
forks: the pipeline calls this from a worker thread of a process with open sockets and locks,
which a fork would copy half-held. Nor does it use :mod:`multiprocessing`'s spawn, which
re-runs the caller's main script in the child (a partner's script without a ``__main__``
guard would run twice, side effects and all). Starting one costs about half a second
(importing OR-Tools), paid once per solve.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from fastlims.scheduling.lns import LnsTuning, improve
from fastlims.scheduling.models import Assignment, objective_parts
from fastlims.scheduling.prepare import Prepared
from fastlims.scheduling.search import LnsStats, bench_groups

_Result = tuple[list[Assignment], LnsStats]

MIN_SPLIT_S = 5.0
"""Below this much time left, a new process would spend too much of it starting up."""

_GRACE_S = 10.0
"""How long past the deadline a group's process may take to send its result before its
groups keep the start schedule (it stops by the deadline itself; this only guards a hang)."""


def share_groups(loads: Sequence[int], workers: int) -> list[frozenset[int]]:
    """Groups with runs dealt to at most ``workers`` processes, heaviest first onto the least
    loaded (longest processing time first): one set of group indices per process."""
    busy = sorted((i for i, load in enumerate(loads) if load > 0), key=lambda i: -loads[i])
    n = min(workers, len(busy))
    if n == 0:
        return []
    shares: list[set[int]] = [set() for _ in range(n)]
    totals = [0] * n
    for i in busy:
        k = totals.index(min(totals))
        shares[k].add(i)
        totals[k] += loads[i]
    return [frozenset(s) for s in shares]


def _benches_of(groups: list[frozenset[str]], only: frozenset[int]) -> frozenset[str]:
    return frozenset().union(*(groups[i] for i in only))


def _part(args: tuple[Prepared, list[Assignment], float, int, int, int, bool, frozenset[int]]) -> _Result:
    """What a child process does: improve the groups ``only`` and return their runs."""
    prep, start, stop_at, seed, horizon, makespan_lb, pool, only = args
    tuning = LnsTuning(1, seed, pool=pool, cp_threads=0)
    out, _obj, stats = improve(prep, start, stop_at, horizon, makespan_lb, tuning, only=only)
    benches = _benches_of(bench_groups(prep, pool), only)
    return [a for a in out if a.bench_id in benches], stats


def _child_main() -> None:
    """``python -m fastlims.scheduling.split_child ARGS_FILE``: the arguments pickled by the parent
    in a file it owns, the result pickled on stdout."""
    # written by the parent, which created the file (mode 0600) and started this process
    with open(sys.argv[1], "rb") as f:
        args = pickle.load(f)  # noqa: S301
    result = _part(args)
    sys.stdout.buffer.write(pickle.dumps(result))
    sys.stdout.buffer.flush()


def _start_child(args: tuple[object, ...]) -> tuple[subprocess.Popen[bytes], str]:
    """A child process working on ``args``, and the file that hands them over."""
    fd, path = tempfile.mkstemp(prefix="fastlims-split-", suffix=".pickle")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(args, f)
        proc = subprocess.Popen(  # noqa: S603 (this interpreter, a fixed module, our own file)
            [sys.executable, "-m", "fastlims.scheduling.split_child", path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
    except BaseException:
        os.unlink(path)
        raise
    return proc, path


def _collect(proc: subprocess.Popen[bytes], path: str, stop_at: float) -> _Result | None:
    """The child's result, or None if it failed or hung past the grace period."""
    try:
        out, _err = proc.communicate(timeout=max(0.0, stop_at - time.monotonic()) + _GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        return None
    try:
        result: _Result = pickle.loads(out)  # noqa: S301 (the child this process started)
    except (pickle.UnpicklingError, EOFError):
        return None
    return result


def improve_split(
    prep: Prepared,
    start: Sequence[Assignment],
    stop_at: float,
    workers: int,
    seed: int,
    horizon: int,
    makespan_lb: int,
    pool: bool = True,
) -> tuple[list[Assignment], int, LnsStats] | None:
    """Improve ``start`` with one process per share of the bench groups (this process takes
    the first share), until the monotonic clock (shared by the processes) reaches
    ``stop_at``. None if there is nothing to split: fewer than two workers or groups with
    runs, or no process could be started; the caller then searches in threads."""
    groups = bench_groups(prep, pool)
    group_of = {b: i for i, benches in enumerate(groups) for b in benches}
    loads = [0] * len(groups)
    for a in start:
        loads[group_of[a.bench_id]] += 1
    shares = share_groups(loads, workers)
    if len(shares) < 2 or stop_at - time.monotonic() < MIN_SPLIT_S:
        return None
    children: list[tuple[subprocess.Popen[bytes], str, frozenset[int]]] = []
    try:
        for k, only in enumerate(shares[1:], start=1):
            args = (prep, list(start), stop_at, seed * 31 + k, horizon, makespan_lb, pool, only)
            children.append((*_start_child(args), only))
    except (OSError, ValueError):  # no interpreter to start (an embedded Python, say)
        for proc, path, _only in children:
            proc.kill()
            _collect(proc, path, stop_at)
        return None
    tuning = LnsTuning(1, seed, pool=pool, cp_threads=0)
    mine, _obj, stats = improve(prep, start, stop_at, horizon, makespan_lb, tuning, only=shares[0])
    placed = {a.run_id: a for a in mine}
    for proc, path, only in children:
        got = _collect(proc, path, stop_at)
        if got is not None:
            for a in got[0]:
                placed[a.run_id] = a
            stats.recreate_moves += got[1].recreate_moves
            stats.recreate_improving += got[1].recreate_improving
        else:
            stats.failed_parts += 1
            benches = _benches_of(groups, only)
            for a in start:
                if a.bench_id in benches:
                    placed[a.run_id] = a
    out = list(placed.values())
    return out, objective_parts(prep.problem, out + prep.frozen)[0], stats

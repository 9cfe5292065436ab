"""The simulation child: started by :func:`~.isolated.run_in_subprocess` as a fresh interpreter
with a clean environment, it reads its order from the control pipe, confines itself
(:func:`fastlims.benches.sandbox.confine.confine`) and only then loads the FMUs and runs.

Its three descriptors (command-line arguments): the data pipe it writes frames to
(:mod:`.channel`), the control pipe it reads the order from (then a cancel), and a small shared
memory where it keeps the simulated time reached and the block being stepped (three doubles).
"""

from __future__ import annotations

import mmap
import pickle
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from fastlims.benches.cosim import channel
from fastlims.benches.cosim.errors import CosimError
from fastlims.benches.cosim.isolated import simulate
from fastlims.benches.cosim.recording import Batch
from fastlims.benches.sandbox.confine import confine
from fastlims.benches.sandbox.policy import Policy

SANDBOX_FAILED = 3  # exit code of a child that could not confine itself


def main(argv: list[str]) -> int:
    data_fd, control_fd, shared_fd = (int(a) for a in argv[:3])
    out = Connection(data_fd, readable=False)
    control = Connection(control_fd, writable=False)
    # The order comes from the parent (trusted, and before any partner code runs here).
    order: dict[str, Any] = pickle.loads(control.recv_bytes())  # noqa: S301
    shared = np.frombuffer(mmap.mmap(shared_fd, 24), dtype=np.float64)
    try:
        report = confine(Policy.from_json(order["policy"]))
    except OSError as exc:
        out.send_bytes(channel.encode("sandbox_failed", {"reason": str(exc)}))
        return SANDBOX_FAILED
    out.send_bytes(channel.encode("sandbox", {"report": report}))

    def send_batch(batch: Batch) -> None:
        out.send_bytes(channel.encode_batch(batch))

    def reached(t: float) -> None:
        shared[0] = t

    def block_start(first: float, last: float) -> None:
        shared[1], shared[2] = first, last

    def cancelled() -> bool:
        return control.poll(0)

    try:
        result = simulate(
            order["fmus"], order["connections"], order["spec"], send_batch, work_dir=order["work_dir"],
            batch_rows=order["batch_rows"], batch_every_s=order["batch_every_s"], cancel=cancelled,
            on_progress=reached, on_block_start=block_start,
        )  # fmt: skip
        if result.batches:  # the rows came as batches; only a run without any sends its (empty) columns
            result.columns = {}
        out.send_bytes(channel.encode_result(result))
    except CosimError as exc:
        out.send_bytes(channel.encode("invalid", {"problems": exc.problems}))
    except BaseException:  # noqa: BLE001 - reported to the parent, which decides
        out.send_bytes(channel.encode("exception", {"traceback": traceback.format_exc()}))
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

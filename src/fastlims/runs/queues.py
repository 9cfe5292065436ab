"""Pure names under which dispatch hands runs to benches: the DBOS queue of each virtual bench and
the workflow names the benches implement.

They live here, not in the pipeline, so that a bench module (the virtual bench worker, the
physical bench gateway) and the pipeline that dispatches to it agree on them without importing
each other. No I/O.
"""

from __future__ import annotations

#: Queue of one virtual bench: ``bench-<name>``; its consumer (the virtual bench worker) runs
#: :data:`VIRTUAL_RUN_WORKFLOW` for each run handed to it.
BENCH_QUEUE_PREFIX = "bench-"

#: The workflow name virtual runs are enqueued under (implemented by the virtual bench worker).
VIRTUAL_RUN_WORKFLOW = "fastlims.benches.virtual_run"

#: The workflow name of a physical run (implemented by the physical bench gateway).
PHYSICAL_RUN_WORKFLOW = "fastlims.benches.physical_run"


def bench_queue(bench: str) -> str:
    """The work queue of virtual bench ``bench``: where dispatch puts its runs."""
    return f"{BENCH_QUEUE_PREFIX}{bench}"

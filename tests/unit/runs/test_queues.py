"""The names dispatch and the benches agree on, without importing each other."""

from __future__ import annotations

from fastlims.runs import queues


def test_queue_and_workflow_names_are_stable() -> None:
    # Pending DBOS workflows are recorded under these names: a rename strands them.
    assert queues.bench_queue("virtual-1") == "bench-virtual-1"
    assert queues.bench_queue("virtual-1").startswith(queues.BENCH_QUEUE_PREFIX)
    assert queues.VIRTUAL_RUN_WORKFLOW == "fastlims.benches.virtual_run"
    assert queues.PHYSICAL_RUN_WORKFLOW == "fastlims.benches.physical_run"

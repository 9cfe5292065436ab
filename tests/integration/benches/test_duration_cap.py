"""A run simulates at most its procedure's expected duration times
``FASTLIMS_VIRTUAL_BENCH_MAX_DURATION_FACTOR``, and never past ``FASTLIMS_VIRTUAL_BENCH_MAX_DURATION_S``:
a procedure that would go on (or a model that never meets its end) fails with the cap named."""

from __future__ import annotations

from typing import Any

from fastlims.benches.sandboxing import duration_cap
from fastlims.config import Settings
from fastlims.requests import service as requests
from fastlims.requests.states import Status
from fastlims.runs import results
from fastlims.runs.lifecycle import RunState
from tests.integration.benches.conftest import Bench, runs_of
from tests.integration.pipeline.helpers import wait_status


def test_the_cap_is_the_smaller_of_the_factor_and_the_absolute_setting() -> None:
    settings = Settings(virtual_bench_max_duration_factor=2.5, virtual_bench_max_duration_s=10_000.0)
    assert duration_cap(settings, 3600.0) == 9000.0
    assert duration_cap(settings, 7200.0) == 10_000.0
    assert duration_cap(Settings(), 3600.0) == 3 * 3600.0  # the defaults: 3 times, at most 30 days
    assert duration_cap(Settings(), 30 * 86400.0) == 30 * 86400.0


def test_a_run_past_its_cap_fails_naming_it_and_stores_only_what_it_simulated(make_bench: Any) -> None:
    bench: Bench = make_bench(virtual_bench_max_duration_s=120.0)
    uuid, (run_id,) = bench.request(procedure="Rest for 50000000 s")
    wait_status(bench.system, uuid, Status.Failed, timeout_s=60)
    with bench.system.database.transaction() as session:
        reason = requests.get_by_uuid(session=session, test_uuid=uuid).failure_reason or ""
    assert "did not end within its time limit of 120 s" in reason, reason
    assert "FASTLIMS_VIRTUAL_BENCH_MAX_DURATION_S" in reason
    assert runs_of(bench.system, uuid) == {run_id: RunState.failed.value}
    stored = results.read_parquet(
        bench.pipeline.storage.get(f"requests/{uuid}/simulation-results/{run_id}/results.parquet")
    )
    assert stored.columns["Test Time / s"][-1] <= 120.0
    assert stored.metadata["run"]["end_cause"] == "timeout"

"""The gateway's decisions as data: a bench's announced capabilities against a run, the offline
policy per test, and how a run ended from what its bench said."""

from __future__ import annotations

from fastlims.benches.gateway import policy
from tests.bench_helpers import capacity_run_file

CELL_RIG = {"max_current_A": 50.0, "min_voltage_V": 0.0, "max_voltage_V": 5.0, "temperature_chamber": False}


def test_a_bench_that_announced_too_little_is_unfit_naming_each_shortfall() -> None:
    small = {"max_current_A": 0.5, "min_voltage_V": 3.0, "max_voltage_V": 4.0, "temperature_chamber": False}
    said = policy.unfit("rig-1", "idle", small, capacity_run_file())
    assert said is not None and said.startswith("bench rig-1 announced capabilities that do not cover the run: ")
    assert "max current 0.5 A < 1.66667 A" in said and "max voltage 4 V < 4.22 V" in said
    assert "min voltage 3 V > 2.48 V" in said
    assert policy.unfit("rig-1", "idle", CELL_RIG, capacity_run_file()) is None


def test_a_bench_offline_in_fault_or_never_seen_is_unfit() -> None:
    run_file = capacity_run_file()
    assert (
        policy.unfit("rig-1", None, None, run_file)
        == "bench rig-1 has never come online (no state message on its topic)"
    )
    assert policy.unfit("rig-1", "offline", CELL_RIG, run_file) == "bench rig-1 is offline"
    assert policy.unfit("rig-1", "fault", CELL_RIG, run_file) == "bench rig-1 is fault"


def test_abuse_tests_are_never_resumed_after_an_interruption() -> None:
    assert policy.after_offline(True) == "fail"
    assert policy.after_offline(False) == "wait_and_resume"


def test_a_safety_trip_decides_the_end_cause_whatever_the_last_event() -> None:
    trip = {"event": "safety_tripped", "limit": "max_voltage_V", "value": 4.3, "test_time_s": 12.0}
    status, cause, reason = policy.ending({"event": "failed"}, [trip])
    assert (status, cause) == ("failed", "safety_limit") and "max_voltage_V" in (reason or "")
    assert policy.ending({"event": "completed"}, []) == ("completed", "procedure_complete", None)
    assert policy.ending({"event": "aborted", "overran": True, "reason": "overran"}, [])[:2] == ("failed", "timeout")

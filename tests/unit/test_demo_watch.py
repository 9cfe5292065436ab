"""`fastlims demo --until-complete`'s verdict and summary, from data."""

from __future__ import annotations

from fastlims.demo import DEMO_REQUESTS
from fastlims.demo_watch import RequestView, RunView, Watched, problems, summary_table

TRIP = next(s for s in DEMO_REQUESTS if s.expected == "Failed")
PHYSICAL = next(s for s in DEMO_REQUESTS if s.bench == "Physical")
TRIPPED = "run r failed: safety limit max_voltage_V = 4.22 V: voltage 4.2204 V above it at test time 1993 s"


def _view(sample, status, reason=None, runs=()):  # type: ignore[no-untyped-def]
    return RequestView(Watched(f"TR-{sample.test_name}", "uuid", sample), status, reason, tuple(runs))


def test_the_demo_requests_declare_both_kinds_and_one_expected_failure() -> None:
    assert {s.bench for s in DEMO_REQUESTS} == {"Virtual", "Physical"}
    assert sum(s.bench == "Physical" for s in DEMO_REQUESTS) >= 2
    assert [s.expected for s in DEMO_REQUESTS].count("Failed") == 1 and TRIP.expected_reason


def test_every_request_ending_as_expected_is_no_problem() -> None:
    run = RunView("r", "emu-1", "completed", {"discharge_capacity_Ah": 4.96, "dcir_ohm": None})
    views = [_view(PHYSICAL, "Completed", runs=[run]), _view(TRIP, "Failed", TRIPPED)]
    assert problems(views, timed_out=False) == []
    table = summary_table(views)
    assert "Physical: emu-1" in table and "Q 4.96 Ah" in table and "—" in table  # no twin comparison yet


def test_an_unexpected_end_a_wrong_reason_and_a_timeout_are_each_named() -> None:
    views = [
        _view(PHYSICAL, "Failed", "bench emu-1 went offline"),
        _view(TRIP, "Failed", "run r failed: the bench rejected the start"),
        _view(DEMO_REQUESTS[0], "Running"),
    ]
    found = problems(views, timed_out=True)
    assert len(found) == 3
    assert "ended Failed, expected Completed: bench emu-1 went offline" in found[0]
    assert "not for the expected reason" in found[1]
    assert "still Running at the timeout" in found[2]
    assert problems(views[2:], timed_out=False) == []  # still running before the timeout: wait

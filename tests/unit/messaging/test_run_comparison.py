"""The hybrid run's comparison message: what the DT receives, and what it refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fastlims.messaging.asyncapi import document
from fastlims.messaging.schemas import RunComparison
from fastlims.messaging.topics import Topics

GOOD = {
    "run_id": "3f2a9c1e-8d4b-4e59-9a31-6c0f1d2b7e44.run-001",
    "twin_run_id": "3f2a9c1e-8d4b-4e59-9a31-6c0f1d2b7e44.run-001.twin",
    "test_UUID": "3f2a9c1e-8d4b-4e59-9a31-6c0f1d2b7e44",
    "bench": "rig-1",
    "twin_bench": "virtual-2",
    "at": "2027-03-01 09:00:00",
    "samples": 1200,
    "rms_voltage_error_V": 0.012,
    "max_voltage_error_V": 0.05,
    "mean_voltage_error_V": -0.004,
    "threshold_V": 0.05,
    "alert": False,
    "steps": [{"step_count": 1, "step_id": 0, "start_time_s": 0.0, "samples": 1200, "rms_voltage_error_V": 0.012,
               "max_voltage_error_V": 0.05, "mean_voltage_error_V": -0.004}],
}  # fmt: skip


def test_a_comparison_validates_and_has_a_message_id() -> None:
    message = RunComparison.model_validate(GOOD)
    assert message.message_id and message.steps[0].rms_temperature_error_K is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rms_voltage_error_V": -0.1}, "rms_voltage_error_V"),
        ({"at": "2027-03-01T09:00:00Z"}, "at"),
        ({"unknown": 1}, "unknown"),
        ({"run_id": "x" * 129}, "run_id"),
    ],
)
def test_a_bad_comparison_is_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        RunComparison.model_validate({**GOOD, **change})


def test_the_comparison_channels_are_in_asyncapi_and_the_topic_tree() -> None:
    channels = document()["channels"]
    assert channels["runComparison"]["address"] == "fastest/v1/benches/{bench}/runs/{run_id}/comparison"
    assert channels["partnerRunComparison"]["address"] == "fastest/v1/partners/{partner}/runs/{run_id}/comparison"
    topics = Topics()
    assert topics.run_comparison("rig-1", "r.1") == "fastest/v1/benches/rig-1/runs/r.1/comparison"
    assert topics.partner_run_comparison("dt", "r.1") == "fastest/v1/partners/dt/runs/r.1/comparison"
    with pytest.raises(ValueError, match="run_id"):
        topics.run_comparison("rig-1", "a/b")

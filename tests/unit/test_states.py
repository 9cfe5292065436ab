"""The lifecycle state machine: every legal and every illegal transition."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastlims.requests.states import (
    CANCELLABLE,
    TERMINAL,
    TIMESTAMP_ATTRIBUTE,
    IllegalTransition,
    Status,
    can_transition,
    transition,
)

FORWARD = [
    Status.Submitted,
    Status.ModelRequested,
    Status.ModelReady,
    Status.DoeComplete,
    Status.ScheduleReady,
    Status.Running,
    Status.SimulationComplete,
    Status.Completed,
]

# The architecture doc's lifecycle written out by hand, independently of the module's table.
LEGAL = {(a, b) for a, b in itertools.pairwise(FORWARD)}
LEGAL |= {(s, Status.Failed) for s in FORWARD[:-1]}
LEGAL |= {
    (s, Status.Cancelled)
    for s in (
        Status.Submitted,
        Status.ModelRequested,
        Status.ModelReady,
        Status.DoeComplete,
        Status.ScheduleReady,
    )
}
ALL_PAIRS = list(itertools.product(Status, Status))


@pytest.mark.parametrize(("source", "target"), sorted(LEGAL), ids=lambda s: s.name)
def test_legal_transition(source: Status, target: Status) -> None:
    move = transition(source, target, reason="bench broke" if target is Status.Failed else None)
    assert move.source is source and move.target is target
    assert move.timestamp_attribute == TIMESTAMP_ATTRIBUTE.get(target)


@pytest.mark.parametrize(("source", "target"), [p for p in ALL_PAIRS if p not in LEGAL], ids=lambda s: s.name)
def test_illegal_transition_raises(source: Status, target: Status) -> None:
    assert not can_transition(source, target)
    with pytest.raises(IllegalTransition) as caught:
        transition(source, target, reason="any")
    assert source.name in str(caught.value) and target.name in str(caught.value)


def test_failing_needs_a_reason() -> None:
    for reason in (None, "", "   "):
        with pytest.raises(ValueError, match="reason"):
            transition(Status.Running, Status.Failed, reason=reason)


def test_terminal_states_have_no_way_out() -> None:
    for state in TERMINAL:
        assert not any(can_transition(state, target) for target in Status)


def test_cancel_only_before_running() -> None:
    assert Status.Running not in CANCELLABLE
    assert {s for s in FORWARD if s.value < Status.Running.value} == CANCELLABLE


def test_every_state_after_submission_sets_its_seed_timestamp() -> None:
    assert TIMESTAMP_ATTRIBUTE[Status.ModelReady] == "fmu_ready_at"
    assert TIMESTAMP_ATTRIBUTE[Status.Completed] == "completed_at"
    assert TIMESTAMP_ATTRIBUTE[Status.ModelRequested] == "model_requested_at"
    assert set(TIMESTAMP_ATTRIBUTE) == set(Status) - {Status.Submitted}


def test_status_names_parse_and_unknown_names_list_the_choices() -> None:
    assert Status.from_name("ScheduleReady") is Status.ScheduleReady
    with pytest.raises(ValueError, match="Submitted, ModelRequested"):
        Status.from_name("Scheduled")


@given(st.lists(st.sampled_from(list(Status)), max_size=30))
def test_random_walks_only_follow_legal_edges(targets: list[Status]) -> None:
    """Whatever sequence is attempted, the state only ever moves along the lifecycle's edges."""
    state = Status.Submitted
    visited = [state]
    for target in targets:
        try:
            state = transition(state, target, reason="r").target
            visited.append(state)
        except IllegalTransition:
            assert (state, target) not in LEGAL
    for a, b in itertools.pairwise(visited):
        assert (a, b) in LEGAL
    if Status.Running in visited:
        assert Status.Cancelled not in visited[visited.index(Status.Running) :]

"""The run lifecycle: every allowed move, every forbidden one, and the final states."""

from __future__ import annotations

import itertools

import pytest

from fastlims.runs import lifecycle
from fastlims.runs.lifecycle import TERMINAL, TRANSITIONS, IllegalRunTransition, RunState

S = RunState
ALLOWED = {
    (S.scheduled, S.dispatched),
    (S.scheduled, S.cancelled),
    (S.scheduled, S.failed),
    (S.dispatched, S.running),
    (S.dispatched, S.failed),
    (S.dispatched, S.cancelled),
    (S.dispatched, S.interrupted),
    (S.dispatched, S.scheduled),  # rescheduled before it started
    (S.running, S.paused),
    (S.running, S.completed),
    (S.running, S.failed),
    (S.running, S.cancelled),
    (S.running, S.interrupted),
    (S.paused, S.running),
    (S.paused, S.interrupted),
    (S.paused, S.failed),
    (S.paused, S.cancelled),
    (S.interrupted, S.scheduled),  # rescheduled
    (S.interrupted, S.running),  # resumed
    (S.interrupted, S.failed),
    (S.interrupted, S.cancelled),
}


def test_the_table_is_exactly_the_documented_moves() -> None:
    table = {(here, there) for here, targets in TRANSITIONS.items() for there in targets}
    assert table == ALLOWED
    assert set(TRANSITIONS) == set(RunState)


@pytest.mark.parametrize(("here", "there"), sorted(itertools.product(RunState, RunState)))
def test_check_allows_the_table_and_refuses_the_rest(here: RunState, there: RunState) -> None:
    if (here, there) in ALLOWED:
        assert lifecycle.can_transition(here, there)
        assert lifecycle.check(here, there) is there
        assert lifecycle.check(here.value, there.value) is there  # the stored spelling works too
    else:
        assert not lifecycle.can_transition(here, there)
        with pytest.raises(IllegalRunTransition) as caught:
            lifecycle.check(here, there)
        assert caught.value.current is here and caught.value.target is there
        assert f"from {here.value} to {there.value}" in str(caught.value)


def test_final_states_allow_nothing_and_say_so() -> None:
    assert {S.completed, S.failed, S.cancelled} == TERMINAL
    assert set(RunState) - TERMINAL == lifecycle.ACTIVE
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
    with pytest.raises(IllegalRunTransition, match="allowed from completed: none"):
        lifecycle.check(S.completed, S.running)


def test_the_message_lists_the_allowed_moves() -> None:
    with pytest.raises(IllegalRunTransition, match="allowed from scheduled: cancelled, dispatched, failed$"):
        lifecycle.check(S.scheduled, S.running)


def test_an_unknown_state_is_named() -> None:
    with pytest.raises(ValueError, match="unknown run state 'exploded'; expected one of scheduled, dispatched"):
        lifecycle.check("exploded", S.failed)
    with pytest.raises(ValueError, match="'halted'"):
        lifecycle.can_transition(S.running, "halted")


def test_sources_are_the_guard_of_a_compare_and_set() -> None:
    # every active state may be cancelled: the virtual bench's "not finished" guard of old
    assert lifecycle.sources_of(S.cancelled) == lifecycle.ACTIVE
    assert lifecycle.sources_of(S.running) == {S.dispatched, S.paused, S.interrupted}
    assert lifecycle.sources_of(S.completed) == {S.running}
    assert lifecycle.sources_of("scheduled") == {S.dispatched, S.interrupted}


def test_the_stored_values_are_unchanged() -> None:
    # PipelineRuns.State holds these strings; the runs API shows them
    assert [s.value for s in RunState] == [
        "scheduled", "dispatched", "running", "paused", "interrupted", "completed", "failed", "cancelled",
    ]  # fmt: skip

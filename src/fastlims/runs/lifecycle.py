"""The lifecycle of one scheduled run as a pure state machine (no I/O, no clock), the run's
counterpart of :mod:`fastlims.requests.states`.

``scheduled → dispatched → running → completed``, with the detours a bench can take: ``paused``
(and back to ``running``), ``interrupted`` (the bench went away: the run is rescheduled or resumed),
and the ends ``failed`` and ``cancelled``. ``completed``, ``failed`` and ``cancelled`` are final.

Both bench kinds move their runs through the same table (the virtual bench today, the physical
bench gateway next), so a run's history reads the same whichever bench ran it. An illegal move
raises :class:`IllegalRunTransition`; it is never a silent overwrite.
"""

from __future__ import annotations

import enum


class RunState(enum.StrEnum):
    """What the ``PipelineRuns.State`` column stores."""

    scheduled = "scheduled"  # booked on a bench by the schedule step
    dispatched = "dispatched"  # handed to its bench (queue or MQTT command)
    running = "running"  # the bench reported it started
    paused = "paused"  # the bench holds the run, to resume it
    interrupted = "interrupted"  # the bench went away mid-run: to be rescheduled, resumed or failed
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL: frozenset[RunState] = frozenset({RunState.completed, RunState.failed, RunState.cancelled})

TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.scheduled: frozenset({RunState.dispatched, RunState.cancelled, RunState.failed}),
    RunState.dispatched: frozenset(
        # back to scheduled: rescheduled (onto another bench) before it started
        {RunState.running, RunState.failed, RunState.cancelled, RunState.interrupted, RunState.scheduled}
    ),
    RunState.running: frozenset(
        {RunState.paused, RunState.completed, RunState.failed, RunState.cancelled, RunState.interrupted}
    ),
    RunState.paused: frozenset({RunState.running, RunState.interrupted, RunState.failed, RunState.cancelled}),
    # scheduled: rescheduled; running: resumed on its bench
    RunState.interrupted: frozenset({RunState.scheduled, RunState.running, RunState.failed, RunState.cancelled}),
    RunState.completed: frozenset(),
    RunState.failed: frozenset(),
    RunState.cancelled: frozenset(),
}

#: The states a run can still leave (the complement of :data:`TERMINAL`).
ACTIVE: frozenset[RunState] = frozenset(set(RunState) - TERMINAL)


class IllegalRunTransition(ValueError):
    """A move the run lifecycle does not allow; the message names both states and the allowed ones."""

    def __init__(self, current: RunState, target: RunState) -> None:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none (final state)"
        super().__init__(
            f"cannot move a run from {current.value} to {target.value}; allowed from {current.value}: {allowed}"
        )
        self.current = current
        self.target = target


def state_of(value: str) -> RunState:
    """Parse a stored state; raises ``ValueError`` naming the choices."""
    try:
        return RunState(value)
    except ValueError:
        choices = ", ".join(s.value for s in RunState)
        raise ValueError(f"unknown run state {value!r}; expected one of {choices}") from None


def can_transition(current: RunState | str, target: RunState | str) -> bool:
    return state_of(target) in TRANSITIONS[state_of(current)]


def check(current: RunState | str, target: RunState | str) -> RunState:
    """Validate a move; returns the target state, raises :class:`IllegalRunTransition`."""
    here, there = state_of(current), state_of(target)
    if there not in TRANSITIONS[here]:
        raise IllegalRunTransition(here, there)
    return there


def sources_of(target: RunState | str) -> frozenset[RunState]:
    """The states a run may reach ``target`` from: the guard of a compare-and-set update
    (``UPDATE … WHERE State IN sources_of(target)``)."""
    there = state_of(target)
    return frozenset(state for state, targets in TRANSITIONS.items() if there in targets)

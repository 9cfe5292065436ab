"""The test-request lifecycle as a pure state machine (no I/O, no clock).

``Submitted → ModelRequested → ModelReady → DoeComplete → ScheduleReady → Running →
SimulationComplete → Completed``; ``Failed`` (with a reason) from any active state;
``Cancelled`` before ``Running``. An illegal transition raises; it is never a silent overwrite.

The integer values are what the seed's ``TestRequests.Status int`` column stores.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.IntEnum):
    Submitted = 1
    ModelRequested = 2
    ModelReady = 3
    DoeComplete = 4
    ScheduleReady = 5
    Running = 6
    SimulationComplete = 7
    Completed = 8
    Failed = 9
    Cancelled = 10

    @classmethod
    def from_name(cls, name: str) -> Status:
        """Parse the API spelling (``"ModelReady"``); raises ``ValueError`` naming the choices."""
        try:
            return cls[name]
        except KeyError:
            choices = ", ".join(s.name for s in cls)
            raise ValueError(f"unknown status {name!r}; expected one of {choices}") from None


_FORWARD: tuple[Status, ...] = (
    Status.Submitted,
    Status.ModelRequested,
    Status.ModelReady,
    Status.DoeComplete,
    Status.ScheduleReady,
    Status.Running,
    Status.SimulationComplete,
    Status.Completed,
)

TERMINAL: frozenset[Status] = frozenset({Status.Completed, Status.Failed, Status.Cancelled})
ACTIVE: frozenset[Status] = frozenset(set(Status) - TERMINAL)
CANCELLABLE: frozenset[Status] = frozenset(_FORWARD[: _FORWARD.index(Status.Running)])


def _build_transitions() -> dict[Status, frozenset[Status]]:
    table: dict[Status, set[Status]] = {s: set() for s in Status}
    for here, there in zip(_FORWARD, _FORWARD[1:], strict=False):
        table[here].add(there)
    for state in ACTIVE:
        table[state].add(Status.Failed)
    for state in CANCELLABLE:
        table[state].add(Status.Cancelled)
    return {state: frozenset(targets) for state, targets in table.items()}


TRANSITIONS: dict[Status, frozenset[Status]] = _build_transitions()

# The seed's TestRequests timestamp column (attribute name) that each arrival sets.
TIMESTAMP_ATTRIBUTE: dict[Status, str] = {
    Status.ModelRequested: "model_requested_at",
    Status.ModelReady: "fmu_ready_at",
    Status.DoeComplete: "doe_complete_at",
    Status.ScheduleReady: "schedule_ready_at",
    Status.Running: "simulation_started_at",
    Status.SimulationComplete: "simulation_complete_at",
    Status.Completed: "completed_at",
    Status.Failed: "failed_at",
    Status.Cancelled: "cancelled_at",
}


class IllegalTransition(ValueError):
    """Raised for a transition the lifecycle does not allow."""

    def __init__(self, current: Status, target: Status) -> None:
        allowed = ", ".join(s.name for s in sorted(TRANSITIONS[current])) or "none (final state)"
        super().__init__(
            f"cannot move a request from {current.name} to {target.name}; allowed from {current.name}: {allowed}"
        )
        self.current = current
        self.target = target


@dataclass(frozen=True)
class Transition:
    """What a legal move changes: the new status and the timestamp column it sets (if any)."""

    source: Status
    target: Status
    timestamp_attribute: str | None
    reason: str | None


def can_transition(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]


def transition(current: Status, target: Status, reason: str | None = None) -> Transition:
    """Validate a move. ``Failed`` requires a reason, because a failure without one helps no one."""
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    if target is Status.Failed and not (reason and reason.strip()):
        raise ValueError("a request can only fail with a reason")
    return Transition(current, target, TIMESTAMP_ATTRIBUTE.get(target), reason)

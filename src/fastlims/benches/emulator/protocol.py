"""The bench side of bench contract v1, as data: which command a bench takes in which state, the
one reply per command id, and the emulator's fault options (docs/benches.md, "Bench contract v1").

Pure: no I/O, no clock. The MQTT process (:mod:`.service`) asks these functions and acts.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from fastlims.procedures.runfile import RunProcedure

#: The states a bench runs through (``online``, ``offline`` and ``fault`` are about the bench, not a run).
BENCH_STATES = ("online", "idle", "loaded", "running", "paused", "offline", "fault")

#: command -> (the states it is taken in, the state after it)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "load": (("idle",), "loaded"),
    "start": (("idle", "loaded"), "running"),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "stop": (("loaded", "running", "paused"), "idle"),
    "abort": (("loaded", "running", "paused"), "idle"),
}


def refusal(*, command: str, state: str, expected_state: str, bench_run: str | None, run_id: str) -> str | None:
    """Why a bench in ``state`` (holding ``bench_run``) refuses ``command`` for ``run_id`` sent
    by a LIMS that expects ``expected_state``; None when it takes the command."""
    if expected_state != state:
        return f"the LIMS expected the bench in state {expected_state!r} but it is {state!r}"
    allowed, _after = TRANSITIONS[command]
    if state not in allowed:
        return f"{command} is taken in state {' or '.join(repr(s) for s in allowed)}, the bench is {state!r}"
    if state != "idle" and bench_run != run_id:
        return f"run {run_id!r} is not on this bench (it holds run {bench_run!r})"
    return None


Reply = TypeVar("Reply")


class ReplyBook(Generic[Reply]):
    """The reply given to each command id (the last ``size``): a repeated command id gets the same
    reply again and is not acted on twice (QoS 1 redelivery, or the LIMS's retry)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._replies: OrderedDict[str, Reply] = OrderedDict()

    def get(self, command_id: str) -> Reply | None:
        return self._replies.get(command_id)

    def remember(self, command_id: str, reply: Reply) -> None:
        self._replies[command_id] = reply
        self._replies.move_to_end(command_id)
        while len(self._replies) > self.size:
            self._replies.popitem(last=False)


# --- fault injection ------------------------------------------------------------------------------

FaultKind = Literal["never-answer", "reject", "offline-after", "trip-safety", "die-after"]
FAULT_FORMS = "never-answer, reject, offline-after=SECONDS, trip-safety or die-after=SECONDS"


@dataclass(frozen=True)
class Fault:
    """A misbehaviour the emulator is told to show (for the LIMS's fault tests); ``seconds`` of a
    run's wall time for ``offline-after`` and ``die-after``."""

    kind: FaultKind
    seconds: float | None = None


def parse_fault(text: str) -> Fault:
    """``--fault`` as given: one of :data:`FAULT_FORMS`; anything else is a ValueError saying so."""
    name, has_value, value = text.strip().partition("=")
    if name in ("never-answer", "reject", "trip-safety") and not has_value:
        return Fault(name)  # type: ignore[arg-type]
    if name in ("offline-after", "die-after"):
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError(f"--fault {text!r}: {name} needs a number of seconds, e.g. {name}=5") from None
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"--fault {text!r}: the seconds must be a number >= 0")
        return Fault(name, seconds)  # type: ignore[arg-type]
    raise ValueError(f"--fault {text!r} is not one of {FAULT_FORMS}")


def tightened(run: RunProcedure) -> RunProcedure:
    """The run with its voltage safety window shrunk to the middle of the UUT's rated window
    (55 %-72 % of it: a model cell at rest half full sits inside), so any charge or discharge of note
    trips a voltage limit (``trip-safety``)."""
    ratings = run.ratings
    window = ratings.max_voltage_V - ratings.min_voltage_V
    safety = run.procedure.safety.model_copy(
        update={
            "min_voltage_V": ratings.min_voltage_V + 0.55 * window,
            "max_voltage_V": ratings.min_voltage_V + 0.72 * window,
        }
    )
    procedure = run.procedure.model_copy(update={"safety": safety})
    return RunProcedure(procedure, ratings, run.expected_duration_s, run.criterion, run.test_code)

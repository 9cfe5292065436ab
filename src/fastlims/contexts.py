"""What the durable workflows of this process work with, bound in one place.

DBOS is process-global: its workflows and steps are module functions registered by name, so they
cannot be handed their database, storage or settings as arguments. Each set of registered
functions declares a :class:`Slot` for its context (the pipeline's ``workflow.CONTEXT``, the
virtual bench's ``virtual.CONTEXT``). The composition root decides what goes into each slot;
the pipeline engine fills them all when it launches DBOS and empties them all when it shuts
down (``PipelineEngine.launch`` and ``shutdown``). So every slot is filled before DBOS recovers
a single workflow, and none outlives the engine. A function that runs without its context fails
with an error that says which process should run it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Slot(Generic[T]):
    """A process-wide place for one context; ``what`` names its owner in the error."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None:
            raise RuntimeError(f"no {self.what} runs in this process: start it with fastlims up or fastlims worker")
        return self._value

    def bound_to(self, value: T) -> Binding:
        """This slot with ``value``, for :func:`bind`."""
        return Binding(self, value)

    def __repr__(self) -> str:
        return f"Slot({self.what!r}, {'bound' if self._value is not None else 'empty'})"


@dataclass(frozen=True)
class Binding:
    slot: Slot[Any]
    value: Any


_bound: list[Slot[Any]] = []


def bind(bindings: Iterable[Binding]) -> None:
    """Fill every slot of ``bindings`` at once; refused while an earlier bind is in force (one
    engine per process)."""
    bindings = list(bindings)
    if _bound:
        raise RuntimeError(f"contexts are already bound in this process: {', '.join(s.what for s in _bound)}")
    for binding in bindings:
        binding.slot._value = binding.value  # noqa: SLF001 - this module owns the slots' values
        _bound.append(binding.slot)


def unbind() -> None:
    """Empty every slot :func:`bind` filled."""
    while _bound:
        _bound.pop()._value = None  # noqa: SLF001

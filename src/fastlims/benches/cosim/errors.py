"""The one exception of the co-simulation master."""

from __future__ import annotations

from collections.abc import Iterable


class CosimError(ValueError):
    """A system or a simulation spec that cannot run: every problem found, each naming the FMU,
    variable or field at fault and what to do about it (``problems``)."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) if len(self.problems) == 1 else "\n- " + "\n- ".join(self.problems))

    def __reduce__(self) -> tuple[type[CosimError], tuple[list[str]]]:
        # Crosses process boundaries (run_in_subprocess) with its problems intact.
        return (CosimError, (self.problems,))

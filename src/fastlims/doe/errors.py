"""The one error type of the DoE package."""

from __future__ import annotations

from collections.abc import Iterable


class DoeError(ValueError):
    """A DoE input cannot be turned into a design.

    Carries *every* problem found, not just the first, so an engineer fixing a catalog entry
    or a request sees the whole list at once. Each problem names the parameter or field it is
    about and says what to do.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(problems) or ["unspecified DoE problem"]
        super().__init__("; ".join(self.problems))

"""What the upload checks share: a :class:`Problem`, and what an FMU offers its neighbours
(:class:`FmuInterface`, its :class:`FmuVariable` s) as read from ``modelDescription.xml``.

Plain data, no I/O: :mod:`.validation` fills it, :mod:`.ports` and the interconnection check read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file (and, where it is about one, the variable or reference)."""

    file: str
    variable: str | None
    message: str
    code: str = ""

    def __str__(self) -> str:
        where = f"{self.file} ({self.variable})" if self.variable else self.file
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, str | None]:
        return {"file": self.file, "variable": self.variable, "message": self.message, "code": self.code}


@dataclass(frozen=True)
class FmuVariable:
    """A variable as the model description declares it. ``unit`` is the variable's own unit or
    that of its declared type ("" when neither gives one); ``variability`` is FMI's, with FMI's
    default filled in."""

    name: str
    causality: str
    type: str
    unit: str = ""
    variability: str = "continuous"


@dataclass
class FmuInterface:
    """What the interconnection check needs to know about an FMU."""

    fmi_version: str
    model_identifier: str
    variables: dict[str, FmuVariable] = field(default_factory=dict)

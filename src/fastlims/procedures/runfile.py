"""What a bench is given for one run: the resolved procedure, the UUT's ratings it was resolved
against, how long it is expected to take, and the standard's criterion for the verdict.

The pipeline writes one per designed run (``doe-output/procedures/<design_run_id>.json``); the
bench that runs it reads it back, so a run never depends on the catalog as it is when the run
starts. Pure: JSON in, data out.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

from fastlims.procedures.criteria import Criterion
from fastlims.procedures.model import ResolvedProcedure
from fastlims.procedures.ratings import RatingsError, UutRatings

FORMAT = "fastlims.run-procedure/1"


class RunFileError(ValueError):
    """A run file that cannot be read: says what is wrong with it."""


@dataclass(frozen=True)
class RunProcedure:
    procedure: ResolvedProcedure
    ratings: UutRatings
    expected_duration_s: float
    criterion: Criterion | None = None
    test_code: str = ""

    def to_json(self) -> str:
        document: dict[str, Any] = {
            "format": FORMAT,
            "test_code": self.test_code,
            "expected_duration_s": self.expected_duration_s,
            "uut_ratings": asdict(self.ratings),
            "criterion": asdict(self.criterion) if self.criterion is not None else None,
            "procedure": json.loads(self.procedure.model_dump_json()),
        }
        return json.dumps(document, indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> RunProcedure:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise RunFileError(f"not JSON: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise RunFileError(f"not a {FORMAT} document")
        try:
            procedure = ResolvedProcedure.model_validate(document["procedure"])
            ratings = UutRatings.from_mapping(document["uut_ratings"])
            expected = float(document["expected_duration_s"])
            found = document.get("criterion")
            criterion = None
            if found is not None:
                limits = found.get("limits")
                criterion = Criterion(**{**found, "limits": tuple(limits) if limits is not None else None})
        except (KeyError, TypeError, ValidationError, RatingsError) as exc:
            raise RunFileError(f"{type(exc).__name__}: {exc}") from None
        if not (math.isfinite(expected) and expected > 0):
            raise RunFileError(f"expected_duration_s must be a positive number, got {expected}")
        return cls(procedure, ratings, expected, criterion, str(document.get("test_code") or ""))

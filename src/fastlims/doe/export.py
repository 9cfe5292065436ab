"""Files for ``doe-output/``: the design as JSON (complete, reloadable) and CSV (the runs).

JSON is the source of truth for the pipeline's later steps; CSV is for engineers' spreadsheets
and the benches' operators. Floats are written with ``repr`` so they read back exactly.
"""

from __future__ import annotations

import csv
import io

from pydantic import ValidationError

from fastlims.doe.errors import DoeError
from fastlims.doe.models import Design
from fastlims.doe.spec import validation_problems


def design_to_json(design: Design) -> str:
    """The whole design (factors, runs, quality, warnings, spec) as indented JSON."""
    return design.model_dump_json(indent=2) + "\n"


def design_from_json(text: str | bytes) -> Design:
    """Read back `design_to_json`'s output; `DoeError` naming each bad field otherwise."""
    try:
        return Design.model_validate_json(text)
    except ValidationError as exc:
        raise DoeError(validation_problems(exc, "design")) from exc


def design_to_csv(design: Design) -> str:
    """One row per run: ``run_id``, every factor (in the design's order), ``expected_duration_s``."""
    names = [factor.name for factor in design.factors]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run_id", *names, "expected_duration_s"])
    for run in design.runs:
        writer.writerow([run.run_id, *(repr(run.values[name]) for name in names), repr(run.expected_duration_s)])
    return out.getvalue()

"""The request's test procedure in the pipeline: which procedure, against which ratings, and one
resolved procedure per designed run.

The DoE step designs over the procedure's variables when the test name has no DoE section of its
own (each design run is the procedure with those values), resolves every run against the UUT's
ratings and writes it to ``doe-output/procedures/<design_run_id>.json``, which the bench that runs
it reads. The expected duration of each resolved run books physical benches and, divided by the
FMU set's measured speed, virtual ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from fastlims.catalog import service as catalog
from fastlims.doe import DoeSpec, Parameter
from fastlims.procedures.criteria import Criterion
from fastlims.procedures.defaults import NoDefaultProcedure, criterion, default_procedure
from fastlims.procedures.estimate import expected_duration_s, factors
from fastlims.procedures.model import Procedure, ProcedureError, ResolvedProcedure
from fastlims.procedures.ratings import RatingsError, UutRatings
from fastlims.procedures.requirements import bench_needs
from fastlims.procedures.resolve import resolve
from fastlims.procedures.runfile import RunProcedure
from fastlims.requests import service as requests
from fastlims.requests.models import TestRequest
from fastlims.scheduling import RunNeeds

PROCEDURES_FOLDER = "procedures"


class ProcedureUnavailable(ValueError):
    """The request has no procedure that can run (no ratings, no default, a resolution problem)."""


@dataclass(frozen=True)
class RequestProcedure:
    """What the request will run: its procedure (unresolved), the UUT's ratings, the request's
    custom_profile as ``[t_s, value]`` points (SI, BDF-signed) when a profile step takes it."""

    procedure: Procedure
    ratings: UutRatings
    profile: tuple[tuple[float, float], ...] | None
    source: str  # "default", "request" or "profile"
    test_code: str = ""
    criterion: Criterion | None = None  # the standard's, for the outcomes' verdict


def of_request(session: Session, request: TestRequest) -> RequestProcedure:
    """The request's procedure: the one stored with it at submit, else (a request from before
    requests carried one) the test's default for its UUT and standard. Raises
    :class:`ProcedureUnavailable` naming what is missing."""
    try:
        ratings = UutRatings.from_mapping(catalog.uut_ratings(session=session, code=request.uut.code))
    except (catalog.NotFound, catalog.RatingsMissing, RatingsError) as exc:
        raise ProcedureUnavailable(f"UUT {request.uut.code!r} has no usable ratings: {exc}") from None
    code, standard = request.test.code, request.standard.code
    verdict = criterion(code, ratings, standard=standard)
    try:
        stored = requests.procedure_of(request)
    except ProcedureError as exc:
        raise ProcedureUnavailable(f"the request's stored procedure no longer reads: {exc}") from None
    points = requests.profile_points(request)
    profile = tuple(points) if points is not None else None
    if stored is not None:
        return RequestProcedure(stored, ratings, profile, request.procedure_source or "request", code, verdict)
    try:
        procedure = default_procedure(code, ratings, standard=standard)
    except NoDefaultProcedure as exc:
        raise ProcedureUnavailable(f"test {code!r} has no procedure for {ratings.code!r}: {exc.reason}") from None
    return RequestProcedure(procedure, ratings, profile, "default", code, verdict)


def variable_factors(chosen: RequestProcedure) -> list[Parameter]:
    """The procedure's variables the DoE may vary, within the UUT's ratings."""
    return factors(chosen.procedure, chosen.ratings)


def variable_design(method: str, found: Sequence[Parameter]) -> DoeSpec | None:
    """The design over the procedure's variables (``FASTLIMS_PIPELINE_PROCEDURE_DOE``): two levels
    of each, or None (one run at the default values) for ``nominal`` or when none may vary."""
    if method == "nominal" or not found:
        return None
    return DoeSpec(method="full_factorial", default_levels=2)


def resolve_run(chosen: RequestProcedure, values: Mapping[str, float] | None = None) -> ResolvedProcedure:
    """The procedure of one run: ``values`` for its variables (the others keep their value)."""
    try:
        return resolve(chosen.procedure, chosen.ratings, dict(values or {}), custom_profile=chosen.profile)
    except ProcedureError as exc:
        raise ProcedureUnavailable(str(exc)) from None


def duration_s(resolved: ResolvedProcedure, ratings: UutRatings) -> float:
    """How long the run takes on a bench (the physical test time)."""
    return max(1.0, float(expected_duration_s(resolved, ratings)))


def procedure_key(doe_output: str, design_run_id: str) -> str:
    return f"{doe_output.rstrip('/')}/{PROCEDURES_FOLDER}/{design_run_id}.json"


def run_file(chosen: RequestProcedure, resolved: ResolvedProcedure) -> RunProcedure:
    """What the bench gets for this run (:mod:`fastlims.procedures.runfile`)."""
    return RunProcedure(
        procedure=resolved,
        ratings=chosen.ratings,
        expected_duration_s=duration_s(resolved, chosen.ratings),
        criterion=chosen.criterion,
        test_code=chosen.test_code,
    )


def run_needs(chosen: RequestProcedure, resolved: ResolvedProcedure) -> RunNeeds:
    """What the run's procedure asks of a bench (:mod:`fastlims.procedures.requirements`)."""
    return RunNeeds(**dataclasses.asdict(bench_needs(resolved, chosen.ratings.format)))


def virtual_booking_s(expected_s: float, speed: float, *, factor: float, floor_s: float) -> float:
    """The wall-clock time to book on a virtual bench for a run simulating ``expected_s``
    seconds at ``speed`` simulated seconds per wall second: with a safety ``factor``, at least
    ``floor_s`` (loading FMUs, writing results)."""
    if not (speed > 0 and math.isfinite(speed)):
        raise ValueError(f"speed must be a positive number of simulated seconds per second, got {speed}")
    return max(floor_s, factor * expected_s / speed)

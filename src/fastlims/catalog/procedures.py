"""A catalog test name's default procedure for one UUT: what ``GET /api/v1/test-names/{code}/procedure``
and ``fastlims procedures show`` answer, and the UUT ratings every procedure is checked against.

The procedure itself is the pure core's (:mod:`fastlims.procedures`); this module looks up the
catalog's test name, standard and UUT ratings and says, in the words of the API, what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fastlims.catalog import service
from fastlims.procedures.criteria import Criterion
from fastlims.procedures.defaults import NoDefaultProcedure, bench_kinds, criterion, default_procedure
from fastlims.procedures.estimate import expected_duration_s
from fastlims.procedures.model import Procedure, ProcedureError, ResolvedProcedure
from fastlims.procedures.ratings import RatingsError, UutRatings
from fastlims.procedures.resolve import resolve
from fastlims.procedures.text import format_text


class ProcedureUnavailable(ValueError):
    """No procedure can be given for this request of the API or CLI; ``loc`` names the parameter
    (``("query", "uut")``, ``("path", "code")``) and the message says why and what to do."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        self.loc = loc
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class DefaultProcedure:
    """A test name's default procedure for one UUT, resolved with its variables' default values."""

    test_name: str
    uut: str
    procedure: Procedure
    resolved: ResolvedProcedure
    ratings: UutRatings
    criterion: Criterion | None

    @property
    def bench_kinds(self) -> list[str]:
        """``physical`` always; ``virtual`` unless a step needs a fixture."""
        return sorted(bench_kinds(self.procedure))

    @property
    def expected_duration_s(self) -> float:
        return expected_duration_s(self.resolved, self.ratings)

    def as_json(self) -> dict[str, Any]:
        """The API's and the CLI's document."""
        return {
            "test_name": self.test_name,
            "uut": self.uut,
            "standard": self.resolved.standard,
            "procedure": self.procedure.to_json(),
            "resolved": self.resolved.model_dump(mode="json"),
            "text": format_text(self.procedure),
            "bench_kinds": self.bench_kinds,
            "expected_duration_s": round(self.expected_duration_s, 3),
            "criterion": self.criterion.as_dict() if self.criterion is not None else None,
        }


def ratings_of(*, session: Session, code: str, loc: tuple[str, ...] = ("query", "uut")) -> UutRatings:
    """The UUT's ratings; raises :class:`service.NotFound` for an unknown UUT and
    :class:`ProcedureUnavailable` (naming the missing ratings) for one without them."""
    try:
        return UutRatings.from_mapping(service.uut_ratings(session=session, code=code))
    except service.RatingsMissing as exc:
        raise ProcedureUnavailable(loc, f"{exc}; no procedure resolves without them") from None
    except RatingsError as exc:
        raise ProcedureUnavailable(loc, f"{exc}: correct them in the catalog (fastlims catalog import)") from None


def default_for(*, session: Session, test_code: str, uut: str, standard: str | None = None) -> DefaultProcedure:
    """The default procedure of ``test_code`` for ``uut`` (under ``standard``, else the standard
    that fits the UUT's level). Raises :class:`service.NotFound` (unknown test name, UUT or
    standard) or :class:`ProcedureUnavailable` (no ratings, no default for this UUT or standard)."""
    if service.get_test_name(session=session, code=test_code) is None:
        raise service.NotFound(f"test name {test_code!r} is not in the catalog (GET /api/v1/test-names lists them)")
    if standard is not None and service.get_standard(session=session, code=standard) is None:
        raise service.NotFound(f"standard {standard!r} is not in the catalog (GET /api/v1/standards lists them)")
    ratings = ratings_of(session=session, code=uut)
    try:
        procedure = default_procedure(test_code, ratings, standard=standard)
    except NoDefaultProcedure as exc:
        loc = ("query", "standard") if standard is not None and "for standard" in exc.reason else ("path", "code")
        raise ProcedureUnavailable(loc, exc.reason) from None
    try:
        resolved = resolve(procedure, ratings)
    except ProcedureError as exc:  # a default that does not resolve for these ratings: say which step
        raise ProcedureUnavailable(("path", "code"), f"the default of {test_code} does not resolve: {exc}") from None
    return DefaultProcedure(
        test_name=test_code,
        uut=uut,
        procedure=procedure,
        resolved=resolved,
        ratings=ratings,
        criterion=criterion(test_code, ratings, standard=standard),
    )

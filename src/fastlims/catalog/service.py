"""Catalog queries: lookups by code, a UUT's ratings, and the applicability filter behind the New
Request form."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.catalog.models import UUT, Standard, TestName, TestNameApplicability, UseCase
from fastlims.catalog.schemas import RATING_FIELDS


class NotFound(LookupError):
    """A code the catalog does not hold (the web layer answers 404)."""


class RatingsMissing(ValueError):
    """The UUT exists but its ratings are not (all) in the catalog; the message names the missing
    fields and how to add them."""

    def __init__(self, code: str, missing: list[str]) -> None:
        self.code = code
        self.missing = missing
        super().__init__(
            f"UUT {code!r} has no ratings for {', '.join(missing)}: a lab manager adds them with"
            " 'fastlims catalog export FILE', editing the UUT's row, then 'fastlims catalog import FILE'"
        )


def get_uuts(*, session: Session, active_only: bool = True) -> list[UUT]:
    query = select(UUT).order_by(UUT.code)
    return list(session.scalars(query.where(UUT.is_active) if active_only else query))


def get_use_cases(*, session: Session, active_only: bool = True) -> list[UseCase]:
    query = select(UseCase).order_by(UseCase.name)
    return list(session.scalars(query.where(UseCase.is_active) if active_only else query))


def get_standards(*, session: Session, active_only: bool = True) -> list[Standard]:
    query = select(Standard).order_by(Standard.code)
    return list(session.scalars(query.where(Standard.is_active) if active_only else query))


def get_uut(*, session: Session, code: str) -> UUT | None:
    return session.scalar(select(UUT).where(UUT.code == code))


def uut_ratings(*, session: Session, code: str) -> dict[str, Any]:
    """The UUT's ratings with the names of ``fastlims.procedures.ratings.UutRatings`` (``code``,
    ``chemistry``, ``format`` as "cell"/"module"/"pack", ..., ``max_temperature_C``), for inactive
    UUTs too. Raises :class:`NotFound` for an unknown code and :class:`RatingsMissing` when the UUT
    has no (or incomplete) ratings."""
    uut = get_uut(session=session, code=code)
    if uut is None:
        raise NotFound(f"UUT {code!r} is not in the catalog")
    values: dict[str, Any] = {name: getattr(uut, name) for name in RATING_FIELDS}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        raise RatingsMissing(code, missing)
    ratings: dict[str, Any] = {"code": uut.code, "chemistry": values["chemistry"], "format": values["format"].value}
    ratings["series_count"] = int(values["series_count"])
    ratings["parallel_count"] = int(values["parallel_count"])
    ratings.update({name: float(values[name]) for name in RATING_FIELDS[4:]})  # the measured quantities
    return ratings


def get_use_case(*, session: Session, name: str) -> UseCase | None:
    return session.scalar(select(UseCase).where(UseCase.name == name))


def get_standard(*, session: Session, code: str) -> Standard | None:
    return session.scalar(select(Standard).where(Standard.code == code))


def get_test_name(*, session: Session, code: str) -> TestName | None:
    return session.scalar(select(TestName).where(TestName.code == code))


def applicable_test_names(
    *,
    session: Session,
    uut: str | None = None,
    use_case: str | None = None,
    standard: str | None = None,
) -> list[TestName]:
    """Active test names with an applicable row matching every given filter (omitted = any).

    Inactive UUTs, use cases or standards never make a test applicable.
    """
    rows = (
        select(TestNameApplicability.test_id)
        .join(UUT, UUT.id == TestNameApplicability.uut_id)
        .join(UseCase, UseCase.id == TestNameApplicability.use_case_id)
        .join(Standard, Standard.id == TestNameApplicability.standard_id)
        .where(TestNameApplicability.is_applicable, UUT.is_active, UseCase.is_active, Standard.is_active)
    )
    if uut is not None:
        rows = rows.where(UUT.code == uut)
    if use_case is not None:
        rows = rows.where(UseCase.name == use_case)
    if standard is not None:
        rows = rows.where(Standard.code == standard)
    query = (
        select(TestName)
        .where(TestName.is_active, TestName.id.in_(rows))
        .order_by(TestName.category, TestName.name, TestName.code)
    )
    return list(session.scalars(query))


def is_applicable(*, session: Session, test: TestName, uut: UUT, use_case: UseCase, standard: Standard) -> bool:
    row = session.scalar(
        select(TestNameApplicability).where(
            TestNameApplicability.test_id == test.id,
            TestNameApplicability.uut_id == uut.id,
            TestNameApplicability.use_case_id == use_case.id,
            TestNameApplicability.standard_id == standard.id,
        )
    )
    return bool(row and row.is_applicable)

"""Catalog API: what an engineer (or a partner's script) may request, and what each test does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from fastlims.catalog import procedures, service
from fastlims.catalog.schemas import StandardOut, TestNameOut, TestNameProcedureOut, UseCaseOut, UUTOut
from fastlims.deps import DbSession
from fastlims.procedures.model import procedure_json_schema
from fastlims.users.deps import ApiUser

router = APIRouter(prefix="/api/v1", tags=["catalog"])
#: Public documents outside /api/v1 (no token): partners validate procedures before sending them.
schemas_router = APIRouter(tags=["catalog"])


@router.get("/uuts", response_model=list[UUTOut])
def list_uuts(session: DbSession, _: ApiUser) -> list[UUTOut]:
    """Active units under test, referred to by ``code`` everywhere in the API, with their ratings
    (null where the catalog has none yet). Currents are magnitudes in A, temperatures in degC."""
    return [UUTOut.model_validate(u, from_attributes=True) for u in service.get_uuts(session=session)]


@router.get("/use-cases", response_model=list[UseCaseOut])
def list_use_cases(session: DbSession, _: ApiUser) -> list[UseCaseOut]:
    """Active use cases, referred to by ``name``."""
    return [UseCaseOut(name=u.name, description=u.description) for u in service.get_use_cases(session=session)]


@router.get("/standards", response_model=list[StandardOut])
def list_standards(session: DbSession, _: ApiUser) -> list[StandardOut]:
    return [
        StandardOut(code=s.code, name=s.name, description=s.description) for s in service.get_standards(session=session)
    ]


@router.get("/test-names", response_model=list[TestNameOut])
def list_test_names(
    session: DbSession,
    _: ApiUser,
    uut: str | None = Query(default=None, description="UUT code"),
    use_case: str | None = Query(default=None, description="use case name"),
    standard: str | None = Query(default=None, description="standard code"),
) -> list[TestNameOut]:
    """Active test names applicable to every given filter; without filters, all that apply anywhere."""
    return [
        TestNameOut.model_validate(t, from_attributes=True)
        for t in service.applicable_test_names(session=session, uut=uut, use_case=use_case, standard=standard)
    ]


@router.get("/test-names/{code}/procedure", response_model=TestNameProcedureOut)
def test_name_procedure(
    code: str,
    session: DbSession,
    _: ApiUser,
    uut: str = Query(description="UUT code: the procedure is resolved against its ratings"),
    standard: str | None = Query(default=None, description="standard code; default: the one that fits the UUT"),
) -> dict[str, Any]:
    """The test name's default procedure for the UUT, resolved with its variables' default values.

    404: unknown test name, UUT or standard. 422: the UUT has no ratings, or the test has no
    default for this UUT or standard (the message says why)."""
    return procedures.default_for(session=session, test_code=code, uut=uut, standard=standard).as_json()


@schemas_router.get("/api/schemas/procedure.json")
def procedure_schema() -> dict[str, Any]:
    """The JSON Schema of a test procedure (fastlims-procedure/1), public like the other schemas."""
    return procedure_json_schema()

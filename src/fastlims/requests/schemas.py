"""REST shapes for test requests. Catalog entities are referred to by Code (use cases by Name)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from fastlims.messaging.variables import Variables

DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class TestRequestCreate(BaseModel):
    __test__ = False
    model_config = ConfigDict(extra="forbid")

    uut: Code = Field(description="UUT code, e.g. 'Gen3b - Cell'")
    use_case: Code = Field(description="Use case name, e.g. 'Automotive'")
    standard: Code = Field(description="Standard code, e.g. 'UN38.3'")
    test_name: Code = Field(description="Test name code, from GET /api/v1/test-names")
    preferred_date: datetime | date = Field(
        description="ISO 8601 date or date-time; without an offset it is the lab's local time"
    )
    bench: Literal["Virtual", "Physical"]
    variables: Variables | None = Field(
        default=None,
        description="The seed's Figure 2 variables. test_procedures: empty (the test name's default procedure"
        " runs), text lines, or one fastlims-procedure/1 object; custom_profile.Name: a UUT port role (current,"
        " power, voltage, ambient_temperature; values positive = charge) or an FMU input 'FMU_name/Port'."
        " See docs/procedures.md",
    )

    @field_validator("preferred_date", mode="before")
    @classmethod
    def _plain_date_stays_a_date(cls, value: object) -> object:
        # Pydantic would read "2027-03-01" as midnight; a whole day is meant (today is not "past").
        if isinstance(value, str) and DATE_ONLY.match(value.strip()):
            return date.fromisoformat(value.strip())
        return value


class RequestEventOut(BaseModel):
    kind: str
    actor: str
    at: datetime
    field: str | None
    from_value: str | None
    to_value: str | None
    reason: str | None


class TestRequestOut(BaseModel):
    __test__ = False
    model_config = ConfigDict(populate_by_name=True)

    request_number: str
    test_UUID: str
    status: str
    uut: str
    use_case: str
    standard: str
    test_name: str
    test_name_title: str
    bench: str
    preferred_date: datetime
    requester_id: str
    requester_name: str
    variables: Variables | None
    procedure_source: str | None = Field(
        default=None, description="Where the procedure comes from: default (the test name's), request or profile"
    )
    procedure: dict[str, Any] | None = Field(
        default=None,
        description="The procedure the request runs, unresolved (the fastlims-procedure/1 form,"
        " GET /api/schemas/procedure.json); in the answer about one request, not in lists",
    )
    failure_reason: str | None
    simulation_progress: int
    simulation_folder: str | None
    optimised_start: datetime | None
    assigned_bench: str | None
    created_at: datetime
    updated_at: datetime
    timestamps: dict[str, datetime | None]
    events: list[RequestEventOut] | None = None


class TestRequestPage(BaseModel):
    items: list[TestRequestOut]
    total: int
    page: int
    page_size: int


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""

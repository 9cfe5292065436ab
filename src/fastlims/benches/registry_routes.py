"""The bench registry over HTTP: anyone signed in reads it; a lab manager adds, changes, disables
and enables benches (the same functions as ``fastlims benches``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from fastlims.benches import registry
from fastlims.benches.gateway.models import BenchLiveState
from fastlims.deps import DbSession, SystemDep
from fastlims.users.deps import ApiUser, require_api_role
from fastlims.users.models import Role, User

router = APIRouter(prefix="/api/v1/benches", tags=["benches"])
LabManager = Annotated[User, Depends(require_api_role(Role.lab_manager))]


class BenchRatingsIn(BaseModel):
    """Ratings (``null``: no limit, for a virtual bench)."""

    model_config = ConfigDict(extra="forbid")

    max_current_A: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    min_voltage_V: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_voltage_V: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    channels: int = Field(default=1, ge=1, le=1024)
    temperature_chamber: bool = False


class BenchIn(BenchRatingsIn):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["physical", "virtual"]
    capabilities: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=32)
    calendar: dict[str, Any] | None = None


class BenchChange(BaseModel):
    """Only the fields given change; ``capabilities`` replaces the list."""

    model_config = ConfigDict(extra="forbid")

    max_current_A: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    min_voltage_V: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_voltage_V: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    channels: int | None = Field(default=None, ge=1, le=1024)
    temperature_chamber: bool | None = None
    capabilities: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=32)
    calendar: dict[str, Any] | None = None


class BenchReported(BaseModel):
    """What a physical bench last said about itself on its ``state`` topic."""

    state: str
    run_id: str | None
    since: datetime
    capabilities: dict[str, Any] | None


class BenchOut(BenchRatingsIn):
    name: str
    kind: str
    active: bool
    capabilities: list[str]
    calendar: dict[str, Any] | None
    reported: BenchReported | None = None


def bench_out(record: registry.BenchRecord, live: BenchLiveState | None = None) -> BenchOut:
    ratings = registry.ratings_of(record)
    reported = None
    if live is not None:
        reported = BenchReported(state=live.state, run_id=live.run_id, since=live.since, capabilities=live.capabilities)
    return BenchOut(
        reported=reported,
        name=record.name,
        kind=record.kind,
        active=record.is_active,
        capabilities=sorted(record.capabilities),
        calendar=record.calendar,
        max_current_A=ratings.max_current_A,
        min_voltage_V=ratings.min_voltage_V,
        max_voltage_V=ratings.max_voltage_V,
        channels=ratings.channels,
        temperature_chamber=ratings.temperature_chamber,
    )


def _refused(exc: registry.BenchError) -> HTTPException:
    not_found = isinstance(exc, registry.BenchNotFound)
    code = status.HTTP_404_NOT_FOUND if not_found else status.HTTP_422_UNPROCESSABLE_CONTENT
    return HTTPException(code, str(exc))


@router.get("", response_model=list[BenchOut])
def list_benches(session: DbSession, user: ApiUser, include_disabled: bool = False) -> list[BenchOut]:
    """The registry's benches (active ones unless ``include_disabled``)."""
    live = {row.bench: row for row in session.scalars(select(BenchLiveState))}
    records = registry.get_all(session=session, active_only=not include_disabled)
    return [bench_out(r, live.get(r.name)) for r in records]


@router.post("", response_model=BenchOut, status_code=status.HTTP_201_CREATED)
def add_bench(body: BenchIn, session: DbSession, user: LabManager, system: SystemDep) -> BenchOut:
    """Add a bench; 422 naming what is wrong (a physical bench needs its current and voltage)."""
    ratings = registry.Ratings(
        body.max_current_A, body.min_voltage_V, body.max_voltage_V, body.channels, body.temperature_chamber
    )
    try:
        record = registry.add(
            session=session,
            name=body.name,
            kind=body.kind,
            capabilities=body.capabilities,
            calendar=body.calendar,
            zone=system.settings.timezone,
            ratings=ratings,
        )
    except registry.BenchError as exc:
        raise _refused(exc) from None
    return bench_out(record)


@router.patch("/{name}", response_model=BenchOut)
def change_bench(name: str, body: BenchChange, session: DbSession, user: LabManager, system: SystemDep) -> BenchOut:
    """Change a bench's ratings, capabilities or calendar; new schedules use them."""
    given = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in given.items() if k in registry.RATING_FIELDS and v is not None}
    try:
        record = registry.update(
            session=session,
            name=name,
            changes=changes,
            capabilities=given.get("capabilities"),
            calendar=given.get("calendar"),
            zone=system.settings.timezone,
        )
    except registry.BenchError as exc:
        raise _refused(exc) from None
    return bench_out(record)


@router.post("/{name}/disable", response_model=BenchOut)
def disable_bench(name: str, session: DbSession, user: LabManager) -> BenchOut:
    """Take a bench out of scheduling (its booked runs stay booked)."""
    try:
        return bench_out(registry.set_active(session=session, name=name, active=False))
    except registry.BenchError as exc:
        raise _refused(exc) from None


@router.post("/{name}/enable", response_model=BenchOut)
def enable_bench(name: str, session: DbSession, user: LabManager) -> BenchOut:
    """Put a bench back into scheduling."""
    try:
        return bench_out(registry.set_active(session=session, name=name, active=True))
    except registry.BenchError as exc:
        raise _refused(exc) from None

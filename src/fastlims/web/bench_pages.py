"""The lab manager's bench page: the registry as a table, and forms to add a bench, change its
ratings, and disable or enable it (what ``fastlims benches`` does). Anyone signed in sees the
table; only a lab manager or admin gets the forms, and only they may post them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from fastlims.benches import registry
from fastlims.benches.gateway.models import BenchLiveState
from fastlims.deps import DbSession, SystemDep
from fastlims.users.models import Role, User
from fastlims.web.deps import PageUser, check_csrf
from fastlims.web.pages import render

router = APIRouter(include_in_schema=False)


def _manager(user: PageUser) -> User:
    if not user.can(Role.lab_manager):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "changing benches needs the lab_manager role")
    return user


Manager = Annotated[User, Depends(_manager)]


def _number(text: str, label: str, errors: list[str], *, integer: bool = False) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        errors.append(f"{label}: {text!r} is not a number")
        return None


def _page(
    request: Request,
    session: DbSession,
    user: User,
    *,
    errors: Sequence[str] = (),
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    benches = registry.get_all(session=session, active_only=False)
    live = {row.bench: row for row in session.scalars(select(BenchLiveState))}
    rows = [(b, registry.ratings_of(b), live.get(b.name)) for b in benches]
    context = {
        "user": user,
        "rows": rows,
        "errors": list(errors),
        "form": form or {},
        "may_edit": user.can(Role.lab_manager),
    }
    return render(request, "benches.html", context, status_code=status_code)


@router.get("/benches", response_class=HTMLResponse)
def bench_page(request: Request, session: DbSession, user: PageUser) -> HTMLResponse:
    return _page(request, session, user)


def _ratings_from(form: dict[str, str], errors: list[str]) -> dict[str, Any]:
    return {
        "max_current_A": _number(form["max_current"], "max current", errors),
        "min_voltage_V": _number(form["min_voltage"], "min voltage", errors),
        "max_voltage_V": _number(form["max_voltage"], "max voltage", errors),
        "channels": _number(form["channels"], "channels", errors, integer=True),
    }


def _calendar(text: str, errors: list[str]) -> dict[str, Any] | None:
    if not text.strip():
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        errors.append(f"calendar: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        return None
    if not isinstance(document, dict):
        errors.append("calendar: a JSON object (timezone, weekly_hours, closed_dates, maintenance)")
        return None
    return document


def _capabilities(text: str) -> list[str]:
    return [c for c in text.replace(",", " ").split() if c]


@router.post("/benches", dependencies=[Depends(check_csrf)])
def add_bench(
    request: Request,
    session: DbSession,
    user: Manager,
    system: SystemDep,
    name: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "",
    capabilities: Annotated[str, Form()] = "",
    max_current: Annotated[str, Form()] = "",
    min_voltage: Annotated[str, Form()] = "",
    max_voltage: Annotated[str, Form()] = "",
    channels: Annotated[str, Form()] = "",
    temperature_chamber: Annotated[str, Form()] = "",
    calendar: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "name": name,
        "kind": kind,
        "capabilities": capabilities,
        "max_current": max_current,
        "min_voltage": min_voltage,
        "max_voltage": max_voltage,
        "channels": channels,
        "temperature_chamber": temperature_chamber,
        "calendar": calendar,
    }
    errors: list[str] = []
    numbers = _ratings_from(form, errors)
    document = _calendar(calendar, errors)
    if not errors:
        ratings = registry.Ratings(
            numbers["max_current_A"],
            numbers["min_voltage_V"],
            numbers["max_voltage_V"],
            numbers["channels"] or 1,
            bool(temperature_chamber),
        )
        try:
            registry.add(
                session=session,
                name=name.strip(),
                kind=kind,
                capabilities=_capabilities(capabilities),
                calendar=document,
                zone=system.settings.timezone,
                ratings=ratings,
            )
        except registry.BenchError as exc:
            errors.append(str(exc))
    if errors:
        return _page(request, session, user, errors=errors, form=form, status_code=422)
    return RedirectResponse("/benches", status_code=303)


@router.post("/benches/{name}", dependencies=[Depends(check_csrf)])
def change_bench(
    request: Request,
    name: str,
    session: DbSession,
    user: Manager,
    system: SystemDep,
    capabilities: Annotated[str, Form()] = "",
    max_current: Annotated[str, Form()] = "",
    min_voltage: Annotated[str, Form()] = "",
    max_voltage: Annotated[str, Form()] = "",
    channels: Annotated[str, Form()] = "",
    temperature_chamber: Annotated[str, Form()] = "",
) -> Response:
    form = {"max_current": max_current, "min_voltage": min_voltage, "max_voltage": max_voltage, "channels": channels}
    errors: list[str] = []
    numbers = _ratings_from(form, errors)
    if not errors:
        changes = {k: v for k, v in numbers.items() if v is not None}
        changes["temperature_chamber"] = bool(temperature_chamber)
        try:
            registry.update(
                session=session,
                name=name,
                changes=changes,
                capabilities=_capabilities(capabilities),
                zone=system.settings.timezone,
            )
        except registry.BenchError as exc:
            errors.append(str(exc))
    if errors:
        return _page(request, session, user, errors=errors, status_code=422)
    return RedirectResponse("/benches", status_code=303)


@router.post("/benches/{name}/disable", dependencies=[Depends(check_csrf)])
def disable_bench(name: str, session: DbSession, user: Manager) -> Response:
    try:
        registry.set_active(session=session, name=name, active=False)
    except registry.BenchError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return RedirectResponse("/benches", status_code=303)


@router.post("/benches/{name}/enable", dependencies=[Depends(check_csrf)])
def enable_bench(name: str, session: DbSession, user: Manager) -> Response:
    try:
        registry.set_active(session=session, name=name, active=True)
    except registry.BenchError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return RedirectResponse("/benches", status_code=303)

"""The seed's three pages (Dashboard, Test Requests, New Request), the request detail page and
login, server-rendered with Jinja2 and HTMX. Routes only translate to service calls."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from fastlims.benches import sandboxing
from fastlims.catalog import service as catalog
from fastlims.deps import DbSession, Parts, SystemDep
from fastlims.intake.deps import IntakeDep
from fastlims.intake.service import Intake
from fastlims.requests import service as requests_service
from fastlims.requests.schemas import TestRequestCreate
from fastlims.requests.states import CANCELLABLE, TERMINAL, Status
from fastlims.runs import queries as runs_service
from fastlims.timeutil import format_local
from fastlims.users import service as users
from fastlims.web import run_views
from fastlims.web.deps import PageUser, check_csrf, csrf_token, start_page_session

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
router = APIRouter(include_in_schema=False)

STATUS_STYLE = {
    Status.Submitted: "secondary",
    Status.ModelRequested: "info",
    Status.ModelReady: "info",
    Status.DoeComplete: "info",
    Status.ScheduleReady: "primary",
    Status.Running: "warning",
    Status.SimulationComplete: "warning",
    Status.Completed: "success",
    Status.Failed: "danger",
    Status.Cancelled: "dark",
}
LIFECYCLE = [s for s in Status if s not in (Status.Failed, Status.Cancelled)]


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    system: Parts = request.app.state.system

    def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return format_local(value, system.zone, fmt)

    base = {
        "csrf_token": csrf_token(request),
        "zone": system.settings.timezone,
        "local": local,
        "Status": Status,
        "status_style": STATUS_STYLE,
        "sandbox_warning": sandboxing.warning(system.settings),
    }
    return TEMPLATES.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002
    return render(request, "login.html", {"next": next, "error": None, "user": None})


def _safe_next(target: str) -> str:
    # Only same-site paths: an open redirect would let a phishing link borrow our login page.
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login", dependencies=[Depends(check_csrf)])
def login(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",  # noqa: A002
) -> Response:
    """A plain ``def``: FastAPI runs it in a worker thread, so argon2 never blocks the event loop."""
    system = request.app.state.system
    try:
        user = users.login(
            session=session,
            throttle=system.login_throttle,
            username=username.strip(),
            password=password,
            address=request.client.host if request.client else None,
        )
    except users.LoginLocked as exc:
        response = render(request, "login.html", {"next": next, "error": str(exc), "user": None}, status_code=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if user is not None and not user.is_lab_user:
        return render(
            request,
            "login.html",
            {
                "next": next,
                "error": "This account only uploads model files over the API; it has no pages.",
                "user": None,
            },
            status_code=403,
        )
    if user is None:
        return render(
            request,
            "login.html",
            {"next": next, "error": "Unknown user or wrong password.", "user": None},
            status_code=401,
        )
    start_page_session(request, user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", dependencies=[Depends(check_csrf)])
def logout(request: Request, session: DbSession) -> Response:
    """End the session on the server too: the cookie is signed, not stored, so a copy of it would
    otherwise stay valid until it expires."""
    username = request.session.get("user")
    user = users.get_by_username(session=session, username=username) if username else None
    if user is not None and request.session.get("generation") == user.session_generation:
        users.end_page_sessions(session=session, user=user)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, session: DbSession, user: PageUser) -> HTMLResponse:
    counts = requests_service.counts_by_status(session=session, user=user)
    total = sum(counts.values())
    running_states = (
        Status.ModelRequested,
        Status.ModelReady,
        Status.DoeComplete,
        Status.ScheduleReady,
        Status.Running,
        Status.SimulationComplete,
    )
    finished = counts[Status.Completed] + counts[Status.Failed]
    stats = {
        "total": total,
        "submitted": counts[Status.Submitted],
        "running": sum(counts[s] for s in running_states),
        "completed": counts[Status.Completed],
        "failed": counts[Status.Failed],
        "success_rate": (100.0 * counts[Status.Completed] / finished) if finished else None,
    }
    recent, _ = requests_service.get_all(session=session, user=user, page=1, page_size=8)
    return render(request, "dashboard.html", {"user": user, "stats": stats, "counts": counts, "recent": recent})


@router.get("/requests", response_class=HTMLResponse)
def request_list(
    request: Request,
    session: DbSession,
    user: PageUser,
    status: str | None = None,
    page: int = Query(default=1, ge=1),
) -> HTMLResponse:
    wanted = Status.from_name(status) if status in Status.__members__ else None
    items, total = requests_service.get_all(session=session, user=user, status=wanted, page=page, page_size=25)
    return render(
        request,
        "requests_list.html",
        {
            "user": user,
            "items": items,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // 25)),
            "wanted": wanted,
        },
    )


def _catalog_context(session: DbSession) -> dict[str, Any]:
    return {
        "uuts": catalog.get_uuts(session=session),
        "use_cases": catalog.get_use_cases(session=session),
        "standards": catalog.get_standards(session=session),
    }


@router.get("/requests/new", response_class=HTMLResponse)
def new_request_form(request: Request, session: DbSession, user: PageUser) -> HTMLResponse:
    return render(
        request,
        "request_new.html",
        {"user": user, "form": {}, "errors": {}, "test_names": [], **_catalog_context(session)},
    )


@router.get("/fragments/test-names", response_class=HTMLResponse)
def test_name_options(
    request: Request,
    session: DbSession,
    user: PageUser,
    uut: str = "",
    use_case: str = "",
    standard: str = "",
    selected: str = "",
) -> HTMLResponse:
    """The New Request form's live filter: options narrowed by UUT, use case and standard."""
    names = catalog.applicable_test_names(
        session=session, uut=uut or None, use_case=use_case or None, standard=standard or None
    )
    return render(request, "fragments/test_name_options.html", {"test_names": names, "selected": selected})


@router.post("/requests/new", dependencies=[Depends(check_csrf)])
def submit_request(
    request: Request,
    session: DbSession,
    user: PageUser,
    system: SystemDep,
    uut: Annotated[str, Form()] = "",
    use_case: Annotated[str, Form()] = "",
    standard: Annotated[str, Form()] = "",
    test_name: Annotated[str, Form()] = "",
    preferred_date: Annotated[str, Form()] = "",
    bench: Annotated[str, Form()] = "",
    variables: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "uut": uut,
        "use_case": use_case,
        "standard": standard,
        "test_name": test_name,
        "preferred_date": preferred_date,
        "bench": bench,
        "variables": variables,
    }
    errors: dict[str, str] = {}
    payload: dict[str, Any] = {k: v for k, v in form.items() if k != "variables"}
    if variables.strip():
        try:
            payload["variables"] = json.loads(variables)
        except json.JSONDecodeError as exc:
            errors["variables"] = f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    request_obj = None
    if not errors:
        try:
            data = TestRequestCreate.model_validate(payload)
            request_obj = requests_service.create(session=session, data=data, requester=user, zone=system.zone)
        except ValidationError as exc:
            for error in exc.errors():
                errors.setdefault(*_form_error(error))
        except requests_service.RequestInvalid as exc:
            for problem in exc.problems:
                # Every problem of the variables (each step of a procedure) shows under the one field.
                field, _, part = problem.field.partition(".")
                message = f"{part}: {problem.message}" if part else problem.message
                errors[field] = f"{errors[field]}; {message}" if field in errors else message
    if errors or request_obj is None:
        names = catalog.applicable_test_names(
            session=session, uut=uut or None, use_case=use_case or None, standard=standard or None
        )
        return render(
            request,
            "request_new.html",
            {"user": user, "form": form, "errors": errors, "test_names": names, **_catalog_context(session)},
            status_code=422,
        )
    return RedirectResponse(f"/requests/{quote(request_obj.request_number)}", status_code=303)


_CHOICES = {
    "uut": "a UUT",
    "use_case": "a use case",
    "standard": "a standard",
    "test_name": "a test name",
    "preferred_date": "a preferred date",
    "bench": "a bench",
}


def _form_error(error: Any) -> tuple[str, str]:
    """Pydantic's error in the words of the form: an empty select says what to choose."""
    location = [str(part) for part in error["loc"]]
    field = location[0] if location else "form"
    if field in _CHOICES and (
        error["type"] in ("string_too_short", "missing") or (field == "preferred_date" and error.get("input") == "")
    ):
        return field, f"required: choose {_CHOICES[field]}"
    where = f" (at {'.'.join(location[1:])})" if len(location) > 1 else ""
    return field, f"{error['msg']}{where}"


@router.get("/requests/{request_number}", response_class=HTMLResponse)
def request_detail(
    request: Request, request_number: str, session: DbSession, user: PageUser, intake: IntakeDep, system: SystemDep
) -> HTMLResponse:
    try:
        item = requests_service.get_for(session=session, request_number=request_number, user=user)
    except requests_service.NotFound as exc:  # also Forbidden: another's request looks unknown
        return render(request, "error.html", {"user": user, "message": str(exc)}, status_code=404)
    variables = requests_service.variables_of(item)
    return render(
        request,
        "request_detail.html",
        {
            "user": user,
            "item": item,
            "status": Status(item.status),
            "lifecycle": LIFECYCLE,
            "variables_json": json.dumps(variables, indent=2) if variables else None,
            "procedure_text": _procedure_text(item),
            "cancellable": Status(item.status) in CANCELLABLE,
            "live": Status(item.status) not in TERMINAL,
            "runs": runs_service.runs_of(session=session, request=item),
            "results": run_views.results_of(session=session, intake=intake, request=item, zone=system.zone),
            "gantt": _gantt_of(intake, item),
        },
    )


def _procedure_text(item: Any) -> str | None:
    """The request's procedure in the text form (what it will run), or None without one."""
    from fastlims.procedures.model import ProcedureError
    from fastlims.procedures.text import format_text

    try:
        procedure = requests_service.procedure_of(item)
    except ProcedureError:
        return None
    return format_text(procedure) if procedure is not None else None


def _gantt_of(intake: Intake, item: Any) -> str | None:
    """The schedule picture the pipeline drew, as a data URI (an <img> runs no script in an SVG)."""
    if not item.schedule_ready_at or not item.simulation_folder:
        return None
    from fastlims.intake import layout
    from fastlims.pipeline.booking import GANTT_FILE

    try:
        svg = intake.storage.get(f"{item.simulation_folder}/{layout.SCHEDULE_OUTPUT}/{GANTT_FILE}")
    except (FileNotFoundError, OSError):
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


@router.get("/requests/{request_number}/runs/{run_id}/results.csv")
def run_results_csv(
    request_number: str, run_id: str, session: DbSession, user: PageUser, intake: IntakeDep
) -> Response:
    from fastlims.runs.routes import results_csv_response

    try:
        item = requests_service.get_for(session=session, request_number=request_number, user=user)
    except requests_service.NotFound as exc:  # also Forbidden: another's request looks unknown
        return Response(str(exc), status_code=404)
    return results_csv_response(session, intake, item, run_id)


@router.post("/requests/{request_number}/cancel", dependencies=[Depends(check_csrf)])
def cancel_request(
    request: Request,
    request_number: str,
    session: DbSession,
    user: PageUser,
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        item = requests_service.get(session=session, request_number=request_number)
        requests_service.cancel(session=session, request=item, user=user, reason=reason.strip())
    except (requests_service.NotFound, requests_service.RequestInvalid) as exc:
        code = 404 if isinstance(exc, requests_service.NotFound) else 409  # Forbidden is a NotFound
        return render(request, "error.html", {"user": user, "message": str(exc)}, status_code=code)
    return RedirectResponse(f"/requests/{quote(request_number)}", status_code=303)


def today_iso() -> str:
    return date.today().isoformat()

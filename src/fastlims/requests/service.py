"""The test-request lifecycle: create, read, cancel and move requests through their states.

Web routes only translate HTTP to these functions; every rule lives here or in ``states``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fastlims.catalog import procedures as catalog_procedures
from fastlims.catalog import service as catalog
from fastlims.messaging.variables import Variables
from fastlims.procedures.model import Procedure
from fastlims.requests import messages
from fastlims.requests import procedures as request_procedures
from fastlims.requests.models import TestRequest, TestRequestEvent
from fastlims.requests.schemas import TestRequestCreate
from fastlims.requests.states import CANCELLABLE, IllegalTransition, Status, transition
from fastlims.timeutil import start_of_day_utc, to_local, to_utc, utcnow
from fastlims.users.models import Role, User


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class RequestInvalid(ValueError):
    """The submitted request cannot be accepted; one problem per offending field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class NotFound(LookupError):
    pass


class Forbidden(NotFound):
    """A request another user may not see: answered exactly like an unknown one (404, the same
    message), so request numbers cannot be probed for existence."""


def _preferred_utc(value: datetime | date, zone: ZoneInfo) -> tuple[datetime, bool]:
    """UTC instant of the preferred date and whether it is in the past (a whole day is compared
    as a day in the lab's zone, so 'today' is accepted all day)."""
    now = utcnow()
    if isinstance(value, datetime):
        instant = to_utc(value, zone)
        return instant, instant < now
    instant = start_of_day_utc(value, zone)
    today_local = now.astimezone(zone).date()
    return instant, value < today_local


_CATALOG_FIELDS = ("uut", "use_case", "standard", "test_name")


def create(*, session: Session, data: TestRequestCreate, requester: User, zone: ZoneInfo) -> TestRequest:
    """Check the combination against the catalog and the procedure against the UUT's ratings, and
    store a Submitted request with the procedure it will run (``requests.procedures``)."""
    problems: list[FieldProblem] = []
    uut = catalog.get_uut(session=session, code=data.uut)
    use_case = catalog.get_use_case(session=session, name=data.use_case)
    standard = catalog.get_standard(session=session, code=data.standard)
    test = catalog.get_test_name(session=session, code=data.test_name)
    for field, entity, label in (
        ("uut", uut, f"UUT {data.uut!r}"),
        ("use_case", use_case, f"use case {data.use_case!r}"),
        ("standard", standard, f"standard {data.standard!r}"),
        ("test_name", test, f"test name {data.test_name!r}"),
    ):
        if entity is None:
            problems.append(FieldProblem(field, f"{label} is not in the catalog"))
        elif not entity.is_active:
            problems.append(FieldProblem(field, f"{label} is no longer offered (inactive)"))
    preferred, in_past = _preferred_utc(data.preferred_date, zone)
    if in_past:
        problems.append(FieldProblem("preferred_date", f"{data.preferred_date.isoformat()} is in the past"))
    if test is not None and not test.bench_kind.allows(data.bench):
        problems.append(
            FieldProblem("bench", f"test {test.code!r} runs on {test.bench_kind.value} benches only, not {data.bench}")
        )
    found = not any(p.field in _CATALOG_FIELDS for p in problems)
    if (
        uut
        and use_case
        and standard
        and test
        and found
        and not catalog.is_applicable(session=session, test=test, uut=uut, use_case=use_case, standard=standard)
    ):
        problems.append(
            FieldProblem(
                "test_name",
                f"test {test.code!r} is not applicable to UUT {uut.code!r}, use case {use_case.name!r}"
                f" under standard {standard.code!r}; GET /api/v1/test-names with these filters"
                " lists those that are",
            )
        )
    chosen = None
    offered = not any(p.field in _CATALOG_FIELDS for p in problems)
    if offered and uut is not None and standard is not None and test is not None:
        # The procedure is checked for a combination the catalog offers (a default exists only there).
        chosen, more = _procedure(session, data, uut_code=uut.code, test_code=test.code, standard_code=standard.code)
        if any(p.field == "bench" for p in problems):
            more = [p for p in more if p.field != "bench"]  # the catalog's bench kind already said it
        problems += more
    if problems:
        raise RequestInvalid(problems)
    assert uut and use_case and standard and test and chosen

    test_uuid = str(uuid.uuid4())
    request = TestRequest(
        request_number=f"P-{test_uuid.replace('-', '')[:30]}",  # replaced below, fits String(32)
        test_uuid=test_uuid,
        requester_id=requester.username,
        requester_name=requester.display_name,
        preferred_test_schedule_date=preferred,
        uut_id=uut.id,
        use_case_id=use_case.id,
        standard_id=standard.id,
        test_id=test.id,
        test_bench=data.bench,
        status=int(Status.Submitted),
        variables_json=data.variables.model_dump_json() if data.variables else None,
        procedure_json=json.dumps(chosen.procedure.to_json()),
        procedure_source=chosen.source,
    )
    session.add(request)
    session.flush()
    # The row id makes the number unique without a race; the year reads well on paper.
    year = utcnow().astimezone(zone).year
    request.request_number = f"TR-{year}-{request.id:06d}"
    session.add(TestRequestEvent(request_id=request.id, kind="created", actor=requester.username, to_value="Submitted"))
    session.flush()
    # Same transaction: the request is stored if and only if its messages are (transactional outbox).
    messages.enqueue_request(session, request)
    messages.enqueue_status(session, request)
    return request


def _procedure(
    session: Session, data: TestRequestCreate, *, uut_code: str, test_code: str, standard_code: str
) -> tuple[request_procedures.Chosen | None, list[FieldProblem]]:
    """The procedure the request will run, checked against the UUT's ratings and the bench kind."""
    try:
        ratings = catalog_procedures.ratings_of(session=session, code=uut_code)
    except catalog_procedures.ProcedureUnavailable as exc:
        return None, [FieldProblem("uut", exc.message)]
    chosen, found = request_procedures.choose(
        data.variables, ratings, test_code=test_code, standard=standard_code, bench=data.bench
    )
    return chosen, [FieldProblem(field, message) for field, message in found]


def procedure_of(request: TestRequest) -> Procedure | None:
    """The procedure the request runs (unresolved: resolve it per DoE run), or None for a request
    stored before requests carried one. Raises ProcedureError if the stored JSON no longer parses."""
    if not request.procedure_json:
        return None
    return request_procedures.parse_stored(request.procedure_json)


def profile_points(request: TestRequest) -> list[tuple[float, float]] | None:
    """The request's role-named ``custom_profile`` as SI, BDF-signed ``(t_s, value)`` points (A, W,
    V; degC for ambient_temperature), for ``resolve(..., custom_profile=...)``; None without one
    (or with the ``FMU_name/Port`` form, which drives that FMU input directly)."""
    if not request.variables_json:
        return None
    profile = Variables.model_validate_json(request.variables_json).custom_profile
    if request_procedures.profile_role(profile) is None:
        return None
    assert profile is not None
    return request_procedures.si_points(profile)


def visible_to(user: User, request: TestRequest) -> bool:
    return user.can(Role.lab_manager) or request.requester_id == user.username


def get(*, session: Session, request_number: str) -> TestRequest:
    request = session.scalar(select(TestRequest).where(TestRequest.request_number == request_number))
    if request is None:
        raise NotFound(f"test request {request_number!r} does not exist")
    return request


def get_by_uuid(*, session: Session, test_uuid: str) -> TestRequest:
    request = session.scalar(select(TestRequest).where(TestRequest.test_uuid == test_uuid))
    if request is None:
        raise NotFound(f"no test request has test_UUID {test_uuid!r}")
    return request


def get_for(*, session: Session, request_number: str, user: User) -> TestRequest:
    request = get(session=session, request_number=request_number)
    if not visible_to(user, request):
        raise Forbidden(f"test request {request_number!r} does not exist")
    return request


def get_all(
    *, session: Session, user: User, status: Status | None = None, page: int = 1, page_size: int = 50
) -> tuple[list[TestRequest], int]:
    """Requesters see their own requests, lab managers and admins everyone's; newest first."""
    query = select(TestRequest)
    if not user.can(Role.lab_manager):
        query = query.where(TestRequest.requester_id == user.username)
    if status is not None:
        query = query.where(TestRequest.status == int(status))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = session.scalars(query.order_by(TestRequest.id.desc()).offset((page - 1) * page_size).limit(page_size)).all()
    return list(items), total


def counts_by_status(*, session: Session, user: User | None = None) -> dict[Status, int]:
    query = select(TestRequest.status, func.count()).group_by(TestRequest.status)
    if user is not None and not user.can(Role.lab_manager):
        query = query.where(TestRequest.requester_id == user.username)
    counts = {status: 0 for status in Status}
    for status, number in session.execute(query):
        counts[Status(status)] = number
    return counts


def change_status(
    *,
    session: Session,
    request: TestRequest,
    target: Status,
    actor: str,
    reason: str | None = None,
    expected: Status | None = None,
) -> TestRequest:
    """Move a request through the lifecycle, setting the state's timestamp and auditing it.

    ``expected`` guards idempotent callers (a retried pipeline step): the move only happens
    from that state. Illegal moves raise ``IllegalTransition``.
    """
    current = Status(request.status)
    if expected is not None and current is not expected:
        raise IllegalTransition(current, target)
    move = transition(current, target, reason)
    now = utcnow()
    request.status = int(target)
    if move.timestamp_attribute:
        setattr(request, move.timestamp_attribute, now)
    if target is Status.Failed:
        request.failure_reason = reason
    request.updated_at = now
    session.add(
        TestRequestEvent(
            request_id=request.id,
            kind="status",
            actor=actor,
            at=now,
            from_value=current.name,
            to_value=target.name,
            reason=reason,
        )
    )
    session.flush()
    messages.enqueue_status(session, request)
    return request


def cancel(*, session: Session, request: TestRequest, user: User, reason: str = "") -> TestRequest:
    if not visible_to(user, request):
        raise Forbidden(f"test request {request.request_number!r} does not exist")
    current = Status(request.status)
    if current not in CANCELLABLE:
        raise RequestInvalid([FieldProblem("status", f"a request in state {current.name} can no longer be cancelled")])
    return change_status(
        session=session,
        request=request,
        target=Status.Cancelled,
        actor=user.username,
        reason=reason or f"cancelled by {user.username}",
    )


def variables_of(request: TestRequest) -> dict[str, object] | None:
    return json.loads(request.variables_json) if request.variables_json else None


def local_iso(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    return to_local(value, zone)


def audit(
    *,
    session: Session,
    test_uuid: str,
    actor: str,
    reason: str,
    field: str | None = None,
    from_value: str | None = None,
    to_value: str | None = None,
) -> None:
    """An entry in the request's audit trail that is not a status change (a run moved to
    another bench, ...): kind ``run``."""
    request = get_by_uuid(session=session, test_uuid=test_uuid)
    session.add(
        TestRequestEvent(
            request_id=request.id, kind="run", actor=actor, at=utcnow(), field=field,
            from_value=from_value, to_value=to_value, reason=reason[:4000],
        )
    )  # fmt: skip

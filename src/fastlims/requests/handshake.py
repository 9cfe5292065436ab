"""The request's side of the Digital Twin hand-shake: what an announcement, an ack and a missing
ack do to a test request.

The LIMS's MQTT service (:class:`fastlims.messaging.service.MessagingService`) owns the
connection, the outbox relay, the ack consumer and the watchdog's clock; it calls this
:class:`DigitalTwinHandshake` (given to it by the composition root) for what they mean:

- announced: a request published to the DT moves Submitted → ``ModelRequested`` (a re-send
  restarts the ack clock);
- ack: only from the request's partner (:mod:`fastlims.requests.routing`), or, for a request
  without one, from any active partner: the first to accept becomes its partner. Accepted → the
  DT's acceptance is recorded; refused by the request's partner → ``Failed`` with its reason; a
  refusal by one of several offered partners is recorded, and the request fails once every
  offered partner has refused. Another partner's ack → ``Rejected("unauthorized")``;
- no ack within ``dt_ack_timeout_s``: the request is sent again (same message_id), up to
  ``dt_request_retries`` times, then ``Failed`` with a clear reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.messaging.models import OutboxMessage
from fastlims.messaging.schemas import AckMessage
from fastlims.messaging.service import AckPolicy, Rejected
from fastlims.requests import messages, routing
from fastlims.requests import service as requests
from fastlims.requests.models import TestRequest, TestRequestEvent
from fastlims.requests.states import Status
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)


class DigitalTwinHandshake:
    """Implements ``fastlims.messaging.service.Handshake`` for test requests."""

    def announced(self, session: Session, test_uuids: Sequence[str]) -> None:
        """The broker confirmed the request messages of ``test_uuids`` (once per message sent)."""
        found = {
            r.test_uuid: r for r in session.scalars(select(TestRequest).where(TestRequest.test_uuid.in_(test_uuids)))
        }
        for test_uuid in test_uuids:
            request = found.get(test_uuid)
            if request is None:
                continue
            request.dt_request_attempts += 1
            if request.status == Status.Submitted:
                requests.change_status(
                    session=session,
                    request=request,
                    target=Status.ModelRequested,
                    actor="mqtt-relay",
                    reason="request published to the Digital Twin",
                )
            elif request.status == Status.ModelRequested:
                request.model_requested_at = utcnow()  # a re-send restarts the ack clock

    def apply_ack(self, session: Session, ack: AckMessage, partner: str) -> str:
        """Apply one ack sent by ``partner``; returns what happened (accepted, refused, or
        refusal_noted for one of several offered partners), raises ``Rejected``."""
        try:
            request = requests.get_by_uuid(session=session, test_uuid=ack.test_UUID)
        except requests.NotFound:
            raise Rejected("unknown_request", f"no test request has test_UUID {ack.test_UUID!r}") from None
        owner = routing.resolve(session=session, request=request)
        if owner is not None and owner != partner:
            raise _unauthorized(request, partner)
        if owner is None and partner not in routing.active_partners(session=session):
            raise _unauthorized(request, partner)
        status = Status(request.status)
        if ack.accepted:
            if not routing.claim(session=session, request=request, partner=partner):
                raise _unauthorized(request, partner)  # another partner accepted it a moment earlier
            if status is Status.Submitted:  # the ack overtook our own bookkeeping
                requests.change_status(session=session, request=request, target=Status.ModelRequested, actor=partner)
                status = Status.ModelRequested
            if request.dt_accepted_at is None:
                request.dt_accepted_at = utcnow()
                session.add(_ack_event(request, partner, "accepted", ack.reason))
            return "accepted"
        if status not in (Status.Submitted, Status.ModelRequested):
            raise Rejected(
                "late_ack", f"request {request.request_number} is already {status.name}; the refusal comes too late"
            )
        reason = f"the Digital Twin partner {partner} refused the request: {ack.reason or 'no reason given'}"
        if owner is None:
            # Offered to several partners: one refusal leaves it to the others.
            session.add(_ack_event(request, partner, "refused", ack.reason))
            session.flush()
            refused = set(
                session.scalars(
                    select(TestRequestEvent.actor).where(
                        TestRequestEvent.request_id == request.id,
                        TestRequestEvent.field == "dt_ack",
                        TestRequestEvent.to_value == "refused",
                    )
                )
            )
            offered = set(routing.active_partners(session=session))
            if not offered <= refused:
                return "refusal_noted"
            if len(offered) > 1:
                reason = (
                    f"every Digital Twin partner refused the request; the last, {reason[len('the Digital Twin ') :]}"
                )
        requests.change_status(session=session, request=request, target=Status.Failed, actor=partner, reason=reason)
        return "refused"

    def check_timeouts(self, session: Session, policy: AckPolicy) -> None:
        """Send again, or fail, every request whose ack is overdue."""
        deadline = utcnow() - timedelta(seconds=policy.timeout_s)
        overdue = session.scalars(
            select(TestRequest).where(
                TestRequest.status == int(Status.ModelRequested),
                TestRequest.dt_accepted_at.is_(None),
                TestRequest.model_requested_at < deadline,
            )
        ).all()
        for request in overdue:
            topic = f"requests/{request.test_uuid}"
            waiting = session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.topic == topic, OutboxMessage.sent_at.is_(None))
            )
            if waiting is not None:
                continue  # a re-send is already queued (the broker may be down)
            if request.dt_request_attempts <= policy.retries:
                messages.enqueue_request(session, request)
                log.info("re-sending request: no ack yet", extra={"request": request.request_number})
            else:
                requests.change_status(
                    session=session,
                    request=request,
                    target=Status.Failed,
                    actor="mqtt-watchdog",
                    reason=(
                        f"the Digital Twin did not acknowledge the request within {policy.timeout_s:g} s"
                        f" after {request.dt_request_attempts} attempt(s)"
                    ),
                )


def _ack_event(request: TestRequest, partner: str, value: str, reason: str | None) -> TestRequestEvent:
    return TestRequestEvent(
        request_id=request.id, kind="edit", actor=partner, field="dt_ack", to_value=value, reason=reason
    )


def _unauthorized(request: TestRequest, partner: str) -> Rejected:
    return Rejected(
        "unauthorized",
        f"partner {partner} is not the Digital Twin partner of test request {request.test_uuid}"
        " (another partner serves it): its ack is ignored",
        partner,
    )

"""Which Digital Twin partner serves a request: one partner per request, whose acks and uploads
alone count (issue 15: partners are isolated from each other).

The rule, in order:

1. the request already has a partner (``TestRequest.dt_partner``): that one;
2. a route for the request's UUT code (``fastlims partners route add NAME --uut CODE``);
3. a route for the request's test name (``--test NAME``);
4. otherwise the request is offered to every active partner (an active MQTT identity of role
   ``partner``), and the first partner to accept it, by its ack or by an upload of its models,
   becomes its partner; the others' later acks and uploads are refused as ``unauthorized``.

A routed partner is recorded when the request first goes out, so a later change of the routing
table does not move a request that a partner already works on.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fastlims.messaging.models import MqttRole, MqttUser
from fastlims.requests.models import PartnerRoute, TestRequest

KINDS = ("uut", "test")


class RoutingError(ValueError):
    """A routing-table change that cannot be made, with a message for the operator."""


def active_partners(*, session: Session) -> list[str]:
    """Every partner that may be offered a request: active MQTT identities with the partner role."""
    return list(
        session.scalars(
            select(MqttUser.username)
            .where(MqttUser.role == MqttRole.partner, MqttUser.is_active.is_(True))
            .order_by(MqttUser.username)
        )
    )


def routed_partner(*, session: Session, request: TestRequest) -> str | None:
    """The partner the routing table names for ``request`` (its UUT's route first), or None."""
    for kind, value in (("uut", request.uut.code), ("test", request.test.name)):
        partner = session.scalar(
            select(PartnerRoute.partner).where(PartnerRoute.kind == kind, PartnerRoute.value == value)
        )
        if partner is not None:
            return partner
    return None


def resolve(*, session: Session, request: TestRequest) -> str | None:
    """Record the routed partner on a request that has none yet; return the request's partner."""
    if request.dt_partner is None:
        routed = routed_partner(session=session, request=request)
        if routed is not None:
            request.dt_partner = routed
    return request.dt_partner


def recipients(*, session: Session, request: TestRequest) -> list[str]:
    """The partners that hear about ``request``: its own partner, else every active partner."""
    partner = resolve(session=session, request=request)
    return [partner] if partner is not None else active_partners(session=session)


def claim(*, session: Session, request: TestRequest, partner: str) -> bool:
    """Make ``partner`` the request's partner unless another one got there first (compare and
    set in the database, so two partners accepting at once cannot both win). True when
    ``partner`` is, or now became, the request's partner."""
    if request.dt_partner is not None:
        return request.dt_partner == partner
    result = session.execute(
        update(TestRequest)
        .where(TestRequest.id == request.id, TestRequest.dt_partner.is_(None))
        .values(dt_partner=partner)
        .execution_options(synchronize_session=False)
    )
    session.refresh(request, ["dt_partner"])
    return result.rowcount == 1 or request.dt_partner == partner  # type: ignore[attr-defined]


# --- the routing table (fastlims partners route) ---------------------------------------------


def add_route(*, session: Session, partner: str, kind: str, value: str) -> PartnerRoute:
    """Route the requests of a UUT (``kind="uut"``, its code) or a test name to ``partner``; a
    route for the same UUT or test is replaced. The caller checks that the partner exists."""
    if kind not in KINDS:
        raise RoutingError(f"route kind {kind!r} is unknown; expected one of {', '.join(KINDS)}")
    if not value.strip():
        raise RoutingError(f"give the {'UUT code' if kind == 'uut' else 'test name'} to route")
    route = session.scalar(select(PartnerRoute).where(PartnerRoute.kind == kind, PartnerRoute.value == value))
    if route is None:
        route = PartnerRoute(kind=kind, value=value, partner=partner)
        session.add(route)
    else:
        route.partner = partner
    session.flush()
    return route


def remove_route(*, session: Session, kind: str, value: str) -> None:
    route = session.scalar(select(PartnerRoute).where(PartnerRoute.kind == kind, PartnerRoute.value == value))
    if route is None:
        raise RoutingError(f"there is no route for {kind} {value!r}; `fastlims partners route list` shows them")
    session.delete(route)
    session.flush()


def routes(*, session: Session) -> list[PartnerRoute]:
    return list(session.scalars(select(PartnerRoute).order_by(PartnerRoute.kind, PartnerRoute.value)))

"""Partners and benches are isolated from each other on a real broker (embedded amqtt and
Mosquitto): a partner reads only its own requests' topics, only the request's own partner's acks
count, and a bench speaks only for its own runs."""

from __future__ import annotations

import uuid
from typing import Any

from fastlims.requests import routing
from fastlims.requests import service as requests
from fastlims.requests.states import Status
from tests.catalog_helpers import applicable
from tests.integration.messaging.conftest import BENCH, LIMS, OTHER_PARTNER, PARTNER
from tests.mqtt_helpers import Peer, wait_for


def row(stack, number: str):  # type: ignore[no-untyped-def]
    with stack.system.database.transaction() as session:
        return requests.get(session=session, request_number=number)


def route(stack, uut: str, partner: str | None) -> None:  # type: ignore[no-untyped-def]
    with stack.system.database.transaction() as session:
        if partner is None:
            routing.remove_route(session=session, kind="uut", value=uut)
        else:
            routing.add_route(session=session, partner=partner, kind="uut", value=uut)


def lab_peer(stack) -> Peer:  # type: ignore[no-untyped-def]
    """A client with the LIMS role (the embedded broker's internal identity, or Mosquitto's)."""
    if stack.kind == "amqtt":
        username, (password, _role) = next(iter(stack.system.services[0].policy.internal.items()))
    else:
        username, password = LIMS
    peer = stack.peer(username, password)
    assert peer.connect() == 0
    return peer


def ack(test_uuid: str, accepted: bool, reason: str | None = None) -> dict[str, Any]:
    return {"message_id": str(uuid.uuid4()), "test_UUID": test_uuid, "accepted": accepted, "reason": reason}


def test_a_partner_cannot_read_another_partners_requests(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack(second_partner=True)
    dt = stack.dt()
    other = stack.peer(*OTHER_PARTNER)
    assert other.connect() == 0
    # Every way to reach dt-partner's requests, statuses and errors, or the lab's copies: amqtt
    # refuses the subscription (SUBACK 0x80); Mosquitto grants it and delivers nothing.
    for topic_filter in (
        "fastest/v1/partners/dt-partner/requests/+",
        "fastest/v1/partners/dt-partner/#",
        "fastest/v1/partners/+/requests/+",
        "fastest/v1/partners/+/requests/+/status",
        "fastest/v1/requests/+",
        "fastest/v1/requests/+/status",
        "fastest/v1/errors",
        "fastest/v1/#",
    ):
        codes = other.subscribe(topic_filter)
        if stack.kind == "amqtt":
            assert codes == [0x80], topic_filter
    assert other.subscribe("fastest/v1/partners/dt-other/requests/+") == [1]
    combo = applicable(stack.system)
    route(stack, combo.uut, PARTNER[0])
    routed = stack.submit(combo.body())
    topic, message = dt.next_message()  # published: dt-partner gets it on its own level
    assert topic == f"fastest/v1/partners/dt-partner/requests/{routed['test_UUID']}"
    route(stack, combo.uut, None)
    # A request without a route goes to every partner: it is the barrier, published after the
    # routed request and its status, so anything leaked to dt-other would have arrived first.
    offered = stack.submit(combo.body())
    own = f"fastest/v1/partners/dt-other/requests/{offered['test_UUID']}"
    seen = other.messages_until(lambda got: any(t == own for t, _ in got))
    # (Mosquitto grants the wildcard filters, which also match dt-other's own level: those copies are fine.)
    assert all(t.startswith("fastest/v1/partners/dt-other/") for t, _ in seen), [t for t, _ in seen]
    assert row(stack, routed["request_number"]).dt_partner == "dt-partner"
    assert row(stack, offered["request_number"]).dt_partner is None


def test_only_the_requests_own_partner_may_ack(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack(second_partner=True)
    dt, other = stack.dt(), stack.other_dt()
    assert other.subscribe("fastest/v1/partners/dt-other/errors") == [1]
    combo = applicable(stack.system)
    route(stack, combo.uut, PARTNER[0])
    routed = stack.submit(combo.body())
    uuid_ = routed["test_UUID"]
    dt.next_message()
    wait_for(lambda: row(stack, routed["request_number"]).status == Status.ModelRequested)
    # dt-other refuses dt-partner's request on its own level: the LIMS refuses the ack, tells
    # dt-other why on its errors topic, and the request does not fail.
    other.publish(f"fastest/v1/partners/dt-other/requests/{uuid_}/ack", ack(uuid_, False, "not ours, but no"))
    topic, error = other.next_message()
    assert topic == "fastest/v1/partners/dt-other/errors"
    assert "partner dt-other is not the Digital Twin partner" in error["reason"] and error["client"] == "dt-other"
    # Nor can it speak on dt-partner's level: the broker drops it (Mosquitto 2 also disconnects).
    intruder = stack.peer(*OTHER_PARTNER)
    assert intruder.connect() == 0
    intruder.publish(f"fastest/v1/partners/dt-partner/requests/{uuid_}/ack", ack(uuid_, False, "forged"))
    # dt-partner's own accept is the barrier: a forged refusal handled before it would have failed the request.
    dt.publish(f"fastest/v1/partners/dt-partner/requests/{uuid_}/ack", ack(uuid_, True))
    accepted = wait_for(lambda: (r := row(stack, routed["request_number"])).dt_accepted_at and r)
    assert accepted.status == Status.ModelRequested and accepted.failure_reason is None
    assert accepted.dt_partner == "dt-partner"
    assert 'fastlims_mqtt_rejected_messages_total{reason="unauthorized"} 1.0' in stack.http.get("/metrics").text


def test_the_first_partner_to_accept_serves_an_unrouted_request(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack(second_partner=True)
    dt, other = stack.dt(), stack.other_dt()
    assert dt.subscribe("fastest/v1/partners/dt-partner/errors") == [1]
    created = stack.submit(applicable(stack.system).body())
    uuid_ = created["test_UUID"]
    assert dt.next_message()[1]["test_UUID"] == uuid_ and other.next_message()[1]["test_UUID"] == uuid_
    wait_for(lambda: row(stack, created["request_number"]).status == Status.ModelRequested)
    # One refusal of two offered partners leaves the request to the other.
    dt.publish(f"fastest/v1/partners/dt-partner/requests/{uuid_}/ack", ack(uuid_, False, "busy"))
    other.publish(f"fastest/v1/partners/dt-other/requests/{uuid_}/ack", ack(uuid_, True))
    accepted = wait_for(lambda: (r := row(stack, created["request_number"])).dt_accepted_at and r)
    assert accepted.dt_partner == "dt-other" and accepted.status == Status.ModelRequested
    # dt-partner changes its mind too late: the request is dt-other's.
    dt.publish(f"fastest/v1/partners/dt-partner/requests/{uuid_}/ack", ack(uuid_, True))
    topic, error = dt.messages_until(lambda seen: any(t.endswith("/errors") for t, _ in seen))[-1]
    assert "partner dt-partner is not the Digital Twin partner" in error["reason"]
    assert row(stack, created["request_number"]).dt_partner == "dt-other"
    # From now on only dt-other hears of the request: its status goes to its level alone.
    with stack.system.database.transaction() as session:
        from fastlims.users import service as users

        request = requests.get(session=session, request_number=created["request_number"])
        requests.cancel(session=session, request=request, user=users.get_by_username(session=session,
                        username=stack.requester.username), reason="test")  # fmt: skip
    wait_for(lambda: pending_messages(stack) == 0, what="the outbox to be sent")
    late = stack.peer(*PARTNER)  # retained: what dt-partner's status topic holds now
    assert late.connect() == 0
    late.subscribe(f"fastest/v1/partners/dt-partner/requests/{uuid_}/status")
    assert late.next_message()[1]["status"]["value"] == "ModelRequested"
    mine = stack.peer(*OTHER_PARTNER)
    assert mine.connect() == 0
    mine.subscribe(f"fastest/v1/partners/dt-other/requests/{uuid_}/status")
    assert mine.next_message()[1]["status"]["value"] == "Cancelled"


def pending_messages(stack) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from fastlims.messaging.models import OutboxMessage

    with stack.system.database.transaction() as session:
        return int(session.scalar(select(func.count()).where(OutboxMessage.sent_at.is_(None))) or 0)


def test_a_bench_publishes_only_for_its_own_runs(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    watcher = lab_peer(stack)
    assert watcher.subscribe("fastest/v1/benches/+/runs/#") == [1]
    run_id = f"{uuid.uuid4()}.run-001"
    event = {"message_id": "e1", "run_id": run_id, "test_UUID": run_id[:36], "event": "started", "at": "x"}
    # Each attempt on its own connection: Mosquitto 2 disconnects the offender after the first.
    for forbidden in (
        f"fastest/v1/benches/bench-02/runs/{run_id}/events",  # another bench's name
        f"fastest/v1/runs/{run_id}/events",  # the old, bench-less topic
    ):
        bench = stack.peer(*BENCH)
        assert bench.connect() == 0
        bench.publish(forbidden, event)
    barrier = stack.peer(*BENCH)
    assert barrier.connect() == 0
    barrier.publish(f"fastest/v1/benches/bench-01/runs/{run_id}/events", {**event, "message_id": "e2"})
    topic, message = watcher.next_message()
    assert (topic, message["message_id"]) == (f"fastest/v1/benches/bench-01/runs/{run_id}/events", "e2")
    assert watcher.received.empty()

"""The LIMS ↔ Digital Twin contract over a real broker (embedded amqtt and Mosquitto), with a
real paho-mqtt client acting as the Digital Twin."""

from __future__ import annotations

import json
import uuid
from collections import Counter

from fastlims.messaging import outbox
from fastlims.messaging.schemas import BenchCommand
from fastlims.requests import service
from fastlims.requests.states import Status
from tests.catalog_helpers import applicable
from tests.mqtt_helpers import wait_for

SEED_FIELDS = {
    "message_id",
    "test_name",
    "test_UUID",
    "test_UUT",
    "test_bench",
    "use_case",
    "variables",
    "test_date",
    "status",
}
VARIABLES = {
    "test_procedures": ["Follow current profile from custom_profile"],
    "custom_profile": {
        "Name": "current",
        "type": "input",
        "unit": "mA",
        "values": [{"timestamp": 0, "value": "1.0"}, {"timestamp": 1, "value": 2}],
    },
    "FMU_signal_connections": [{"InSignalReference": "FMU_04/Port_C", "OutSignalReference": "FMU_03/Port_E"}],
}


def status_of(stack, number: str) -> Status:  # type: ignore[no-untyped-def]
    with stack.system.database.transaction() as session:
        return Status(service.get(session=session, request_number=number).status)


def request_row(stack, number: str):  # type: ignore[no-untyped-def]
    with stack.system.database.transaction() as session:
        return service.get(session=session, request_number=number)


def test_dt_receives_figure_2_acks_and_the_request_moves_on(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    dt = stack.dt()
    combo = applicable(stack.system)
    created = stack.submit(combo.body(variables=VARIABLES, preferred_date="2099-06-01T09:00:00"))
    topic, message = dt.next_message()
    assert topic == f"fastest/v1/partners/dt-partner/requests/{created['test_UUID']}"
    assert set(message) >= SEED_FIELDS
    assert message["test_UUID"] == created["test_UUID"]
    assert message["test_UUT"] == combo.uut and message["use_case"] == combo.use_case
    assert message["test_bench"] == combo.bench
    assert message["test_date"] == "2099-06-01 07:00:00"  # 09:00 Berlin summer time, sent as UTC
    assert message["status"]["value"] == "Submitted"
    assert message["variables"]["custom_profile"]["values"] == [
        {"timestamp": 0.0, "value": "1.0"},
        {"timestamp": 1.0, "value": "2.0"},
    ]
    assert message["variables"]["FMU_signal_connections"] == VARIABLES["FMU_signal_connections"]
    wait_for(lambda: status_of(stack, created["request_number"]) is Status.ModelRequested, what="ModelRequested")

    dt.publish(
        f"fastest/v1/partners/dt-partner/requests/{created['test_UUID']}/ack",
        {"message_id": str(uuid.uuid4()), "test_UUID": created["test_UUID"], "accepted": True},
    )
    row = wait_for(
        lambda: (r := request_row(stack, created["request_number"])).dt_accepted_at and r, what="the DT's acceptance"
    )
    assert row.status == Status.ModelRequested and row.model_requested_at is not None


def test_status_is_retained_for_late_subscribers(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    created = stack.submit(applicable(stack.system).body())
    wait_for(lambda: status_of(stack, created["request_number"]) is Status.ModelRequested)
    with stack.system.database.transaction() as session:
        request = service.get(session=session, request_number=created["request_number"])
        service.cancel(session=session, request=request, user=_user(session, stack.requester.username), reason="x")
    late = stack.peer()
    assert late.connect() == 0
    late.subscribe(f"fastest/v1/partners/dt-partner/requests/{created['test_UUID']}/status")
    # Retained: the newest status arrives at once, without any new publication.
    messages = late.messages_until(lambda seen: any(m["status"]["value"] == "Cancelled" for _, m in seen))
    assert messages[-1][1]["request_number"] == created["request_number"]


def _user(session, username: str):  # type: ignore[no-untyped-def]
    from fastlims.users import service as users

    return users.get_by_username(session=session, username=username)


def test_refusal_fails_the_request_with_the_dts_reason(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    dt = stack.dt()
    created = stack.submit(applicable(stack.system).body())
    dt.next_message()
    dt.publish(
        f"fastest/v1/partners/dt-partner/requests/{created['test_UUID']}/ack",
        {
            "message_id": "ack-1",
            "test_UUID": created["test_UUID"],
            "accepted": False,
            "reason": "no FMU for Gen4 solid-state cells yet",
        },
    )
    row = wait_for(lambda: (r := request_row(stack, created["request_number"])).status == Status.Failed and r)
    assert row.failure_reason == (
        "the Digital Twin partner dt-partner refused the request: no FMU for Gen4 solid-state cells yet"
    )


def test_no_ack_is_retried_then_fails(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack(ack_timeout_s=0.4, retries=1)
    dt = stack.dt()
    created = stack.submit(applicable(stack.system).body())
    first = dt.next_message()[1]
    second = dt.next_message(timeout=20)[1]
    assert first["message_id"] == second["message_id"] == f"req-{created['test_UUID']}"
    row = wait_for(
        lambda: (r := request_row(stack, created["request_number"])).status == Status.Failed and r, timeout_s=20
    )
    assert "did not acknowledge the request within 0.4 s after 2 attempt(s)" in row.failure_reason
    assert row.dt_request_attempts == 2


def test_broker_down_at_submit_then_every_message_arrives_once_in_order(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack(lims_connected=False)
    dt = stack.dt()
    combo = applicable(stack.system)
    numbers, uuids = [], []
    for _ in range(5):
        created = stack.submit(combo.body())  # succeeds although the LIMS cannot reach the broker
        numbers.append(created["request_number"])
        uuids.append(created["test_UUID"])
    assert all(status_of(stack, n) is Status.Submitted for n in numbers)
    assert dt.received.empty()
    stack.gate.open.set()  # the broker is back
    seen = dt.messages_until(lambda s: len(s) >= 5, timeout=30)
    assert [m["test_UUID"] for _, m in seen] == uuids  # in submission order
    for number in numbers:
        wait_for(lambda n=number: status_of(stack, n) is Status.ModelRequested)
    # Nothing is sent twice: every message id arrived exactly once. One more request is the
    # barrier: the five were confirmed (ModelRequested) before it was stored, and the relay
    # publishes in order, so a copy of any of them would arrive before the barrier does.
    barrier = stack.submit(combo.body())["test_UUID"]
    seen += dt.messages_until(lambda s: any(m["test_UUID"] == barrier for _, m in s), timeout=30)
    assert [m["test_UUID"] for _, m in seen] == [*uuids, barrier]
    counts = Counter(m["message_id"] for _, m in seen[:5])
    assert set(counts.values()) == {1} and len(counts) == 5
    assert dt.received.empty()


def test_unauthenticated_and_wrong_password_clients_are_refused(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    anonymous = stack.peer(username=None, password=None)
    assert anonymous.connect() != 0
    wrong = stack.peer(password="not-the-password")
    assert wrong.connect() != 0
    unknown = stack.peer(username="mallory", password="whatever-password")
    assert unknown.connect() != 0


def test_acl_refuses_publishing_and_subscribing_outside_the_role(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    dt = stack.dt()
    bench = stack.peer(username="bench-01", password="bench-password-1")
    assert bench.connect() == 0
    # A bench may not read requests: amqtt answers SUBACK 0x80, Mosquitto grants but delivers nothing.
    codes = bench.subscribe("fastest/v1/requests/+")
    if stack.kind == "amqtt":
        assert codes == [0x80]
    # A partner may not pose as the LIMS: a forged request never reaches anyone. (Mosquitto 2 also
    # disconnects the offender; the embedded broker drops the message and reports it on …/errors.)
    intruder = stack.peer()
    assert intruder.connect() == 0
    forged_uuid = str(uuid.uuid4())
    intruder.publish(f"fastest/v1/partners/dt-partner/requests/{forged_uuid}", {"forged": True})
    created = stack.submit(applicable(stack.system).body())
    topic, message = dt.next_message()
    assert message.get("test_UUID") == created["test_UUID"], "the forged message was delivered"
    assert bench.received.empty()
    if stack.kind == "amqtt":
        assert 'fastlims_mqtt_acl_denied_total{action="publish"} 1.0' in stack.http.get("/metrics").text
    # The bench hears its own commands only: amqtt refuses the subscription (SUBACK 0x80),
    # Mosquitto grants it but delivers nothing. Its own command is the barrier: another bench's
    # command enqueued before it would arrive first.
    codes = bench.subscribe("fastest/v1/benches/bench-02/commands")
    assert codes == ([0x80] if stack.kind == "amqtt" else [1])
    assert bench.subscribe("fastest/v1/benches/bench-01/commands") == [1]
    with stack.system.database.transaction() as session:
        outbox.enqueue(session, "benches/bench-02/commands", bench_command(created["test_UUID"], "k-bench-02"))
        outbox.enqueue(session, "benches/bench-01/commands", bench_command(created["test_UUID"], "k-bench-01"))
    topic, message = bench.next_message()
    assert (topic, message["idempotency_key"]) == ("fastest/v1/benches/bench-01/commands", "k-bench-01")
    assert bench.received.empty()


def bench_command(test_uuid: str, key: str) -> BenchCommand:
    # abort: a v1 command that needs no run file (routing, not the command, is under test here)
    return BenchCommand(
        command_id=f"{key}:abort",
        command="abort",
        run_id="run-001",
        test_UUID=test_uuid,
        expected_state="running",
        idempotency_key=key,
    )


def test_bad_messages_are_answered_on_errors_and_the_consumer_keeps_going(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    dt = stack.dt()
    listener = stack.peer()
    assert listener.connect() == 0
    # The partner hears of its own bad messages on its own errors topic (the lab's is LIMS-only).
    assert listener.subscribe("fastest/v1/partners/dt-partner/errors") == [1]
    created = stack.submit(applicable(stack.system).body())
    dt.next_message()
    wait_for(lambda: status_of(stack, created["request_number"]) is Status.ModelRequested)
    ack_topic = f"fastest/v1/partners/dt-partner/requests/{created['test_UUID']}/ack"
    unknown = str(uuid.uuid4())
    dt.publish(ack_topic, b"{not json")
    dt.publish(ack_topic, {"message_id": "m1", "test_UUID": created["test_UUID"], "accepted": "perhaps"})
    dt.publish(
        f"fastest/v1/partners/dt-partner/requests/{unknown}/ack",
        {"message_id": "m2", "test_UUID": unknown, "accepted": True},
    )
    dt.publish(ack_topic, {"message_id": "m3", "test_UUID": unknown, "accepted": True})
    errors = listener.messages_until(lambda seen: len(seen) >= 4)
    reasons = [m["reason"] for _, m in errors]
    assert "payload is not JSON" in reasons[0]
    assert "accepted" in reasons[1] and "AckMessage schema" in reasons[1]
    assert f"no test request has test_UUID {unknown!r}" in reasons[2]
    assert "differs from the topic" in reasons[3]
    # ... and a good ack after all that is still handled, once even if delivered twice.
    good = {"message_id": "m4", "test_UUID": created["test_UUID"], "accepted": True}
    dt.publish(ack_topic, good)
    dt.publish(ack_topic, good)
    wait_for(lambda: request_row(stack, created["request_number"]).dt_accepted_at is not None)
    metrics = stack.http.get("/metrics").text
    for kind in ("not_json", "schema", "unknown_request", "topic_mismatch"):
        assert f'fastlims_mqtt_rejected_messages_total{{reason="{kind}"}} 1.0' in metrics
    wait_for(lambda: 'fastlims_mqtt_received_total{kind="duplicate"} 1.0' in stack.http.get("/metrics").text)
    with stack.system.database.transaction() as session:
        events = [
            e
            for e in service.get(session=session, request_number=created["request_number"]).events
            if e.field == "dt_ack"
        ]
    assert len(events) == 1


def test_asyncapi_document_is_served_and_printed(make_stack) -> None:  # type: ignore[no-untyped-def]
    import yaml
    from click.testing import CliRunner

    from fastlims.cli import main

    stack = make_stack()
    served = yaml.safe_load(stack.http.get("/api/asyncapi.yaml").text)
    assert served["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in served["channels"].values()}
    assert {
        "fastest/v1/partners/{partner}/requests/{test_UUID}",
        "fastest/v1/partners/{partner}/requests/{test_UUID}/ack",
        "fastest/v1/partners/{partner}/requests/{test_UUID}/status",
        "fastest/v1/partners/{partner}/errors",
        "fastest/v1/partners/{partner}/runs/{run_id}/events",
        "fastest/v1/partners/{partner}/runs/{run_id}/metrics",
        "fastest/v1/partners/{partner}/runs/{run_id}/comparison",
        "fastest/v1/requests/{test_UUID}",
        "fastest/v1/requests/{test_UUID}/status",
        "fastest/v1/benches/{bench}/commands",
        "fastest/v1/benches/{bench}/replies",
        "fastest/v1/benches/{bench}/state",
        "fastest/v1/benches/{bench}/runs/{run_id}/events",
        "fastest/v1/benches/{bench}/runs/{run_id}/metrics",
        "fastest/v1/benches/{bench}/runs/{run_id}/comparison",
        "fastest/v1/errors",
    } == addresses
    request_schema = served["components"]["schemas"]["RequestMessage"]
    assert set(request_schema["properties"]) >= SEED_FIELDS
    printed = yaml.safe_load(CliRunner().invoke(main, ["asyncapi"]).output)
    assert printed["channels"].keys() == served["channels"].keys()
    json.dumps(printed)  # plain data, no YAML-only types


def test_retained_statuses_never_leak_to_identities_that_may_not_read_them(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    watcher = stack.peer()
    assert watcher.connect() == 0
    watcher.subscribe("fastest/v1/partners/dt-partner/requests/+/status")  # a filter with retained matches
    created = stack.submit(applicable(stack.system).body())
    watcher.messages_until(lambda seen: len(seen) >= 1)
    bench = stack.peer(username="bench-01", password="bench-password-1")
    assert bench.connect() == 0
    assert bench.subscribe("fastest/v1/benches/bench-01/commands") == [1]
    command = bench_command(created["test_UUID"], "k1")
    with stack.system.database.transaction() as session:
        outbox.enqueue(session, "benches/bench-01/commands", command)
    # The command is the barrier: anything leaked on connect or subscribe would have come first.
    topic, message = bench.next_message()
    assert topic == "fastest/v1/benches/bench-01/commands" and message["idempotency_key"] == "k1"
    assert bench.received.empty()

"""The CONNECT path under attack, with real clients (paho, mosquitto_pub/mosquitto_sub) against
the embedded broker and Mosquitto: session theft by client id, forbidden last wills, revoked
identities, password guessing, oversize packets and sockets that never send CONNECT.

Where Mosquitto 2.0.11 behaves differently (docs/security.md, "The MQTT broker"), the test says
what it checks there instead.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fastlims.requests.states import Status
from tests.catalog_helpers import applicable
from tests.integration.messaging.conftest import BENCH, PARTNER, Stack
from tests.integration.messaging.test_dt_contract import request_row, status_of
from tests.mqtt_helpers import Peer, wait_for
from tests.services import missing

IDENTIFIER_REJECTED, BAD_CREDENTIALS, NOT_AUTHORIZED = 2, 4, 5
# paho 2 reports a 3.1.1 refusal as the MQTT 5 reason code of the same meaning.
REFUSED = {IDENTIFIER_REJECTED: 133, BAD_CREDENTIALS: 134, NOT_AUTHORIZED: 135}
embedded_only = pytest.mark.parametrize("broker_kind", ["amqtt"])


def watch_lims(stack: Stack) -> list[bool]:
    """Every connection change of the LIMS's own client from now on (it is connected now)."""
    client = stack.system.messaging.client
    wait_for(lambda: client.connected, what="the LIMS connected")
    changes: list[bool] = []
    previous = client.on_connection_change

    def record(up: bool) -> None:
        changes.append(up)
        if previous is not None:
            previous(up)

    client.on_connection_change = record
    return changes


def lims_still_hears_acks(stack: Stack, dt: Peer) -> None:
    """The LIMS's subscription to acks is intact: a new request is acked and the ack is handled."""
    created = stack.submit(applicable(stack.system).body())
    topic, message = dt.next_message()
    assert message["test_UUID"] == created["test_UUID"]
    wait_for(lambda: status_of(stack, created["request_number"]) is Status.ModelRequested, what="ModelRequested")
    dt.publish(f"{topic}/ack", {"message_id": str(uuid.uuid4()), "test_UUID": created["test_UUID"], "accepted": True})
    wait_for(lambda: request_row(stack, created["request_number"]).dt_accepted_at is not None, what="the ack")


@pytest.mark.parametrize("clean_session", [True, False])
def test_a_connect_without_valid_credentials_cannot_touch_the_lims_session(make_stack, clean_session: bool) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    dt = stack.dt()
    lims_id = stack.system.messaging.client.client_id
    changes = watch_lims(stack)
    for username, password in ((None, None), ("lims", "not-the-password"), (PARTNER[0], "not-the-password")):
        thief = stack.peer(username, password, client_id=lims_id, clean_session=clean_session)
        assert thief.connect() != 0
    lims_still_hears_acks(stack, dt)
    assert changes == [], "the LIMS's connection was taken over"


@embedded_only
@pytest.mark.parametrize("clean_session", [True, False])
def test_a_partner_with_valid_credentials_cannot_use_the_lims_client_id(make_stack, clean_session: bool) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    dt = stack.dt()
    changes = watch_lims(stack)
    thief = stack.peer(client_id=stack.system.messaging.client.client_id, clean_session=clean_session)
    assert thief.connect() == REFUSED[IDENTIFIER_REJECTED]
    # Nor another identity's, nor an empty one (the broker would invent one nobody owns).
    assert stack.peer(client_id=f"{BENCH[0]}/x").connect() == REFUSED[IDENTIFIER_REJECTED]
    assert stack.peer(client_id=f"{PARTNER[0]}-x").connect() == REFUSED[IDENTIFIER_REJECTED]
    own = stack.peer(client_id=PARTNER[0])
    assert own.connect() == 0
    lims_still_hears_acks(stack, dt)
    assert changes == []


def test_the_lims_client_id_is_not_guessable(tmp_path: Path) -> None:
    from fastlims.bootstrap import build
    from fastlims.config import Settings

    def lims_id(data_dir: Path) -> str:
        return str(
            build(Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir}.db")).messaging.client.client_id
        )

    first, again, other = lims_id(tmp_path / "a"), lims_id(tmp_path / "a"), lims_id(tmp_path / "b")
    username, suffix = first.split("/", 1)
    assert username.startswith("fastlims-lims-") and suffix.startswith("lims-")
    assert first.split("/")[1] == again.split("/")[1], "the suffix is stable for one secret key"
    assert first.split("/")[1] != other.split("/")[1], "and nobody without the key can name it"


def mosquitto_client(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        missing(f"{name} (Debian package mosquitto-clients)")
    return str(binary)


def test_a_last_will_to_a_forbidden_topic_is_never_delivered(make_stack) -> None:  # type: ignore[no-untyped-def]
    """The embedded broker refuses the CONNECT (CONNACK 5); Mosquitto 2.0.11 accepts it and
    drops the will when it would be published."""
    stack = make_stack()
    status_topic = f"fastest/v1/requests/{uuid.uuid4()}/status"
    watcher = stack.peer("lims", "lims-password-123") if stack.kind == "mosquitto" else None
    if watcher is None:
        username, (password, _role) = next(iter(stack.system.broker.policy.internal.items()))
        watcher = stack.peer(username, password)
    assert watcher.connect() == 0
    assert watcher.subscribe("fastest/v1/#") == [1]
    forger = stack.peer()
    forger.client.will_set(status_topic, b'{"status": {"value": "Completed"}}', qos=1, retain=True)
    code = forger.connect()
    if stack.kind == "amqtt":
        assert code == REFUSED[NOT_AUTHORIZED]
        # The same refusal for mosquitto_pub, as a partner would type it.
        result = subprocess.run(
            [mosquitto_client("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(stack.broker_port), "-V", "mqttv311"]
            + ["-i", f"{PARTNER[0]}/cli", "-u", PARTNER[0], "-P", PARTNER[1], "--will-topic", status_topic]
            + ["--will-payload", "forged", "--will-retain", "-m", "{}"]
            + ["-t", f"fastest/v1/partners/{PARTNER[0]}/requests/{uuid.uuid4()}/ack"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert result.returncode != 0 and "not authori" in (result.stderr + result.stdout).lower()
    else:
        assert code == 0
        forger.client.loop_stop()
        forger.client.socket().close()  # abnormal end: the broker would publish the will now
    # A peer with an allowed will ends abnormally after it: its will is the barrier.
    barrier_topic = f"fastest/v1/partners/{PARTNER[0]}/requests/{uuid.uuid4()}/ack"
    honest = stack.peer()
    honest.client.will_set(barrier_topic, b"barrier", qos=1)
    assert honest.connect() == 0
    honest.client.loop_stop()
    honest.client.socket().close()
    seen = watcher.messages_until(lambda got: any(topic == barrier_topic for topic, _ in got))
    assert status_topic not in [topic for topic, _ in seen]
    late = stack.peer(watcher.username, watcher.password)
    assert late.connect() == 0
    late.subscribe(status_topic)
    late.subscribe(barrier_topic)  # nothing retained there either: the suback order is the barrier
    assert late.received.empty()


def run_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    settings = stack.system.settings
    env = {
        **os.environ,
        "FASTLIMS_DATA_DIR": str(settings.data_dir),
        "FASTLIMS_DATABASE_URL": settings.resolved_database_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "fastlims.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


@embedded_only
@pytest.mark.parametrize("command", ["disable", "remove"])
def test_a_disabled_or_removed_identity_is_disconnected_at_once(make_stack, command: str) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack(mqtt_revocation_poll_s=0.5)
    dt = stack.dt()
    bench = stack.peer(*BENCH)
    assert bench.connect() == 0
    result = run_cli(stack, "mqtt-users", command, PARTNER[0])
    assert result.returncode == 0, result.stderr
    changed = time.monotonic()
    assert dt.disconnected.wait(10), "the revoked identity is still connected"
    assert time.monotonic() - changed < 5
    assert not bench.disconnected.is_set(), "another identity was disconnected too"
    again = stack.peer()
    assert again.connect() == REFUSED[BAD_CREDENTIALS]
    if command == "disable":
        assert run_cli(stack, "mqtt-users", "enable", PARTNER[0]).returncode == 0
        assert stack.peer().connect() == 0
    unknown = run_cli(stack, "mqtt-users", command, "nobody")
    assert unknown.returncode != 0 and "'nobody' does not exist" in unknown.stderr


@embedded_only
def test_the_eleventh_wrong_password_from_one_address_is_locked(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    # Ten guesses from 127.0.0.2, each at another (made-up) account: the address is locked...
    for attempt in range(10):
        guess = stack.peer(f"guess-{attempt}", "wrong-password-x", bind_address="127.0.0.2")
        assert guess.connect() == REFUSED[BAD_CREDENTIALS]
    locked = stack.peer(*BENCH, bind_address="127.0.0.2")
    assert locked.connect() == REFUSED[NOT_AUTHORIZED], "the 11th try from the address was let through"
    # ... while the same account from another address still gets in.
    assert stack.peer(*BENCH, bind_address="127.0.0.3").connect() == 0
    metrics = stack.http.get("/metrics").text
    assert 'fastlims_mqtt_refused_connections_total{reason="locked_address"} 1.0' in metrics


@embedded_only
def test_ten_wrong_passwords_lock_the_account_from_any_address(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    for attempt in range(10):
        guess = stack.peer(PARTNER[0], "wrong-password-x", bind_address=f"127.0.1.{attempt + 1}")
        assert guess.connect() == REFUSED[BAD_CREDENTIALS]
    assert stack.peer(*PARTNER, bind_address="127.0.2.1").connect() == REFUSED[NOT_AUTHORIZED]
    # Other accounts are unaffected; the LIMS's own connection never is.
    assert stack.peer(*BENCH, bind_address="127.0.2.2").connect() == 0
    assert stack.system.messaging.client.connected


def test_an_oversize_payload_disconnects_its_sender(make_stack) -> None:  # type: ignore[no-untyped-def]
    """The documented maximum (16 MiB, FASTLIMS_MQTT_MAX_PACKET_BYTES; Mosquitto's
    max_packet_size in the generated config) on both brokers."""
    stack = make_stack()
    limit = stack.system.settings.mqtt_max_packet_bytes
    assert limit == 16 * 1024 * 1024
    bench = stack.peer(*BENCH)
    assert bench.connect() == 0
    watcher_user = ("lims", "lims-password-123")
    if stack.kind == "amqtt":
        username, (password, _role) = next(iter(stack.system.broker.policy.internal.items()))
        watcher_user = (username, password)
    watcher = stack.peer(*watcher_user)
    assert watcher.connect() == 0
    topic = "fastest/v1/benches/bench-01/runs/r-1/metrics"
    assert watcher.subscribe(topic) == [1]
    bench.publish(topic, b"a" * (1024 * 1024))  # well inside the limit: delivered
    assert len(watcher.next_message()[1]) == 1024 * 1024
    bench.client.publish(topic, b"b" * (limit + 1), qos=0)
    assert bench.disconnected.wait(30), "the broker kept a client that sent an oversize packet"
    bench.client.loop_stop()
    after = stack.peer(*BENCH)
    assert after.connect() == 0
    after.publish(topic, b"after")
    assert watcher.next_message() == (topic, b"after"), "the oversize payload was delivered"


@embedded_only
@pytest.mark.parametrize("sends", [b"", b"\x10\x20\x00\x04MQ", b"\xc0\x00"])  # nothing; half a CONNECT; a PINGREQ
def test_a_socket_that_never_sends_connect_is_dropped(make_stack, sends: bytes) -> None:  # type: ignore[no-untyped-def]
    """Mosquitto 2.0.11 drops such a socket after about 95 s, not configurable (docs/security.md)."""
    stack = make_stack(mqtt_connect_timeout_s=1.0)
    with socket.create_connection(("127.0.0.1", stack.broker_port)) as silent:
        silent.sendall(sends)
        silent.settimeout(15)
        opened = time.monotonic()
        try:
            data = silent.recv(10)
        except ConnectionResetError:
            data = b""
        assert data == b"", "the broker answered a socket that sent no CONNECT"
        assert time.monotonic() - opened < 10
    assert stack.peer().connect() == 0
    if sends != b"\xc0\x00":
        metrics = stack.http.get("/metrics").text
        assert 'fastlims_mqtt_refused_connections_total{reason="no_connect"} 1.0' in metrics


def documented_mosquitto_sub(stack: Stack) -> list[str]:
    """docs/mqtt.md's mosquitto_sub command, verbatim but for port, user and password."""
    text = (Path(__file__).parents[3] / "docs" / "mqtt.md").read_text()
    block = text.split("```bash\nmosquitto_sub ", 1)[1].split("```", 1)[0]
    words = shlex.split(("mosquitto_sub " + block).replace("\\\n", " "))
    values = {"1883": str(stack.broker_port), "comau-dt": PARTNER[0], "<password from the lab>": PARTNER[1]}
    words = [values.get(w, w.replace("comau-dt/", f"{PARTNER[0]}/")) for w in words]
    return [mosquitto_client("mosquitto_sub"), *words[1:]]


def test_the_documented_mosquitto_sub_works_and_client_ids_are_bound(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    command = documented_mosquitto_sub(stack)
    assert command[command.index("-i") + 1] == f"{PARTNER[0]}/check"
    # -d prints the SUBACK: the barrier before anything is published (stdbuf: line by line).
    watcher = subprocess.Popen(
        ["stdbuf", "-oL", *command, "-d", "-C", "1", "-W", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            assert "refused" not in line.lower(), line
            if "SUBACK" in line:
                break
        wait_for(lambda: stack.system.messaging.client.connected, what="the LIMS connected")
        dt = stack.peer()
        assert dt.connect() == 0
        unknown = str(uuid.uuid4())
        ack_topic = f"fastest/v1/partners/{PARTNER[0]}/requests/{unknown}/ack"
        dt.publish(ack_topic, {"message_id": "m", "test_UUID": unknown, "accepted": True})
        rest, _ = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 0 and f"no test request has test_UUID {unknown!r}" in rest, rest
    if stack.kind == "amqtt":
        command[command.index("-i") + 1] = "someone-else"
        foreign = subprocess.run([*command, "-C", "1", "-W", "5"], capture_output=True, text=True, timeout=30)
        assert foreign.returncode != 0 and "identifier rejected" in foreign.stderr.lower(), foreign.stderr

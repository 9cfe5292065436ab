"""A running LIMS messaging stack against the embedded amqtt broker or a real Mosquitto.

The LIMS reaches the broker through a TcpGate, so a test can take the broker away from the LIMS
(broker down at submit) while the Digital Twin's own connection and subscription stay up.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fastlims.bootstrap import System, build, prepare_database
from fastlims.config import Settings
from fastlims.messaging import identities
from fastlims.messaging.client import BrokerAddress, MqttClient
from fastlims.messaging.models import MqttRole
from fastlims.web.app import create_app
from tests.conftest import LAB_ZONE, Actor, add_user
from tests.mqtt_helpers import MosquittoServer, Peer, RunningServices, TcpGate, mosquitto_binary, start_mosquitto
from tests.services import free_port, missing

PARTNER = ("dt-partner", "partner-password-1")
OTHER_PARTNER = ("dt-other", "partner-password-2")
BENCH = ("bench-01", "bench-password-1")
OTHER_BENCH = ("bench-02", "bench-password-2")
LIMS = ("lims", "lims-password-123")


@dataclass
class Stack:
    kind: str
    system: System
    http: TestClient
    requester: Actor
    broker_port: int
    gate: TcpGate
    services: RunningServices
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def peer(self, username: str | None = PARTNER[0], password: str | None = PARTNER[1], **kwargs: Any) -> Peer:
        peer = Peer(self.broker_port, username, password, **kwargs)
        self.cleanups.append(peer.close)
        return peer

    def dt(self, username: str = PARTNER[0], password: str = PARTNER[1]) -> Peer:
        """A connected Digital Twin subscribed to the requests on its own topic level."""
        dt = self.peer(username, password)
        assert dt.connect() == 0
        assert dt.subscribe(f"{self.system.topics.prefix}/partners/{username}/requests/+") == [1]
        return dt

    def other_dt(self) -> Peer:
        return self.dt(*OTHER_PARTNER)

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post("/api/v1/test-requests", json=body, headers=self.requester.headers)
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_stack(broker_kind: str, tmp_path: Path, sqlite_template: Path) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []
    servers: list[MosquittoServer] = []

    def factory(
        ack_timeout_s: float = 60.0,
        retries: int = 3,
        lims_connected: bool = True,
        database_url: str | None = None,
        second_partner: bool = False,
        **settings: Any,
    ) -> Stack:
        if database_url is None:
            path = tmp_path / f"lims-{len(stacks)}.db"
            shutil.copy(sqlite_template, path)
            database_url = f"sqlite:///{path}"
        common = dict(
            data_dir=tmp_path,
            database_url=database_url,
            timezone=LAB_ZONE,
            dt_ack_timeout_s=ack_timeout_s,
            dt_request_retries=retries,
            mqtt_reconnect_max_s=1,
            outbox_poll_s=0.2,
            mqtt_client_id=f"fastlims-test-{len(stacks)}",
            metrics_public=True,  # these tests read /metrics without a token
            **settings,
        )
        if broker_kind == "amqtt":
            broker_port = free_port()
            gate = TcpGate(broker_port)
            system = build(Settings(mqtt_port=broker_port, **common))
            broker = system.services[0]
            username, (password, _role) = next(iter(broker.policy.internal.items()))
            # The LIMS's own client goes through the gate; everything else is as bootstrap built it.
            system.messaging.client = MqttClient(
                BrokerAddress("127.0.0.1", gate.port),
                client_id=f"{username}/{common['mqtt_client_id']}",
                username=username,
                password=password,
                reconnect_max_s=1,
            )
        else:
            if mosquitto_binary() is None:
                missing("Mosquitto (Debian package mosquitto)")
            users = {
                LIMS[0]: (LIMS[1], MqttRole.lims),
                PARTNER[0]: (PARTNER[1], MqttRole.partner),
                OTHER_PARTNER[0]: (OTHER_PARTNER[1], MqttRole.partner),
                BENCH[0]: (BENCH[1], MqttRole.bench),
                OTHER_BENCH[0]: (OTHER_BENCH[1], MqttRole.bench),
            }
            server = start_mosquitto(users, "fastest/v1")
            servers.append(server)
            broker_port = server.port
            gate = TcpGate(broker_port)
            system = build(
                Settings(
                    mqtt_url=f"mqtt://127.0.0.1:{gate.port}", mqtt_username=LIMS[0], mqtt_password=LIMS[1], **common
                )
            )
        prepare_database(system)
        with system.database.transaction() as session:
            identities.add(session=session, username=PARTNER[0], role="partner", password=PARTNER[1])
            identities.add(session=session, username=BENCH[0], role="bench", password=BENCH[1])
            identities.add(session=session, username=OTHER_BENCH[0], role="bench", password=OTHER_BENCH[1])
            if second_partner:  # a second active partner: requests without a route are offered to both
                identities.add(session=session, username=OTHER_PARTNER[0], role="partner", password=OTHER_PARTNER[1])
        http = TestClient(create_app(system))
        requester = add_user(system, f"rita{len(stacks)}", "requester")
        services = RunningServices(system)
        stack = Stack(broker_kind, system, http, requester, broker_port, gate, services)
        if broker_kind == "amqtt":
            services.start([system.services[0]])  # the broker first, the LIMS client below
        if lims_connected:
            gate.open.set()
        services.start([system.messaging])
        stacks.append(stack)
        return stack

    yield factory
    for stack in stacks:
        for cleanup in stack.cleanups:
            cleanup()
        stack.services.stop()
        stack.gate.close()
        stack.http.close()
        stack.system.close()
    for server in servers:
        server.stop()

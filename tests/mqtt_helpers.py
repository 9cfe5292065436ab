"""Real MQTT pieces for tests: a Mosquitto server, a TCP gate that takes the broker away from the
LIMS, the system's services in a background event loop, and a paho client acting as a peer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fastlims.bootstrap import System
from fastlims.messaging.acl import mosquitto_acl
from fastlims.messaging.models import MqttRole
from fastlims.messaging.mosquitto import mosquitto_conf
from fastlims.runtime import start_services, stop_services
from tests.services import free_port, wait_for  # noqa: F401 - re-exported for the messaging tests


class LoopThread:
    """An asyncio loop in a thread, to run the system's services beside a sync TestClient."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class RunningServices:
    def __init__(self, system: System, services: list[Any] | None = None) -> None:
        self.system = system
        self.loop = LoopThread()
        self.started: list[Any] = []
        self.only = services

    def start(self, services: list[Any] | None = None) -> None:
        chosen = services if services is not None else (self.only if self.only is not None else self.system.services)
        saved, self.system.services = self.system.services, chosen
        try:
            self.started += self.loop.run(start_services(self.system))
        finally:
            self.system.services = saved

    def stop(self) -> None:
        self.loop.run(stop_services(self.started))
        self.started = []
        self.loop.close()


@dataclass
class Peer:
    """A paho-mqtt client: the Digital Twin, a bench, or an intruder."""

    port: int
    username: str | None
    password: str | None
    client_id: str = ""
    clean_session: bool = True
    received: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    suback: queue.Queue[list[int]] = field(default_factory=queue.Queue)
    connack: queue.Queue[int] = field(default_factory=queue.Queue)
    disconnected: threading.Event = field(default_factory=threading.Event)
    bind_address: str = ""

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id or f"{self.username or 'anonymous'}/peer-{os.urandom(4).hex()}",
            protocol=mqtt.MQTTv311,
            clean_session=self.clean_session,
        )
        if self.username is not None:
            self.client.username_pw_set(self.username, self.password)
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.suback.put(
            [int(getattr(x, "value", x)) for x in codes]
        )
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(int(getattr(rc, "value", rc)))
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()

    def connect(self, timeout: float = 10) -> int:
        self.client.connect("127.0.0.1", self.port, keepalive=30, bind_address=self.bind_address)
        self.client.loop_start()
        code = self.connack.get(timeout=timeout)
        if code != 0:
            self.client.loop_stop()  # paho would retry a refused CONNECT forever, adding to lockouts
        return code

    def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        self.client.subscribe(topic, qos)
        return self.suback.get(timeout=10)

    def publish(self, topic: str, payload: Any, qos: int = 1) -> None:
        data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        self.client.publish(topic, data, qos=qos).wait_for_publish(timeout=10)

    def next_message(self, timeout: float = 15) -> tuple[str, Any]:
        topic, payload = self.received.get(timeout=timeout)
        try:
            return topic, json.loads(payload)
        except json.JSONDecodeError:
            return topic, payload

    def messages_until(self, predicate: Callable[[list[tuple[str, Any]]], bool], timeout: float = 20) -> list[Any]:
        seen: list[tuple[str, Any]] = []
        deadline = time.monotonic() + timeout
        while not predicate(seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; got {len(seen)} message(s): {[t for t, _ in seen]}")
            try:
                seen.append(self.next_message(timeout=remaining))
            except queue.Empty:
                continue
        return seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class TcpGate:
    """A TCP forwarder the test can close: from the LIMS's side the broker is down, while the
    broker and its other clients (the DT's subscription) stay up."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.open = threading.Event()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.1)
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.open.is_set():
                client.close()  # broker "down": connection refused by closing at once
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.close()


@dataclass
class MosquittoServer:
    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def start_mosquitto(users: dict[str, tuple[str, MqttRole]], prefix: str) -> MosquittoServer:
    """Mosquitto 2 with passwords and the same ACL policy as the embedded broker."""
    binary = mosquitto_binary()
    assert binary is not None
    directory = Path(tempfile.mkdtemp(prefix="fastlims-mosquitto-"))
    os.chmod(directory, 0o755)  # it drops to user 'mosquitto' when started as root
    passwd = directory / "passwd"
    # Written plain, then hashed in one `mosquitto_passwd -U` call (one call per user takes minutes
    # for the hundreds of benches of bench/benches.py).
    passwd.write_text("".join(f"{user}:{password}\n" for user, (password, _role) in users.items()))
    subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True, capture_output=True)
    acl = directory / "acl"
    acl.write_text(mosquitto_acl([(u, role) for u, (_p, role) in users.items()], prefix))
    for path in (passwd, acl):
        os.chmod(path, 0o644)
    port = free_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        mosquitto_conf(
            host="127.0.0.1",
            port=port,
            password_file=passwd,
            acl_file=acl,
            extra=("persistence false", "max_queued_messages 0", "log_type error"),
        )
    )
    os.chmod(config, 0o644)
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def listening() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"mosquitto exited: {process.stderr.read().decode() if process.stderr else ''}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, 10, "mosquitto to listen")
    return MosquittoServer(port, process, directory)

"""An MQTT 3.1.1 client for asyncio code, on paho-mqtt (its network loop runs in a thread).

MQTT 3.1.1 by default so the same code talks to amqtt, Mosquitto, HiveMQ, EMQX and RabbitMQ.
A stable client id with a persistent session (clean_session=False) lets the broker queue QoS 1
messages for us while we are away; reconnection is automatic with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], Awaitable[None]]


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def from_url(
        cls, url: str, ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None
    ) -> BrokerAddress:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname:
            raise ValueError(f"broker URL {url!r} must look like mqtt://host:1883 or mqtts://host:8883")
        tls = parsed.scheme == "mqtts"
        return cls(parsed.hostname, parsed.port or (8883 if tls else 1883), tls, ca_file, cert_file, key_file)


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class MqttClient:
    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        username: str | None,
        password: str | None,
        clean_session: bool = False,
        will: Will | None = None,
        keepalive: int = 30,
        reconnect_max_s: int = 10,
    ) -> None:
        self.address = address
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=clean_session,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        if address.tls:
            context = ssl.create_default_context(cafile=str(address.ca_file) if address.ca_file else None)
            if address.cert_file:
                context.load_cert_chain(str(address.cert_file), str(address.key_file) if address.key_file else None)
            self._client.tls_set_context(context)
        if will is not None:
            self._client.will_set(will.topic, will.payload, will.qos, will.retain)
        self._client.reconnect_delay_set(min_delay=1, max_delay=reconnect_max_s)
        self._client.max_inflight_messages_set(200)
        self._client.max_queued_messages_set(0)
        self._keepalive = keepalive
        self._handlers: dict[str, tuple[int, MessageHandler]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._lock = threading.Lock()
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._done_mids: set[int] = set()
        self.on_connection_change: Callable[[bool], None] | None = None
        self.refused: str | None = None  # the broker's reason when it refused the last CONNECT
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish

    @property
    def client_id(self) -> str:
        return str(self._client._client_id.decode())

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def subscribe(self, topic_filter: str, handler: MessageHandler, qos: int = 1) -> None:
        """Register before ``start``; subscriptions are renewed on every reconnect."""
        self._handlers[topic_filter] = (qos, handler)
        if self.connected:
            self._client.subscribe(topic_filter, qos)

    async def start(self) -> None:
        """Begin connecting in the background; never blocks on an absent broker."""
        self._loop = asyncio.get_running_loop()
        self._client.connect_async(self.address.host, self.address.port, keepalive=self._keepalive)
        self._client.loop_start()

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def stop(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self._set_connected(False)

    def drop(self) -> None:
        """Close the network connection without DISCONNECT, as a lost network or a crash would: the
        broker publishes this client's will. For fault injection (the bench emulator) and tests."""
        sock = self._client.socket()
        self._client.loop_stop()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()
        self._set_connected(False)

    async def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[bool]:
        """Send; the future resolves True on PUBACK (QoS 1) or when written (QoS 0), False on failure."""
        assert self._loop is not None, "start() first"
        future: asyncio.Future[bool] = self._loop.create_future()
        # Never call into paho while holding our lock: paho runs on_publish under its own lock,
        # and on_publish takes ours (lock-order inversion = deadlock, found by bench/mqtt.py).
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            future.set_result(False)
            return future
        with self._lock:
            if info.mid in self._done_mids:  # the PUBACK beat us here
                self._done_mids.discard(info.mid)
                future.set_result(True)
            else:
                self._waiting[info.mid] = future
        return future

    # --- paho callbacks (network thread) ---------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("mqtt connect refused", extra={"reason": str(reason)})
            self.refused = str(reason)
            return
        self.refused = None
        for topic_filter, (qos, _handler) in self._handlers.items():
            client.subscribe(topic_filter, qos)
        self._call_in_loop(self._set_connected, True)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        self._call_in_loop(self._set_connected, False)
        with self._lock:
            waiting, self._waiting = self._waiting, {}
            self._done_mids.clear()
        for future in waiting.values():
            self._call_in_loop(_resolve, future, False)

    def _on_publish(self, _client: mqtt.Client, _userdata: object, mid: int, _reason: object, _props: object) -> None:
        with self._lock:
            future = self._waiting.pop(mid, None)
            if future is None:
                self._done_mids.add(mid)
        if future is not None:
            self._call_in_loop(_resolve, future, True)

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        for topic_filter, (_qos, handler) in self._handlers.items():
            if mqtt.topic_matches_sub(topic_filter, message.topic):
                topic, payload = message.topic, bytes(message.payload)
                if self._loop is not None:
                    asyncio.run_coroutine_threadsafe(handler(topic, payload), self._loop)
                return

    def _set_connected(self, state: bool) -> None:
        if state:
            self._connected.set()
        else:
            self._connected.clear()
        if self.on_connection_change:
            self.on_connection_change(state)

    def _call_in_loop(self, function: Callable[..., None], *args: object) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(function, *args)


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)

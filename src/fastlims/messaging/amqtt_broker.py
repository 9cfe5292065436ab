"""amqtt 0.12's ``Broker`` with the CONNECT path closed: what we change in it, and why.

Found by reading amqtt 0.12.1 (``amqtt/broker.py``) and proven by the tests in
``tests/integration/messaging/test_broker_connect.py``:

- ``_initialize_client_session`` reads the CONNECT and then, *before any authentication*, deletes
  the existing session of that client id (clean session: its subscriptions are gone) or adopts
  it and overwrites its username, password and will (persistent session).
  ``_handle_client_session`` authenticates only afterwards, and even on a refusal it first takes
  the client id over: it stops the connected client's handler and puts the refused connection in
  the session table. So anyone who knew the LIMS's client id could wipe or hijack its session
  without a password. Here the CONNECT is admitted (credentials, lockout, client id bound to the
  username, last will against the publish ACL) right after it is read, and a refused CONNECT gets
  its CONNACK and is closed before amqtt's session code runs at all.
- ``init_from_connect`` waits for the first packet without a timeout: a socket that never sends
  CONNECT is held forever. Here it gets ``connect_timeout_s``.
- There is no maximum packet size: a fixed header announcing 256 MB makes the broker read and
  buffer it all. Here the stream is framed as it is read and a packet larger than
  ``max_packet_bytes`` closes the connection when its length is announced.
- A connecting client is sent the retained messages of every subscription on the broker, and the
  subscription table is walked across awaits while it changes (both fixed as before).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter, StreamWriterAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.errors import AMQTTError
from amqtt.mqtt.connack import ConnackPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler

log = logging.getLogger(__name__)


class Admission(Protocol):
    """What the broker needs from ``broker.BrokerPolicy`` (named here to keep imports one-way)."""

    max_packet_bytes: int
    connect_timeout_s: float

    async def admit(self, session: Any, address: str | None) -> int | None: ...

    def refused(self, reason: str) -> None: ...


class PacketTooLarge(Exception):
    """Not an ``MQTTError``: amqtt's reader loop skips those and reads on, mid-packet."""


class _PacketLimit(ReaderAdapter):
    """Follows MQTT framing (type byte, 1-4 length bytes, body) over whatever the protocol
    handler reads, and closes the connection as soon as a packet announces more than ``limit``
    bytes: nothing of it is read or buffered."""

    _TYPE, _LENGTH, _BODY = 0, 1, 2

    def __init__(self, inner: ReaderAdapter, writer: asyncio.StreamWriter, limit: int) -> None:
        self._inner = inner
        self._writer = writer
        self._limit = limit
        self._state = self._TYPE
        self._length = 0
        self._multiplier = 1
        self._left = 0

    async def read(self, n: int = -1) -> bytes:
        data = await self._inner.read(n)
        self._track(data)
        return data

    def feed_eof(self) -> None:
        self._inner.feed_eof()

    def _track(self, data: bytes) -> None:
        index = 0
        while index < len(data):
            if self._state == self._BODY:
                taken = min(self._left, len(data) - index)
                self._left -= taken
                index += taken
                if self._left == 0:
                    self._state = self._TYPE
                continue
            byte = data[index]
            index += 1
            if self._state == self._TYPE:
                self._state, self._length, self._multiplier = self._LENGTH, 0, 1
                continue
            self._length += (byte & 0x7F) * self._multiplier
            self._multiplier *= 128
            if byte & 0x80:
                continue
            if self._length > self._limit:
                peer = self._writer.get_extra_info("peername")
                log.warning("mqtt packet too large; connection closed", extra={"bytes": self._length, "peer": peer})
                self._writer.close()
                raise PacketTooLarge(f"a packet of {self._length} bytes exceeds the limit of {self._limit} bytes")
            self._left = self._length
            self._state = self._BODY if self._left else self._TYPE


class _SnapshotSubscriptions(dict[str, list[Any]]):
    """amqtt 0.12 walks its subscription table across awaits (``_run_broadcast`` awaits the topic
    plugin per subscriber) while other tasks remove subscriptions of disconnected clients: the
    list shifts under the loop and the next subscriber is skipped, a QoS 1 message silently lost
    after the publisher's PUBACK. Iterating over copies makes a walk see one consistent table."""

    def __iter__(self) -> Any:
        return iter(list(dict.keys(self)))

    def items(self) -> Any:
        return [(key, list(value)) for key, value in dict.items(self)]


class AclBroker(Broker):  # type: ignore[misc]
    """amqtt's broker, admitting a CONNECT through ``policy`` before any session is touched."""

    def __init__(self, config: dict[str, Any], policy: Admission) -> None:
        super().__init__(config)
        self._subscriptions = _SnapshotSubscriptions()
        self.policy = policy

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        limited = _PacketLimit(StreamReaderAdapter(reader), writer, self.policy.max_packet_bytes)
        await self._client_connected(listener_name, limited, StreamWriterAdapter(writer))

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Any]:
        try:
            handler, incoming = await asyncio.wait_for(
                BrokerProtocolHandler.init_from_connect(reader, writer, self.plugins_manager),
                self.policy.connect_timeout_s,
            )
        except TimeoutError:
            self.policy.refused("no_connect")
            log.warning("mqtt socket sent no CONNECT in time; closed", extra={"peer": remote_address})
            await writer.close()
            raise AMQTTError(f"no CONNECT from {remote_address} within {self.policy.connect_timeout_s} s") from None
        except Exception as exc:
            # amqtt leaves some of these sockets open (a first packet that is not a CONNECT).
            await writer.close()
            raise AMQTTError(f"refused a connection from {remote_address}: {exc}") from exc
        code = await self.policy.admit(incoming, remote_address)
        if code is not None:
            await ConnackPacket.build(0, code).to_stream(writer)
            await writer.close()
            raise AMQTTError(f"CONNECT from {remote_address} refused with return code {code}")
        return await self._attach_session(handler, incoming)

    async def _attach_session(self, handler: BrokerProtocolHandler, incoming: Any) -> tuple[BrokerProtocolHandler, Any]:
        """amqtt 0.12's own session handling, unchanged, now that the CONNECT is admitted."""
        session = incoming
        if session.clean_session:
            # Safe now: the client id belongs to this (authenticated) username.
            await self._delete_session(session.client_id)
            session.parent = 0
        elif session.client_id in self._sessions:
            existing, _ = self._sessions[session.client_id]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain", "keep_alive"):
                setattr(existing, name, getattr(session, name))
            existing.username = session.username
            existing.password = session.password
            session = existing
            session.parent = 1
        else:
            session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _authenticate(self, session: Any, _listener: Any) -> bool:
        """Every session reaching amqtt's session handling was admitted by ``policy.admit``."""
        return True

    async def _publish_retained_messages_for_subscription(self, subscription: Any, session: Any) -> None:
        holders = self._subscriptions.get(subscription[0], ())
        if any(holder.client_id == session.client_id for holder, _qos in holders):
            await super()._publish_retained_messages_for_subscription(subscription, session)

    def usernames(self) -> set[str]:
        """The identities holding a session (connected or stored)."""
        return {session.username for session, _handler in list(self._sessions.values()) if session.username}

    async def disconnect_users(self, usernames: set[str]) -> int:
        """Close the live connections of ``usernames`` (revoked identities) and drop their stored
        sessions, so nothing is queued for them. Returns how many connections were closed."""
        closed = 0
        for client_id, (session, handler) in list(self._sessions.items()):
            if session.username not in usernames:
                continue
            if session.transitions.is_connected():
                await handler.handle_connection_closed()  # what amqtt's own take-over does
                closed += 1
            else:
                await self._delete_session(client_id)
        return closed

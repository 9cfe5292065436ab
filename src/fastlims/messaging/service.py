"""The LIMS side of the DT contract: outbox relay, ack consumer and ack-timeout watchdog.

- Relay: publishes pending outbox rows in id order, marks them sent only after the broker's
  PUBACK, and then tells the hand-shake which requests were announced. A broker outage only
  delays: rows stay pending and go out, in order, when the connection is back.
- Acks: checked against the ``AckMessage`` schema and the topic, handled once per message_id (a
  redelivered ack is a duplicate), then applied by the hand-shake.
- Watchdog: every so often the hand-shake sends again, or fails, requests whose ack is overdue.
- Bad messages are logged, counted and answered on ``…/errors``; the consumer never stops.

What announcements and acks do to a test request is the requests capability's
(:class:`fastlims.requests.handshake.DigitalTwinHandshake`, given as :class:`Handshake` by the
composition root): messaging knows no request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fastlims.db.engine import Database
from fastlims.messaging import outbox
from fastlims.messaging.client import MqttClient
from fastlims.messaging.metrics import MessagingMetrics
from fastlims.messaging.models import OutboxMessage, ProcessedMessage
from fastlims.messaging.schemas import AckMessage, ErrorMessage, seed_time
from fastlims.messaging.topics import Topics
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)
BATCH = 200


@dataclass(frozen=True)
class AckPolicy:
    timeout_s: float
    retries: int


class Rejected(Exception):
    def __init__(self, kind: str, reason: str, partner: str | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.partner = partner  # the partner that sent the message: told on its own errors topic


class Handshake(Protocol):
    """What the DT's messages mean for the requests (``fastlims.requests.handshake``)."""

    def announced(self, session: Session, test_uuids: Sequence[str]) -> None:
        """The broker confirmed these requests' messages (one entry per message, in order)."""

    def apply_ack(self, session: Session, ack: AckMessage, partner: str) -> str:
        """Apply a valid, first-seen ack sent by ``partner`` (the topic's partner level, which the
        broker's ACL binds to the sender's MQTT user name); return what happened; raise
        :class:`Rejected` (kind ``unauthorized`` when the request is another partner's)."""

    def check_timeouts(self, session: Session, policy: AckPolicy) -> None:
        """Send again, or fail, the requests whose ack is overdue."""


class MessagingService:
    """BackgroundService: one MQTT connection for the LIMS, the relay, acks and the watchdog."""

    name = "mqtt-messaging"

    def __init__(
        self,
        database: Database,
        client: MqttClient,
        topics: Topics,
        metrics: MessagingMetrics,
        ack_policy: AckPolicy,
        handshake: Handshake,
        poll_s: float = 1.0,
    ) -> None:
        self.database = database
        self.handshake = handshake
        self.client = client
        self.topics = topics
        self.metrics = metrics
        self.ack_policy = ack_policy
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self._inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        outbox.on_commit(self.wake)
        self.client.subscribe(self.topics.all_acks, self._receive, qos=1)
        self.client.on_connection_change = self._connection_changed
        await self.client.start()
        self._tasks = [
            asyncio.create_task(self._relay_loop(), name="outbox-relay"),
            asyncio.create_task(self._consume_loop(), name="ack-consumer"),
            asyncio.create_task(self._watchdog_loop(), name="ack-watchdog"),
        ]

    async def stop(self) -> None:
        outbox.remove_listener(self.wake)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.client.stop()

    def wake(self) -> None:
        """Thread-safe: called after a transaction that enqueued messages commits."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def _connection_changed(self, connected: bool) -> None:
        self.metrics.connected.set(1 if connected else 0)
        if connected:
            self._wake.set()

    # --- relay -------------------------------------------------------------------------------

    async def _relay_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_s)
            self._wake.clear()
            try:
                while self.client.connected and await self.relay_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay round failed; will retry")
                await asyncio.sleep(min(self.poll_s, 1.0))

    async def relay_once(self) -> bool:
        """Publish one batch of pending rows; True when a full batch went out (more may wait)."""
        rows = await asyncio.to_thread(self._pending)
        self.metrics.outbox_pending.set(len(rows))
        if not rows:
            return False
        futures = [
            await self.client.publish(self.topics.relative(topic), payload, qos=qos, retain=retain)
            for _, topic, payload, qos, retain in rows
        ]
        results = await asyncio.gather(*(asyncio.wait_for(f, 30) for f in futures), return_exceptions=True)
        # Only the confirmed prefix is marked sent: the first failure and everything after it is
        # sent again later, so the order of announcements is kept.
        confirmed: list[tuple[int, str]] = []
        for (row_id, topic, *_), result in zip(rows, results, strict=True):
            if result is not True:
                break
            confirmed.append((row_id, topic))
        if confirmed:
            await asyncio.to_thread(self._mark_sent, confirmed)
        return len(confirmed) == len(rows) == BATCH

    def _pending(self) -> list[tuple[int, str, str, int, bool]]:
        with self.database.transaction() as session:
            rows = session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.topic,
                    OutboxMessage.payload,
                    OutboxMessage.qos,
                    OutboxMessage.retain,
                )
                .where(OutboxMessage.sent_at.is_(None))
                .order_by(OutboxMessage.id)
                .limit(BATCH)
            ).all()
            return [tuple(r) for r in rows]  # type: ignore[misc]

    def _mark_sent(self, confirmed: list[tuple[int, str]]) -> None:
        now = utcnow()
        with self.database.transaction() as session:
            # Two queries for the whole batch instead of two per row: per-row lookups (each one
            # autoflushing the previous row's changes) were most of the relay's time.
            rows = {
                row.id: row
                for row in session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.id.in_([row_id for row_id, _ in confirmed]), OutboxMessage.sent_at.is_(None)
                    )
                )
            }
            announced: list[str] = []
            for row_id, topic in confirmed:
                row = rows.get(row_id)
                if row is None:
                    continue  # another relay got there first
                row.sent_at = now
                row.attempts += 1
                levels = topic.split("/")
                kind = (
                    "status"
                    if topic.endswith("/status")
                    else "request"
                    if len(levels) == 2 and levels[0] == "requests"
                    else "partner_request"
                    if len(levels) == 4 and levels[0] == "partners" and levels[2] == "requests"
                    else "other"
                )
                self.metrics.published.labels(kind).inc()
                if kind == "request":  # the lab's copy: one per announcement, however many partners
                    announced.append(levels[1])
            if announced:
                self.handshake.announced(session, announced)

    # --- inbound -----------------------------------------------------------------------------

    async def _receive(self, topic: str, payload: bytes) -> None:
        await self._inbox.put((topic, payload))

    async def _consume_loop(self) -> None:
        while True:
            topic, payload = await self._inbox.get()
            try:
                kind = await asyncio.to_thread(self.handle_ack, topic, payload)
                self.metrics.received.labels(kind).inc()
            except Rejected as rejected:
                await self._report(topic, rejected)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ack handling failed", extra={"topic": topic})
                await self._report(topic, Rejected("internal", "the LIMS could not process this message"))

    def handle_ack(self, topic: str, payload: bytes) -> str:
        """Apply one ack; returns what happened, raises ``Rejected`` for a bad message."""
        parsed = self.topics.parse_ack(topic)
        if parsed is None:
            raise Rejected("topic", f"{topic!r} is not an ack topic")
        partner, topic_uuid = parsed
        try:
            data = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Rejected("not_json", f"payload is not JSON: {exc}", partner) from None
        try:
            ack = AckMessage.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors())
            raise Rejected("schema", f"ack does not match the AckMessage schema: {problems}", partner) from None
        if ack.test_UUID != topic_uuid:
            raise Rejected(
                "topic_mismatch", f"test_UUID {ack.test_UUID!r} differs from the topic's {topic_uuid!r}", partner
            )
        try:
            with self.database.transaction() as session:
                # Per partner: one partner cannot make another's ack a "duplicate" by reusing its id.
                session.add(ProcessedMessage(message_id=f"{partner}/{ack.message_id}"[:100], topic=topic))
                session.flush()
                return self.handshake.apply_ack(session, ack, partner)
        except Rejected as rejected:
            rejected.partner = partner
            raise
        except IntegrityError:
            return "duplicate"  # already handled: a QoS 1 redelivery

    async def _report(self, topic: str, rejected: Rejected) -> None:
        self.metrics.rejected.labels(rejected.kind).inc()
        log.warning("mqtt message rejected", extra={"topic": topic, "kind": rejected.kind, "reason": rejected.reason})
        error = ErrorMessage(topic=topic, reason=rejected.reason, client=rejected.partner, at=seed_time(utcnow()))
        if self.client.connected:
            await self.client.publish(self.topics.errors(), error.model_dump_json(), qos=1)
            if rejected.partner is not None:  # the sender hears it on its own topic
                await self.client.publish(self.topics.partner_errors(rejected.partner), error.model_dump_json(), qos=1)

    # --- watchdog ----------------------------------------------------------------------------

    async def _watchdog_loop(self) -> None:
        interval = max(0.05, min(self.ack_policy.timeout_s / 4, 5.0))
        while True:
            await asyncio.sleep(interval)  # a periodic check, not a synchronisation
            try:
                await asyncio.to_thread(self.check_ack_timeouts)
            except Exception:
                log.exception("ack watchdog round failed")

    def check_ack_timeouts(self) -> None:
        with self.database.transaction() as session:
            self.handshake.check_timeouts(session, self.ack_policy)

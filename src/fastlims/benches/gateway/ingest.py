"""The LIMS's ear on the benches: one MQTT connection (the LIMS's identity, its own client id and
persistent session) subscribed to every bench's state, replies, run events and metrics.

Exactly once, whatever the broker redelivers: messages are acknowledged by hand, after the
transaction that stored them commits (paho's manual ack), so a LIMS that dies between receiving
and storing gets them again from its session; metrics batches are keyed by run and first
``record_index`` (:mod:`fastlims.runs.samples`), events by message id (:mod:`fastlims.runs.events`).

A bench speaks only for runs dispatched to it: the topic's bench level is the sender's MQTT user
(the broker's ACL binds it), and a message about a run booked on another bench is refused,
reported on ``…/errors`` and dropped. What the durable run workflow waits for (a command's reply,
the run's end, the bench going offline or coming back) is handed to it through ``notify``
(:func:`DBOS.send` in the running system).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.benches.gateway.models import BenchLiveState
from fastlims.db.engine import Database
from fastlims.messaging.schemas import BenchReply, BenchState, ErrorMessage, MetricsBatch, RunEvent, seed_time
from fastlims.messaging.topics import Topics
from fastlims.runs import events as run_events
from fastlims.runs import samples
from fastlims.runs.lifecycle import RunState
from fastlims.runs.models import ScheduledRun
from fastlims.runs.service import run_started, set_state
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)

#: What the run workflow hears (``notify(workflow_id, topic, message, key)``).
Notify = Callable[[str, str, dict[str, Any], str], None]
#: The workflow topic of a run's end and of its bench's comings and goings.
RUN_TOPIC = "run"
ENDING_EVENTS = frozenset({"completed", "failed", "aborted"})
_LIVE = (RunState.dispatched.value, RunState.running.value, RunState.paused.value, RunState.interrupted.value)
BATCH = 500


def reply_topic(command_id: str) -> str:
    """The workflow topic a command's reply is delivered on."""
    return f"reply:{command_id}"[:200]


@dataclass(frozen=True)
class RunRef:
    run_id: str
    bench: str
    workflow_id: str
    test_uuid: str
    partner: str | None


class Refused(Exception):
    """A bench message the LIMS does not take (reported on ``…/errors``)."""


class BenchGateway:
    """``BackgroundService`` (in ``fastlims up``): ingest of everything benches publish."""

    name = "bench-gateway"

    def __init__(
        self,
        database: Database,
        topics: Topics,
        *,
        connect: Callable[[], Any],
        notify: Notify,
        partner_of: Callable[[Session, str], str | None] | None = None,
    ) -> None:
        self.database = database
        self.topics = topics
        self._connect = connect  # builds the paho client (manual ack, persistent session), not yet connected
        self.notify = notify
        self.partner_of = partner_of
        self.client: Any = None
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._runs: dict[str, RunRef] = {}
        self._reported: set[tuple[str, str]] = set()
        self.stored_batches = 0
        self.duplicate_batches = 0
        self.refused = 0
        self.on_stored: Callable[[list[tuple[samples.Batch, float]]], None] | None = None  # benchmarks

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        import asyncio

        self.client = self._connect()
        self.client.manual_ack_set(True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._stopping.clear()
        self._thread = threading.Thread(target=self._work, name="bench-gateway", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self.client.loop_start)

    async def stop(self) -> None:
        import asyncio

        self._stopping.set()
        if self.client is not None:
            self.client.disconnect()
            await asyncio.to_thread(self.client.loop_stop)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)
            self._thread = None

    def _on_connect(self, client: Any, _userdata: object, _flags: object, reason: object, _props: object) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("bench gateway: mqtt connect refused", extra={"reason": str(reason)})
            return
        p = self.topics.prefix
        client.subscribe(
            [
                (f"{p}/benches/+/state", 1),
                (f"{p}/benches/+/replies", 1),
                (f"{p}/benches/+/runs/+/events", 1),
                (f"{p}/benches/+/runs/+/metrics", 1),
            ]
        )

    def _on_message(self, _client: Any, _userdata: object, message: Any) -> None:
        self._inbox.put((message.mid, message.qos, message.topic, bytes(message.payload), time.time()))

    # --- the writer thread ---------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                first = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            messages = [first]
            with contextlib.suppress(queue.Empty):
                while len(messages) < BATCH:
                    messages.append(self._inbox.get_nowait())
            self._handle_until_stored(messages)

    def _handle_until_stored(self, messages: list[tuple[int, int, str, bytes, float]]) -> None:
        """Keep the messages until they are stored: a broker redelivers an unacknowledged QoS 1
        message only on a new connection, so dropping them on a database outage would lose them.
        Handling them again is safe (batches and events are stored once)."""
        pause = 0.5
        while not self._stopping.is_set():
            try:
                self.handle(messages)
                return
            except Exception:  # noqa: BLE001 - a database outage: back off and try the same messages again
                log.exception("bench gateway could not store messages; trying again", extra={"count": len(messages)})
                self._stopping.wait(pause)
                pause = min(pause * 2, 10.0)

    def handle(self, messages: list[tuple[int, int, str, bytes, float]]) -> None:
        """Store/apply the messages in order; acknowledge each once its transaction committed."""
        pending: list[tuple[int, int, samples.Batch, float]] = []
        for mid, qos, topic, payload, received in messages:
            kind, bench, run_id = self._classify(topic)
            if kind == "metrics":
                try:
                    pending.append((mid, qos, self._batch(bench, run_id, payload), received))
                except Refused as refused:
                    self._refuse(topic, bench, str(refused))
                    self._ack(mid, qos)
                continue
            self._store_metrics(pending)
            pending = []
            try:
                if kind == "state":
                    self._state(bench, payload)
                elif kind == "replies":
                    self._reply(bench, payload)
                elif kind == "events":
                    self._event(bench, run_id, payload)
                else:
                    raise Refused(f"{topic!r} is not a bench topic the LIMS reads")
            except Refused as refused:
                self._refuse(topic, bench, str(refused))
            self._ack(mid, qos)
        self._store_metrics(pending)

    def _ack(self, mid: int, qos: int) -> None:
        if qos > 0 and self.client is not None:
            self.client.ack(mid, qos)

    def _classify(self, topic: str) -> tuple[str, str, str]:
        head = f"{self.topics.prefix}/benches/"
        levels = topic[len(head) :].split("/") if topic.startswith(head) else []
        if len(levels) == 2 and levels[1] in ("state", "replies"):
            return levels[1], levels[0], ""
        if len(levels) == 4 and levels[1] == "runs" and levels[3] in ("events", "metrics"):
            return levels[3], levels[0], levels[2]
        return "unknown", levels[0] if levels else "", ""

    # --- runs ----------------------------------------------------------------------------------

    def run_of(self, bench: str, run_id: str) -> RunRef:
        """The run, if it is booked on ``bench``; else :class:`Refused`. A cached booking that
        names another bench is read again first (the run may have moved to this one)."""
        ref = self._runs.get(run_id)
        if ref is None or ref.bench != bench:
            ref = self._read(bench, run_id)
        if ref.bench != bench:
            raise Refused(f"run {run_id!r} is booked on bench {ref.bench!r}, not on {bench!r}")
        return ref

    def _read(self, bench: str, run_id: str) -> RunRef:
        with self.database.transaction() as session:
            row = session.scalar(select(ScheduledRun).where(ScheduledRun.run_id == run_id))
            if row is None:
                raise Refused(f"no run {run_id!r} is dispatched to bench {bench!r}")
            partner = self.partner_of(session, row.test_uuid) if self.partner_of else None
            ref = RunRef(row.run_id, row.bench, row.idempotency_key, row.test_uuid, partner)
        if len(self._runs) > 10_000:
            self._runs.clear()
        self._runs[run_id] = ref
        return ref

    def _batch(self, bench: str, run_id: str, payload: bytes) -> samples.Batch:
        ref = self.run_of(bench, run_id)
        message = _parse(MetricsBatch, payload)
        if message.run_id != run_id:
            raise Refused(f"run_id {message.run_id!r} differs from the topic's {run_id!r}")
        if message.record_index is None:
            raise Refused("a bench's metrics batch needs record_index (the LIMS stores each sample once)")
        self._relay(ref, "metrics", payload)
        return samples.Batch(
            run_id=run_id,
            bench=bench,
            first_record=message.record_index,
            time_s=message.timestamps,
            columns={name: series.values for name, series in message.signals.items()},
            units={name: series.unit for name, series in message.signals.items()},
        )

    def _store_metrics(self, pending: list[tuple[int, int, samples.Batch, float]]) -> None:
        if not pending:
            return
        with self.database.transaction() as session:
            new = samples.store(session, [batch for _mid, _qos, batch, _at in pending])
        self.stored_batches += new
        self.duplicate_batches += len(pending) - new
        if self.on_stored is not None:
            self.on_stored([(batch, at) for _mid, _qos, batch, at in pending])
        for mid, qos, _batch, _at in pending:
            self._ack(mid, qos)

    def _event(self, bench: str, run_id: str, payload: bytes) -> None:
        ref = self.run_of(bench, run_id)
        event = _parse(RunEvent, payload)
        if event.run_id != run_id:
            raise Refused(f"run_id {event.run_id!r} differs from the topic's {run_id!r}")
        details = event.model_dump(
            mode="json", exclude={"run_id", "test_UUID", "event", "message_id"}, exclude_none=True
        )
        with self.database.transaction() as session:
            new = run_events.record(
                session, run_id=run_id, bench=bench, message_id=event.message_id, event=event.event,
                test_time_s=event.test_time_s, details=details,
            )  # fmt: skip
            if new and event.event == "started":
                run_started(session=session, run_id=run_id, actor=f"bench:{bench}")
            elif new and event.event == "paused":
                _set_state(session, run_id, RunState.paused)
            elif new and event.event == "resumed":
                _set_state(session, run_id, RunState.running)
        if new:
            self._relay(ref, "events", payload)
        if new and event.event in ENDING_EVENTS:
            self.notify(
                ref.workflow_id, RUN_TOPIC, {"kind": "ended", "event": event.event, "reason": event.reason},
                f"{run_id}:{event.message_id}",
            )  # fmt: skip

    def _reply(self, bench: str, payload: bytes) -> None:
        reply = _parse(BenchReply, payload)
        ref = self.run_of(bench, reply.run_id)
        self.notify(
            ref.workflow_id, reply_topic(reply.command_id), reply.model_dump(mode="json"),
            f"{reply.command_id}:{reply.message_id}",
        )  # fmt: skip

    def _state(self, bench: str, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained state
        state = _parse(BenchState, payload)
        if state.bench != bench:
            raise Refused(f"bench {state.bench!r} differs from the topic's {bench!r}")
        capabilities = state.capabilities.model_dump(mode="json") if state.capabilities is not None else None
        affected: list[tuple[str, str]] = []
        with self.database.transaction() as session:
            row = session.get(BenchLiveState, bench)
            previous = row.state if row is not None else None
            if row is None:
                row = BenchLiveState(bench=bench, state=state.state)
                session.add(row)
            row.state, row.run_id, row.since = state.state, state.run_id, utcnow()
            if capabilities is not None:
                row.capabilities_json = json.dumps(capabilities)
            if (state.state == "offline") != (previous == "offline"):
                live = session.scalars(
                    select(ScheduledRun).where(ScheduledRun.bench == bench, ScheduledRun.state.in_(_LIVE))
                ).all()
                affected = [(r.idempotency_key, r.run_id) for r in live]
        kind = "offline" if state.state == "offline" else "online"
        said = {"kind": kind, "bench": bench, "state": state.state, "run_id": state.run_id}
        for workflow_id, run_id in affected:
            self.notify(workflow_id, RUN_TOPIC, said, f"{run_id}:{state.message_id}")

    # --- partners and refusals -----------------------------------------------------------------------

    def _relay(self, ref: RunRef, kind: str, payload: bytes) -> None:
        if ref.partner is None or self.client is None:
            return
        topic = (
            self.topics.partner_run_events(ref.partner, ref.run_id)
            if kind == "events"
            else self.topics.partner_run_metrics(ref.partner, ref.run_id)
        )
        self.client.publish(topic, payload, qos=1)

    def _refuse(self, topic: str, bench: str, reason: str) -> None:
        self.refused += 1
        key = (bench, reason[:200])
        if key in self._reported:
            return
        if len(self._reported) > 10_000:
            self._reported.clear()
        self._reported.add(key)
        log.warning("bench message refused", extra={"topic": topic, "bench": bench, "reason": reason})
        if self.client is not None:
            error = ErrorMessage(topic=topic, reason=reason, client=bench or None, at=seed_time(utcnow()))
            self.client.publish(self.topics.errors(), error.model_dump_json(), qos=1)


def _set_state(session: Session, run_id: str, state: RunState) -> None:
    set_state(session=session, run_id=run_id, target=state)


def _parse(model: Any, payload: bytes) -> Any:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()[:5])
        raise Refused(f"does not match the {model.__name__} schema: {problems}") from None

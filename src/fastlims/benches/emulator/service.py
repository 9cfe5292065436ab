"""A bench on MQTT: bench contract v1 spoken for one :class:`~.driver.BenchDriver` (docs/benches.md).

It publishes the retained state with the bench's capabilities (its last will says ``offline``),
takes the commands addressed to it one at a time, answers each command id exactly once, and while
a run goes it reads the driver's samples and publishes them as metrics batches (Battery Data
Format columns, ``record_index`` without gaps) with the run events between them. Only the driver
interface is used, so a real cycler's driver can take the emulator's place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from pydantic import ValidationError

from fastlims.benches.emulator.driver import BenchDriver, Capabilities, DriverError
from fastlims.benches.emulator.protocol import TRANSITIONS, Fault, ReplyBook, refusal, tightened
from fastlims.benches.emulator.runner import COLUMNS, Chunk, Event
from fastlims.messaging.client import BrokerAddress, MqttClient, Will
from fastlims.messaging.schemas import (
    BenchCapabilities,
    BenchCommand,
    BenchReply,
    BenchState,
    MetricsBatch,
    RunEvent,
    SignalSeries,
    seed_time,
)
from fastlims.messaging.topics import Topics, check_id
from fastlims.procedures.runfile import RunFileError
from fastlims.timeutil import utcnow

log = logging.getLogger("fastlims.bench")

TIME_COLUMN = COLUMNS[0]
EXIT_OK, EXIT_REFUSED, EXIT_OFFLINE, EXIT_DIED = 0, 2, 3, 70


@dataclass(frozen=True)
class BenchOptions:
    """How the bench behaves on MQTT: a metrics batch every ``batch_wall_s`` wall seconds or
    ``batch_rows`` rows, the driver read every ``poll_s``; ``fault`` a misbehaviour to show."""

    name: str
    fault: Fault | None = None
    poll_s: float = 0.1
    batch_wall_s: float = 1.0
    batch_rows: int = 5000
    connect_timeout_s: float = 30.0


@dataclass
class _Run:
    run_id: str
    test_uuid: str
    expected_s: float
    started_wall: float = 0.0
    seq: int = 0
    last_record: int = -1
    rows: dict[str, list[float]] | None = None
    first_index: int = 0
    flushed_wall: float = 0.0
    test_time_s: float = 0.0


class BenchService:
    """One bench on the broker at ``address`` as MQTT user ``options.name``."""

    def __init__(
        self,
        driver: BenchDriver,
        *,
        address: BrokerAddress,
        password: str,
        topics: Topics,
        options: BenchOptions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.driver = driver
        self.address = address
        self.password = password
        self.topics = topics
        self.options = options
        self.name = check_id("bench", options.name)
        self.clock = clock
        self.state = "idle"
        self.since = seed_time(utcnow())
        self.run: _Run | None = None
        self.book: ReplyBook[BenchReply] = ReplyBook()
        self.capabilities: BenchCapabilities | None = None
        self.client: MqttClient | None = None
        self._commands: asyncio.Queue[bytes] = asyncio.Queue()
        self._done: asyncio.Future[int] | None = None
        self._fault_timer: asyncio.Task[None] | None = None
        self._busy = asyncio.Lock()  # one command or one read of the driver at a time: messages stay in order

    # --- lifecycle ---------------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> int:
        """Connect, publish the birth state, serve commands and runs until ``stop`` is set (then
        publish ``offline`` and disconnect cleanly) or a fault ends the process; the exit code."""
        self.capabilities = _capabilities(self.driver.connect())
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        will = self._state_message("offline", reason="the bench lost its connection (last will)")
        client = MqttClient(
            self.address,
            client_id=f"{self.name}/emulator",
            username=self.name,
            password=self.password,
            clean_session=True,  # a command sent while the bench is away is not run late; the LIMS retries
            will=Will(self.topics.bench_state(self.name), will.model_dump_json().encode()),
        )
        self.client = client
        client.subscribe(self.topics.bench_commands(self.name), self._received)
        client.on_connection_change = self._connection_changed
        await client.start()
        deadline = self.clock() + self.options.connect_timeout_s
        while not client.connected:
            if client.refused is not None or self.clock() > deadline:
                await client.stop()
                why = f"the broker refused it: {client.refused}" if client.refused else "no answer"
                log.error(
                    "bench %s could not connect to %s:%s (%s)", self.name, self.address.host, self.address.port, why
                )
                return EXIT_REFUSED
            await client.wait_connected(0.2)
        log.info("bench %s online at %s:%s", self.name, self.address.host, self.address.port)
        tasks = [asyncio.create_task(self._serve_commands()), asyncio.create_task(self._serve_runs())]
        stopped = asyncio.create_task(_stopped(stop))
        await asyncio.wait([stopped, self._done], return_when=asyncio.FIRST_COMPLETED)
        for task in [*tasks, stopped]:
            task.cancel()
        if self._fault_timer is not None:
            self._fault_timer.cancel()
        if self._done.done():
            return self._done.result()
        await self._shutdown()
        return EXIT_OK

    async def _shutdown(self) -> None:
        run = self.run
        if run is not None:
            with contextlib.suppress(DriverError):  # the run had ended meanwhile: reported below like any end
                self.driver.abort("the bench shut down")
            await self._drain(run)
            if self.run is not None:
                await self._event(run, "aborted", reason="the bench shut down (SIGTERM)")
                self._end_run(run, "aborted")
        offline = self._state_message("offline", reason="the bench shut down")
        await self._publish(self.topics.bench_state(self.name), offline, retain=True)
        assert self.client is not None
        await self.client.stop()
        log.info("bench %s offline (shut down)", self.name)

    def _connection_changed(self, connected: bool) -> None:
        if connected:  # birth, and again after every reconnect (the broker may have fired the will)
            asyncio.ensure_future(self._publish_state())

    # --- commands ----------------------------------------------------------------------------------

    async def _received(self, _topic: str, payload: bytes) -> None:
        await self._commands.put(payload)

    async def _serve_commands(self) -> None:
        while True:
            payload = await self._commands.get()
            try:
                async with self._busy:
                    await self._command(payload)
            except Exception:  # one bad command must not end the bench
                log.exception("bench %s: a command failed", self.name)

    async def _command(self, payload: bytes) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            log.warning("bench %s: a command that is not JSON was dropped", self.name)
            return
        command_id = data.get("command_id") if isinstance(data, dict) else None
        if not isinstance(command_id, str):
            log.warning("bench %s: a command without a command_id was dropped (nothing to answer)", self.name)
            return
        fault = self.options.fault
        if fault is not None and fault.kind == "never-answer":
            log.info("bench %s: command %s ignored (--fault never-answer)", self.name, command_id[:128])
            return
        given = self.book.get(command_id)
        if given is not None:
            await self._publish(self.topics.bench_replies(self.name), given)
            log.info("bench %s: command %s repeated: the same reply again (%s)", self.name, command_id, given.result)
            return
        try:
            command = BenchCommand.model_validate(data)
        except ValidationError as exc:
            reply = self._reply_to_unreadable(command_id, exc)
            if reply is None:
                return
        else:
            reply = await self._take(command)
        self.book.remember(command_id, reply)
        await self._publish(self.topics.bench_replies(self.name), reply)
        log.info(
            "bench %s: %s %s for run %s %s%s",
            self.name,
            reply.command or "command",
            command_id,
            reply.run_id,
            reply.result,
            f": {reply.reason}" if reply.reason else "",
        )

    def _reply_to_unreadable(self, command_id: str, exc: ValidationError) -> BenchReply | None:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'command'}: {e['msg']}" for e in exc.errors()[:5])
        try:
            return BenchReply(
                command_id=command_id,
                result="rejected",
                reason=f"not a bench contract v1 command: {problems}"[:4000],
                state=self.state,  # type: ignore[arg-type]
                at=seed_time(utcnow()),
            )
        except ValidationError:  # the command id itself is unusable (too long, odd characters)
            log.warning("bench %s: a command with an unusable command_id was dropped", self.name)
            return None

    async def _take(self, command: BenchCommand) -> BenchReply:
        reason = refusal(
            command=command.command,
            state=self.state,
            expected_state=command.expected_state,
            bench_run=self.run.run_id if self.run else None,
            run_id=command.run_id,
        )
        fault = self.options.fault
        if reason is None and fault is not None and fault.kind == "reject" and command.command in ("load", "start"):
            reason = "the bench is set to reject every load and start (emulator --fault reject)"
        if reason is None:
            try:
                await self._act(command)
            except (DriverError, RunFileError) as exc:
                reason = str(exc)
        return BenchReply(
            command_id=command.command_id,
            command=command.command,
            run_id=command.run_id,
            result="rejected" if reason else "accepted",
            reason=reason,
            state=self.state,  # type: ignore[arg-type]
            at=seed_time(utcnow()),
        )

    async def _act(self, command: BenchCommand) -> None:
        """Do an accepted command on the driver and move the bench's state (TRANSITIONS)."""
        name = command.command
        if name in ("load", "start") and self.state == "idle":
            assert command.run_file is not None  # the model requires it for load and start
            run_file = command.run_file.run_procedure()
            fault = self.options.fault
            if fault is not None and fault.kind == "trip-safety":
                run_file = tightened(run_file)
            self.driver.load(command.run_id, run_file)
            self.run = _Run(command.run_id, command.test_UUID, run_file.expected_duration_s)
            await self._set_state("loaded")
        run = self.run
        assert run is not None
        if name == "start":
            self.driver.start()
            run.started_wall = run.flushed_wall = self.clock()
            await self._set_state("running")
            await self._event(run, "started")
            self._arm_fault()
        elif name == "pause":
            self.driver.pause()
            await self._drain(run)
            await self._set_state("paused")
            await self._event(run, "paused")
        elif name == "resume":
            self.driver.resume()
            await self._set_state("running")
            await self._event(run, "resumed")
        elif name in ("stop", "abort"):
            why = command.reason or ("stopped by the LIMS" if name == "stop" else "aborted by the LIMS")
            if name == "stop":
                self.driver.stop()
            else:
                self.driver.abort(why)
            await self._drain(run)
            if self.run is run:  # not ended by itself in the last samples
                await self._event(run, "aborted", reason=f"{name}: {why}")
                self._end_run(run, "aborted")
                await self._publish_state()
        assert name == "load" or self.state in (TRANSITIONS[name][1], "idle")

    # --- runs --------------------------------------------------------------------------------------

    async def _serve_runs(self) -> None:
        while True:
            run = self.run
            if run is not None and self.state == "running":
                async with self._busy:
                    if self.run is run and self.state == "running":
                        await self._drain(run)
            await asyncio.sleep(self.options.poll_s)

    async def _drain(self, run: _Run) -> None:
        """Read what the driver measured; publish it in batches, each event after the rows before it."""
        chunk = self.driver.read_samples()
        if chunk is not None:
            self._keep(run, chunk)
            if chunk.events:
                await self._flush(run)
                for event in chunk.events:
                    await self._run_event(run, event)
        now = self.clock()
        buffered = len(run.rows[TIME_COLUMN]) if run.rows else 0
        if (
            self.run is run
            and buffered
            and (buffered >= self.options.batch_rows or now - run.flushed_wall >= self.options.batch_wall_s)
        ):
            await self._flush(run)
            progress = min(99.0, 100.0 * run.test_time_s / run.expected_s)
            await self._event(run, "progress", progress=progress)

    def _keep(self, run: _Run, chunk: Chunk) -> None:
        if not chunk.count:
            return
        if run.rows is None:
            run.rows = {name: [] for name in COLUMNS}
            run.first_index = chunk.first_index
        for name in COLUMNS:
            run.rows[name] += chunk.rows[name]
        run.test_time_s = chunk.rows[TIME_COLUMN][-1]

    async def _flush(self, run: _Run) -> None:
        run.flushed_wall = self.clock()
        rows, run.rows = run.rows, None
        if not rows or not rows[TIME_COLUMN]:
            return
        batch = MetricsBatch(
            run_id=run.run_id,
            test_UUID=run.test_uuid,
            seq=run.seq,
            record_index=run.first_index,
            timestamps=rows[TIME_COLUMN],
            signals={
                name: SignalSeries(unit=name.partition(" / ")[2], values=rows[name])
                for name in COLUMNS
                if name != TIME_COLUMN
            },
        )
        run.seq += 1
        run.last_record = run.first_index + len(rows[TIME_COLUMN]) - 1
        await self._publish(self.topics.run_metrics(self.name, run.run_id), batch)

    async def _run_event(self, run: _Run, event: Event) -> None:
        details = event.details
        if event.kind == "step_started":
            await self._event(
                run,
                "step_started",
                test_time_s=event.test_time_s,
                step_index=details["step_id"],
                cycle_index=details["cycle_count"],
            )
        elif event.kind == "step_ended":
            await self._event(
                run,
                "step_ended",
                test_time_s=event.test_time_s,
                step_index=details["step_id"],
                cycle_index=details["cycle_count"],
                charge_Ah=details["charge_Ah"] - details["discharge_Ah"],
                energy_Wh=details["charge_Wh"] - details["discharge_Wh"],
            )
        elif event.kind == "safety_tripped":
            await self._event(
                run,
                "safety_tripped",
                test_time_s=details["at_s"],
                limit=details["limit"],
                value=details["value"],
                reason=details["reason"],
            )
        elif event.kind in ("completed", "failed"):
            await self._event(
                run, event.kind, test_time_s=event.test_time_s, reason=details.get("reason"), progress=100.0
            )
            self._end_run(run, event.kind)
            await self._publish_state()

    async def _event(self, run: _Run, kind: str, **fields: object) -> None:
        reason = fields.pop("reason", None)
        message = RunEvent(
            run_id=run.run_id,
            test_UUID=run.test_uuid,
            event=kind,  # type: ignore[arg-type]
            at=seed_time(utcnow()),
            reason=str(reason)[:4000] if reason else None,
            record_index=run.last_record,
            **fields,  # type: ignore[arg-type]
        )
        await self._publish(self.topics.run_events(self.name, run.run_id), message)

    def _end_run(self, run: _Run, how: str) -> None:
        if self._fault_timer is not None:
            self._fault_timer.cancel()
            self._fault_timer = None
        self.run = None
        self.state = "idle"
        self.since = seed_time(utcnow())
        log.info("bench %s: run %s %s (%d records)", self.name, run.run_id, how, run.last_record + 1)

    # --- faults ------------------------------------------------------------------------------------

    def _arm_fault(self) -> None:
        fault = self.options.fault
        if fault is not None and fault.kind in ("offline-after", "die-after") and self._fault_timer is None:
            self._fault_timer = asyncio.create_task(self._fault_after(fault))

    async def _fault_after(self, fault: Fault) -> None:
        await asyncio.sleep(fault.seconds or 0.0)  # the fault's own timing: wall seconds into the run
        if fault.kind == "die-after":
            log.error("bench %s: dying now (--fault die-after=%g)", self.name, fault.seconds)
            logging.shutdown()
            os._exit(EXIT_DIED)
        assert self.client is not None and self._done is not None
        self.client.drop()
        log.error("bench %s: connection dropped, no DISCONNECT (--fault offline-after=%g)", self.name, fault.seconds)
        if not self._done.done():
            self._done.set_result(EXIT_OFFLINE)

    # --- MQTT --------------------------------------------------------------------------------------

    async def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.since = seed_time(utcnow())
            await self._publish_state()

    async def _publish_state(self) -> None:
        await self._publish(self.topics.bench_state(self.name), self._state_message(self.state), retain=True)

    def _state_message(self, state: str, reason: str | None = None) -> BenchState:
        run = self.run
        return BenchState(
            bench=self.name,
            state=state,  # type: ignore[arg-type]
            since=self.since,
            run_id=run.run_id if run is not None and state not in ("idle", "offline") else None,
            capabilities=self.capabilities,
            reason=reason,
        )

    async def _publish(
        self, topic: str, message: BenchState | BenchReply | RunEvent | MetricsBatch, retain: bool = False
    ) -> None:
        """QoS 1; wait for the broker's PUBACK so the next message follows this one."""
        assert self.client is not None
        sent = await self.client.publish(topic, message.model_dump_json(exclude_none=True).encode(), 1, retain)
        if not await sent:
            log.warning("bench %s: a message on %s was not acknowledged (the broker is away)", self.name, topic)


async def _stopped(stop: asyncio.Event) -> int:
    await stop.wait()
    return EXIT_OK


def _capabilities(found: Capabilities) -> BenchCapabilities:
    data = asdict(found)
    data["step_modes"] = list(found.step_modes)
    return BenchCapabilities(**data)

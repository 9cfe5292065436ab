# ruff: noqa: E402 - the repository root must be on sys.path before tests.* and bench.* are imported
"""Benchmark of MQTT messaging: the embedded amqtt broker and Mosquitto, in the same run.

Run: ``python bench/mqtt.py [--out PATH]`` (writes ``bench/results/mqtt.json``; about 1.5 minutes).

Two measurements, each against both brokers:

* **Requests through the outbox.** A migrated, seeded SQLite database; test requests created
  with ``fastlims.requests.service.create`` (each writes a request and a status row to the
  outbox in its own transaction); the real ``MessagingService`` relays them; a Digital Twin
  (partner identity, paho) subscribed to ``…/requests/+`` and ``…/requests/+/status`` counts
  distinct message ids. Two modes: ``backlog`` (N requests committed in one transaction, so the
  figure is the relay's own rate) and ``live`` (one transaction per request while the relay runs,
  as the web API does). Requests/s = N / (first commit → last request message received).
* **Metrics samples to a subscriber.** A bench identity publishes ``MetricsBatch`` JSON on
  ``…/runs/{run_id}/metrics`` at QoS 1 with at most ``WINDOW`` messages awaiting PUBACK; a
  partner subscribes at QoS 1. Latency = arrival at the subscriber − ``publish()`` call for the
  same ``seq`` (one process, one ``time.perf_counter`` clock). ``saturated`` cases send for
  ``SATURATED_S`` seconds as fast as the window allows; ``paced`` cases offer exactly the target
  rate, to read the latency a subscriber sees at the target load. Lost = sent − distinct seqs
  received; messages on topics the subscriber never subscribed to are counted as ``foreign``.

A relay that stops making progress is reported, not waited for: the case records what arrived,
the pending outbox rows, whether the LIMS event loop still answers, and where the threads inside
``fastlims.messaging`` stand (that is how a lock-order deadlock in ``MqttClient`` was found).

A *sample* is one timestamp of a ``MetricsBatch`` (one row of the columnar batch, here with
``SIGNALS`` signal values); *values* = samples × signals (what ``MetricsBatch.samples`` counts).
The targets are checked against samples (timestamps)/s, the stricter reading.

The embedded broker runs as production builds it (``EmbeddedBroker`` + ``BrokerPolicy`` with
argon2 identities in the LIMS database and role ACLs), but in its own process (this script with
``--serve-embedded``), so the broker and the benchmark's clients do not share a GIL; the LIMS
connects with a per-process internal credential as ``bootstrap`` gives it. Mosquitto runs with
the same ACL policy via ``tests.mqtt_helpers.start_mosquitto`` (``max_queued_messages 0``).
The CPU seconds of the broker process and of this process are recorded per case: a broker near
100 % of one core is CPU-bound. The machine is shared: its load average is recorded too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench._common import load_average, machine_info

OUT = ROOT / "bench" / "results" / "mqtt.json"
PREFIX = "fastest/v1"
SEED = 0
LAB_ZONE = "Europe/Berlin"

# Outbox: requests per mode (each request is 3 outbox messages: request, Submitted, ModelRequested).
OUTBOX_REQUESTS = 600
# Metrics: samples per message; every case publishes for a fixed time.
BATCH_SIZES = (1, 10, 100, 1000)
SATURATED_S = 3.0  # each saturated case publishes for this long
POOL = 16  # distinct batches per case (see PayloadPool)
SIGNALS = ("voltage_V", "current_A", "temperature_C", "soc_pct")
WINDOW = 64  # messages published but not yet PUBACKed (the bench's in-flight bound)
DRAIN_IDLE_S = 5.0  # after the last send: give up when nothing arrives for this long
# Paced cases: the target rate offered for PACED_S seconds.
TARGET_SAMPLES_S = {"embedded": 50_000, "mosquitto": 200_000}
TARGET_P99_MS = 50.0
PACED_BATCHES = (100, 1000)
PACED_S = 3.0

LIMS_INTERNAL = ("fastlims-lims-bench", "lims-internal-password-0123")
LIMS_EXTERNAL = ("lims", "lims-password-123")
PARTNER = ("dt-partner", "partner-password-1")
BENCH = ("bench-01", "bench-password-1")
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# --- the embedded broker in its own process ------------------------------------------------------


async def _serve_embedded(database_url: str, port: int) -> None:
    from prometheus_client import CollectorRegistry

    from fastlims.db.engine import Database
    from fastlims.messaging.broker import BrokerPolicy, EmbeddedBroker
    from fastlims.messaging.metrics import MessagingMetrics
    from fastlims.messaging.models import MqttRole
    from fastlims.messaging.topics import Topics

    username, password = os.environ["FASTLIMS_BENCH_LIMS_USER"], os.environ["FASTLIMS_BENCH_LIMS_PASSWORD"]
    policy = BrokerPolicy(Database(database_url), Topics(PREFIX), MessagingMetrics(CollectorRegistry()))
    policy.internal[username] = (password, MqttRole.lims)  # what add_internal_identity() does
    broker = EmbeddedBroker(policy, "127.0.0.1", port)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.stop()


@dataclass
class BrokerProcess:
    kind: str
    port: int
    pid: int
    stop: Any
    lims: tuple[str, str]

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime + stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"embedded broker exited: {log.read_text()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("embedded broker did not listen within 30 s")


def start_embedded(database_url: str, workdir: Path) -> BrokerProcess:
    port = _free_port()
    log = workdir / "embedded-broker.log"
    env = dict(
        os.environ,
        FASTLIMS_BENCH_LIMS_USER=LIMS_INTERNAL[0],
        FASTLIMS_BENCH_LIMS_PASSWORD=LIMS_INTERNAL[1],
    )
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-embedded", database_url, str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    _wait_listening(port, process, log)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    return BrokerProcess("embedded", port, process.pid, stop, LIMS_INTERNAL)


def start_mosquitto_broker() -> BrokerProcess:
    from tests.mqtt_helpers import start_mosquitto

    from fastlims.messaging.models import MqttRole

    server = start_mosquitto(
        {
            LIMS_EXTERNAL[0]: (LIMS_EXTERNAL[1], MqttRole.lims),
            PARTNER[0]: (PARTNER[1], MqttRole.partner),
            BENCH[0]: (BENCH[1], MqttRole.bench),
        },
        PREFIX,
    )
    return BrokerProcess("mosquitto", server.port, server.process.pid, server.stop, LIMS_EXTERNAL)


def mosquitto_version() -> str | None:
    from tests.mqtt_helpers import mosquitto_binary

    binary = mosquitto_binary()
    if binary is None:
        return None
    output = subprocess.run([binary, "-h"], capture_output=True, text=True).stdout
    first = output.strip().splitlines()[0] if output.strip() else ""
    return first.removeprefix("mosquitto version ").strip() or None


# --- paho peers ----------------------------------------------------------------------------------


def _paho(username: str, password: str, name: str) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"{username}/bench-{name}-{os.urandom(4).hex()}",  # USERNAME/…: docs/mqtt.md
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    client.username_pw_set(username, password)
    client.max_queued_messages_set(0)
    return client


def _connect(client: mqtt.Client, port: int) -> None:
    connected = threading.Event()
    codes: list[int] = []

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        codes.append(int(getattr(reason, "value", reason)))
        connected.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    if not connected.wait(15) or codes[0] != 0:
        raise RuntimeError(f"MQTT connect failed: {codes}")


class Recorder:
    """A subscriber that only timestamps arrivals; payloads are decoded after the case."""

    def __init__(self, port: int, username: str, password: str, filters: list[str]) -> None:
        self.arrivals: list[tuple[float, str, bytes | bytearray]] = []
        self.client = _paho(username, password, "sub")
        self.matching = 0  # arrivals on ``counted_topic``
        self.counted_topic: str | None = None

        def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
            arrived, topic = time.perf_counter(), message.topic
            self.arrivals.append((arrived, topic, message.payload))
            if topic == self.counted_topic:
                self.matching += 1

        self.client.on_message = on_message
        subscribed = threading.Event()
        granted: list[int] = []

        def on_subscribe(_c: Any, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
            granted.extend(int(getattr(x, "value", x)) for x in codes)
            subscribed.set()

        self.client.on_subscribe = on_subscribe
        _connect(self.client, port)
        self.client.subscribe([(f, 1) for f in filters])
        if not subscribed.wait(15) or any(code >= 0x80 for code in granted):
            raise RuntimeError(f"subscribe {filters} refused: {granted}")

    def wait_count(self, predicate: Any, idle_s: float = DRAIN_IDLE_S) -> None:
        """Until ``predicate()`` holds, or nothing new arrives for ``idle_s``."""
        seen, last_change = -1, time.monotonic()
        while not predicate():
            n = len(self.arrivals)
            if n != seen:
                seen, last_change = n, time.monotonic()
            elif time.monotonic() - last_change > idle_s:
                return
            time.sleep(0.005)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Cpu:
    """CPU seconds of the broker process and of this process over a case."""

    def __init__(self, broker: BrokerProcess) -> None:
        self.broker = broker
        self.wall0, self.broker0, self.own0 = time.perf_counter(), broker.cpu_s(), time.process_time()

    def result(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall0
        broker_s, own_s = self.broker.cpu_s() - self.broker0, time.process_time() - self.own0
        return {
            "wall_s": round(wall, 3),
            "broker_cpu_s": round(broker_s, 3),
            "broker_cpu_pct_of_one_core": round(100 * broker_s / wall, 1),
            "bench_process_cpu_s": round(own_s, 3),
            "bench_process_cpu_pct_of_one_core": round(100 * own_s / wall, 1),
        }


# --- requests through the outbox -----------------------------------------------------------------


def prepare_template(workdir: Path) -> Path:
    """Migrate and seed once; every broker gets a copy (as the test suite does)."""
    from fastlims.bootstrap import build, prepare_database
    from fastlims.config import Settings

    path = workdir / "template.db"
    system = build(Settings(data_dir=workdir, database_url=f"sqlite:///{path}", timezone=LAB_ZONE))
    prepare_database(system)
    system.close()
    return path


def lims_database(template: Path, workdir: Path, kind: str) -> str:
    from fastlims.db.engine import Database
    from fastlims.messaging import identities

    path = workdir / f"lims-{kind}.db"
    shutil.copy(template, path)
    url = f"sqlite:///{path}"
    database = Database(url)
    with database.transaction() as session:
        identities.add(session=session, username=PARTNER[0], role="partner", password=PARTNER[1])
        identities.add(session=session, username=BENCH[0], role="bench", password=BENCH[1])
    database.dispose()
    return url


def _combination(system: Any) -> dict[str, Any]:
    from tests.catalog_helpers import applicable

    combo = applicable(system)
    return dict(
        uut=combo.uut, use_case=combo.use_case, standard=combo.standard, test_name=combo.test_name, bench=combo.bench
    )


def _loop_responsive(loop: asyncio.AbstractEventLoop) -> bool:
    """Does the LIMS's event loop still run callbacks? (A deadlocked relay blocks it.)"""
    try:
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(3)
        return True
    except TimeoutError:
        return False


def _messaging_frames() -> list[str]:
    """Where every thread that is inside ``fastlims.messaging`` stands (evidence of a stall)."""
    stacks = []
    for frame in sys._current_frames().values():
        stack = traceback.extract_stack(frame)
        ours = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in stack if "fastlims/messaging" in f.filename]
        if ours:
            innermost = stack[-1]
            where = innermost.filename.split("site-packages/")[-1]
            stacks.append(f"{where}:{innermost.lineno} {innermost.name} <- " + " <- ".join(reversed(ours)))
    return stacks


def bench_outbox(broker: BrokerProcess, database_url: str, workdir: Path) -> dict[str, Any]:
    from sqlalchemy import func, select
    from tests.mqtt_helpers import RunningServices

    from fastlims.bootstrap import build
    from fastlims.config import Settings
    from fastlims.messaging.models import OutboxMessage
    from fastlims.requests import service as requests
    from fastlims.requests.models import TestRequest
    from fastlims.requests.schemas import TestRequestCreate
    from fastlims.requests.states import Status
    from fastlims.users import service as users

    system = build(
        Settings(
            data_dir=workdir / f"data-{broker.kind}",
            database_url=database_url,
            timezone=LAB_ZONE,
            mqtt_url=f"mqtt://127.0.0.1:{broker.port}",
            mqtt_username=broker.lims[0],
            mqtt_password=broker.lims[1],
            mqtt_client_id=f"fastlims-bench-{broker.kind}",
        )
    )
    with system.database.transaction() as session:
        requester = users.create(
            session=session,
            username="bench-requester",
            role="requester",
            password="correct-horse-battery",
            display_name="Bench Requester",
        )
    body = TestRequestCreate(**_combination(system), preferred_date=date.today() + timedelta(days=365))
    dt = Recorder(broker.port, *PARTNER, [f"{PREFIX}/requests/+", f"{PREFIX}/requests/+/status"])
    services = RunningServices(system, [system.messaging])
    services.start()
    if not services.loop.run(system.messaging.client.wait_connected(15)):
        raise RuntimeError("the LIMS client did not connect")

    def create(session: Any) -> str:
        return str(requests.create(session=session, data=body, requester=requester, zone=system.zone).test_uuid)

    def pending_rows() -> int:
        with system.database.transaction() as session:
            return int(
                session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))
                or 0
            )

    def stall_report(where: str, expected: int) -> dict[str, Any] | None:
        """None when the relay is healthy; else what we saw (the run goes on with the metrics)."""
        if len(dt.arrivals) >= expected:
            return None
        responsive = _loop_responsive(services.loop.loop)
        report = {
            "stalled_during": where,
            "messages_expected_by_now": expected,
            "messages_received": len(dt.arrivals),
            "outbox_rows_still_pending": pending_rows(),
            "idle_s_before_giving_up": DRAIN_IDLE_S,
            "lims_event_loop_responsive": responsive,
            "threads_in_fastlims_messaging": _messaging_frames(),
        }
        print(f"  outbox {broker.kind:9} STALLED during {where}: {json.dumps(report, indent=1)}", flush=True)
        return report

    modes: dict[str, Any] = {}
    stalled: dict[str, Any] | None = None
    try:
        # Warm-up: one request end to end (catalog queries, first publishes).
        with system.database.transaction() as session:
            warm = create(session)
        dt.wait_count(lambda: len(dt.arrivals) >= 3)
        stalled = stall_report("warm-up", 3)
        for mode in ("backlog", "live"):
            if stalled:
                modes[mode] = {"not_run": "the relay stalled earlier"}
                continue
            since = len(dt.arrivals)
            expected_total = since + 3 * OUTBOX_REQUESTS
            cpu = Cpu(broker)
            created: list[str] = []
            create_s = None
            if mode == "backlog":
                with system.database.transaction() as session:
                    created = [create(session) for _ in range(OUTBOX_REQUESTS)]
                first_commit = time.perf_counter()
            else:
                started = time.perf_counter()
                for i in range(OUTBOX_REQUESTS):
                    with system.database.transaction() as session:
                        created.append(create(session))
                    if i == 0:
                        first_commit = time.perf_counter()
                create_s = time.perf_counter() - started
            dt.wait_count(lambda n=expected_total: len(dt.arrivals) >= n)
            usage = cpu.result()
            arrivals = dt.arrivals[since:]
            counts: dict[str, int] = {}
            request_times = []
            for arrived, topic, payload in arrivals:
                if topic.count("/") == 3:  # fastest/v1/requests/<uuid>
                    message_id = json.loads(payload)["message_id"]
                    counts[message_id] = counts.get(message_id, 0) + 1
                    request_times.append(arrived)
            status_ids = [json.loads(p)["message_id"] for _t, topic, p in arrivals if topic.endswith("/status")]
            wanted = {f"req-{u}" for u in created}
            received = len(set(counts) & wanted)
            seconds = (max(request_times) - first_commit) if request_times else 0.0
            all_seconds = (arrivals[-1][0] - first_commit) if arrivals else 0.0
            stalled = stall_report(mode, expected_total)
            marked = None
            if not stalled:  # the relay marks rows sent after the PUBACK: the subscriber can be first
                deadline = time.monotonic() + 10
                while pending_rows() and time.monotonic() < deadline:
                    time.sleep(0.02)
                marked = time.perf_counter() - first_commit
            with system.database.transaction() as session:
                announced = session.scalar(
                    select(func.count())
                    .select_from(TestRequest)
                    .where(TestRequest.test_uuid.in_(created), TestRequest.status == int(Status.ModelRequested))
                )
            modes[mode] = {
                "requests": OUTBOX_REQUESTS,
                "outbox_messages_expected": 3 * OUTBOX_REQUESTS,
                "outbox_messages_received": len(arrivals),
                "request_messages_received_distinct": received,
                "request_messages_missing": len(wanted - set(counts)),
                "request_messages_duplicated": sum(1 for c in counts.values() if c > 1),
                "unexpected_request_messages": len(set(counts) - wanted),
                "every_request_exactly_once": set(counts) == wanted and all(c == 1 for c in counts.values()),
                "status_messages_received": len(status_ids),
                "status_messages_distinct": len(set(status_ids)),
                "outbox_rows_still_pending": pending_rows() if not stalled else stalled["outbox_rows_still_pending"],
                "requests_moved_to_ModelRequested": announced,
                "first_commit_to_last_request_s": round(seconds, 3),
                "first_commit_to_last_message_s": round(all_seconds, 3),
                "first_commit_to_all_rows_marked_sent_s": round(marked, 3) if marked else None,
                "requests_per_s": round(received / seconds, 1) if seconds > 0 and not stalled else None,
                "outbox_messages_per_s": round(len(arrivals) / all_seconds, 1)
                if all_seconds > 0 and not stalled
                else None,
                "create_only_requests_per_s": round(OUTBOX_REQUESTS / create_s, 1) if create_s else None,
                "stall": stalled,
                **usage,
            }
            print(
                f"  outbox {broker.kind:9} {mode:7}: {modes[mode]['requests_per_s']} requests/s, "
                f"exactly once: {modes[mode]['every_request_exactly_once']}",
                flush=True,
            )
    finally:
        dt.close()
        if stalled and not stalled["lims_event_loop_responsive"]:
            # The loop thread is blocked for good: stopping the services would wait forever. Its
            # threads are daemons; the broker is stopped by the caller, which ends the connection.
            pass
        else:
            services.stop()
        system.close()
    return {"warm_up_request": warm, "stalled": stalled is not None, "modes": modes}


# --- metrics samples -----------------------------------------------------------------------------


_MESSAGE_ID = "ffffffff-ffff-4fff-bfff-ffffffffffff"
_SEQ = 987_654_321


@dataclass(frozen=True)
class PayloadPool:
    """``POOL`` different batches as JSON templates; ``payload(seq)`` fills in seq and message_id
    (a byte join, so building a message costs the publisher almost nothing). The samples repeat
    every ``POOL`` messages: the broker does not read them."""

    templates: list[tuple[bytes, bytes, bytes]]  # head + message_id + middle + seq + tail
    run_id: str
    build_s: float

    def payload(self, seq: int) -> bytes:
        head, middle, tail = self.templates[seq % len(self.templates)]
        return b"".join((head, f"{self.run_id}-{seq}".encode(), middle, str(seq).encode(), tail))


def payload_pool(batch: int, run_id: str, test_uuid: str) -> PayloadPool:
    from fastlims.messaging.schemas import MetricsBatch, SignalSeries

    rng = random.Random(SEED + batch)
    templates = []
    started = time.perf_counter()
    for index in range(POOL):
        base = index * batch
        data = (
            MetricsBatch(
                message_id=_MESSAGE_ID,
                run_id=run_id,
                test_UUID=test_uuid,
                seq=_SEQ,
                t0_utc="2026-01-01 00:00:00",
                timestamps=[round((base + i) * 0.001, 3) for i in range(batch)],  # 1 kHz
                signals={
                    name: SignalSeries(
                        unit=name.split("_")[1], values=[round(rng.uniform(0, 100), 4) for _ in range(batch)]
                    )
                    for name in SIGNALS
                },
            )
            .model_dump_json()
            .encode()
        )
        head, rest = data.split(_MESSAGE_ID.encode(), 1)
        middle, tail = rest.split(str(_SEQ).encode(), 1)
        templates.append((head, middle, tail))
    return PayloadPool(templates, run_id, time.perf_counter() - started)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def metrics_case(broker: BrokerProcess, batch: int, seconds: float, rate_msg_s: float | None) -> dict[str, Any]:
    """Publish for ``seconds``: as fast as the window allows, or at ``rate_msg_s``."""
    from fastlims.messaging.schemas import MetricsBatch

    run_id = f"bench-{broker.kind}-{batch}-{'paced' if rate_msg_s else 'max'}"
    topic = f"{PREFIX}/runs/{run_id}/metrics"
    pool = payload_pool(batch, run_id, str(uuid.UUID(int=batch)))
    subscriber = Recorder(broker.port, *PARTNER, [f"{PREFIX}/runs/+/metrics"])
    subscriber.counted_topic = topic
    publisher = _paho(*BENCH, "pub")
    publisher.max_inflight_messages_set(WINDOW)  # paho's own default (20) would be the bound otherwise
    slots = threading.BoundedSemaphore(WINDOW)
    publisher.on_publish = lambda _c, _u, _mid, _rc, _p: slots.release()
    _connect(publisher, broker.port)
    sent_at: list[float] = []
    payload_bytes = 0
    cpu = Cpu(broker)
    start = time.perf_counter()
    try:
        seq = 0
        while (now := time.perf_counter()) - start < seconds:
            if rate_msg_s:
                due = start + seq / rate_msg_s
                if now < due:
                    time.sleep(min(due - now, 0.002))
                    continue
            payload = pool.payload(seq)
            slots.acquire()
            sent_at.append(time.perf_counter())
            info = publisher.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publish failed: {info.rc}")
            payload_bytes += len(payload)
            seq += 1
        send_s = time.perf_counter() - start
        for _ in range(WINDOW):  # every PUBACK back
            slots.acquire(timeout=30)
        sent = len(sent_at)
        subscriber.wait_count(lambda: subscriber.matching >= sent)
        usage = cpu.result()
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        subscriber.close()

    parse_started = time.perf_counter()
    first_arrival: dict[int, float] = {}
    duplicates = samples = 0
    foreign: list[str] = []  # messages on topics this subscriber never subscribed to
    for arrived, arrived_topic, data in subscriber.arrivals:
        if arrived_topic != topic:
            foreign.append(arrived_topic)
            continue
        message = MetricsBatch.model_validate_json(data)
        if message.seq in first_arrival:
            duplicates += 1
            continue
        first_arrival[message.seq] = arrived
        samples += len(message.timestamps)
    parse_s = time.perf_counter() - parse_started
    latencies = sorted(1000 * (t - sent_at[seq]) for seq, t in first_arrival.items())
    received = len(first_arrival)
    span = (max(first_arrival.values()) - sent_at[0]) if first_arrival else float("nan")
    return {
        "broker": broker.kind,
        "mode": "paced" if rate_msg_s else "saturated",
        "batch_samples_per_message": batch,
        "signals_per_sample": len(SIGNALS),
        "payload_bytes_per_message": round(payload_bytes / max(1, sent)),
        "offered_messages_per_s": rate_msg_s,
        "offered_samples_per_s": rate_msg_s * batch if rate_msg_s else None,
        "send_seconds_planned": seconds,
        "messages_sent": sent,
        "messages_received_distinct": received,
        "lost": sent - received,
        "lost_seqs_sample": sorted(set(range(sent)) - set(first_arrival))[:10],
        "duplicates": duplicates,
        "foreign_messages_received": len(foreign),
        "foreign_topics_sample": sorted(set(foreign))[:3],
        "send_s": round(send_s, 3),
        "first_send_to_last_arrival_s": round(span, 3),
        "messages_per_s": round(received / span, 1),
        "samples_per_s": round(samples / span, 1),
        "values_per_s": round(samples * len(SIGNALS) / span, 1),
        "megabytes_per_s": round(payload_bytes * received / max(1, sent) / span / 1e6, 2),
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.50), 2),
            "p99": round(_percentile(latencies, 0.99), 2),
            "max": round(latencies[-1], 2) if latencies else None,
            "mean": round(statistics.fmean(latencies), 2) if latencies else None,
        },
        "pydantic_build_and_dump_samples_per_s": round(POOL * batch / pool.build_s, 1),
        "pydantic_validate_json_samples_per_s": round(samples / parse_s, 1) if parse_s > 0 else None,
        **usage,
    }


def bench_metrics(broker: BrokerProcess) -> list[dict[str, Any]]:
    cases = []
    for batch in BATCH_SIZES:
        case = metrics_case(broker, batch, SATURATED_S, None)
        cases.append(case)
        _print_case(case)
    target = TARGET_SAMPLES_S[broker.kind]
    for batch in PACED_BATCHES:
        rate = target / batch
        case = metrics_case(broker, batch, PACED_S, rate)
        cases.append(case)
        _print_case(case)
    return cases


def _print_case(case: dict[str, Any]) -> None:
    latency = case["latency_ms"]
    print(
        f"  metrics {case['broker']:9} {case['mode']:9} batch {case['batch_samples_per_message']:>4}: "
        f"{case['messages_per_s']:>8.0f} msg/s {case['samples_per_s']:>9.0f} samples/s "
        f"p50 {latency['p50']:7.2f} p99 {latency['p99']:7.2f} max {latency['max']:7.2f} ms "
        f"lost {case['lost']} dup {case['duplicates']} broker CPU {case['broker_cpu_pct_of_one_core']}%",
        flush=True,
    )


# --- comparison and report -----------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def compare(results: dict[str, Any]) -> dict[str, Any]:
    by_key = {(c["broker"], c["mode"], c["batch_samples_per_message"]): c for c in results["metrics"]}
    ratios: dict[str, Any] = {
        "metrics_samples_per_s_mosquitto_over_embedded": {},
        "metrics_p99_ms_mosquitto_over_embedded": {},
    }
    for batch in BATCH_SIZES:
        e, m = by_key.get(("embedded", "saturated", batch)), by_key.get(("mosquitto", "saturated", batch))
        if e and m:
            ratios["metrics_samples_per_s_mosquitto_over_embedded"][str(batch)] = _ratio(
                m["samples_per_s"], e["samples_per_s"]
            )
            ratios["metrics_p99_ms_mosquitto_over_embedded"][str(batch)] = _ratio(
                m["latency_ms"]["p99"], e["latency_ms"]["p99"]
            )
    ratios["outbox_requests_per_s_mosquitto_over_embedded"] = {
        mode: _ratio(
            results["outbox"]["mosquitto"]["modes"][mode].get("requests_per_s"),
            results["outbox"]["embedded"]["modes"][mode].get("requests_per_s"),
        )
        for mode in ("backlog", "live")
        if "mosquitto" in results["outbox"] and "embedded" in results["outbox"]
    }
    targets: dict[str, Any] = {}
    for kind, target in TARGET_SAMPLES_S.items():
        saturated = [c for c in results["metrics"] if c["broker"] == kind and c["mode"] == "saturated"]
        paced = [c for c in results["metrics"] if c["broker"] == kind and c["mode"] == "paced"]
        if not saturated:
            continue
        best = max(saturated, key=lambda c: c["samples_per_s"])
        lossless = all(c["lost"] == 0 and c["duplicates"] == 0 for c in saturated + paced)
        paced_ok = [
            c
            for c in paced
            if c["lost"] == 0 and c["latency_ms"]["p99"] < TARGET_P99_MS and c["samples_per_s"] >= 0.95 * target
        ]
        targets[kind] = {
            "target_samples_per_s": target,
            "best_saturated_samples_per_s": best["samples_per_s"],
            "best_saturated_batch": best["batch_samples_per_message"],
            "best_over_target": _ratio(best["samples_per_s"], target),
            "samples_per_s_over_target_by_batch": {
                str(c["batch_samples_per_message"]): _ratio(c["samples_per_s"], target) for c in saturated
            },
            "values_per_s_over_target_by_batch": {
                str(c["batch_samples_per_message"]): _ratio(c["values_per_s"], target) for c in saturated
            },
            "throughput_met": best["samples_per_s"] >= target,
            "no_loss_no_duplicates_all_cases": lossless,
            "p99_ms_at_target_rate_by_batch": {
                str(c["batch_samples_per_message"]): c["latency_ms"]["p99"] for c in paced
            },
            "p99_below_50ms_at_target_rate": bool(paced_ok),
            "p99_ms_saturated_by_batch": {
                str(c["batch_samples_per_message"]): c["latency_ms"]["p99"] for c in saturated
            },
            "met": best["samples_per_s"] >= target and lossless and bool(paced_ok),
        }
    return {"ratios": ratios, "targets": targets}


def print_table(results: dict[str, Any]) -> None:
    print("\nRequests through the outbox (requests/s, first commit → last request received)")
    print(f"{'broker':10} {'mode':8} {'req/s':>8} {'msgs/s':>8} {'exactly once':>13} {'broker CPU':>11}  note")
    for kind, outbox in results["outbox"].items():
        for mode, r in outbox["modes"].items():
            if "not_run" in r:
                print(f"{kind:10} {mode:8} {'-':>8} {'-':>8} {'-':>13} {'-':>11}  not run: {r['not_run']}")
                continue
            note = ""
            if r["stall"]:
                note = (
                    f"STALLED: {r['outbox_messages_received']}/{r['outbox_messages_expected']} messages, "
                    f"event loop responsive: {r['stall']['lims_event_loop_responsive']}"
                )
            print(
                f"{kind:10} {mode:8} {r['requests_per_s']!s:>8} {r['outbox_messages_per_s']!s:>8} "
                f"{r['every_request_exactly_once']!s:>13} {r['broker_cpu_pct_of_one_core']:>10}%  {note}"
            )
    print(f"\nMetrics (QoS 1, window {WINDOW}; sample = one timestamp with {len(SIGNALS)} values)")
    print(
        f"{'broker':10} {'mode':9} {'batch':>5} {'msg/s':>8} {'samples/s':>10} {'values/s':>10} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'lost':>4} {'dup':>4} {'brokerCPU':>9}"
    )
    for c in results["metrics"]:
        lat = c["latency_ms"]
        print(
            f"{c['broker']:10} {c['mode']:9} {c['batch_samples_per_message']:>5} {c['messages_per_s']:>8.0f} "
            f"{c['samples_per_s']:>10.0f} {c['values_per_s']:>10.0f} {lat['p50']:>7.2f} {lat['p99']:>7.2f} "
            f"{lat['max']:>7.2f} {c['lost']:>4} {c['duplicates']:>4} {c['broker_cpu_pct_of_one_core']:>8}%"
        )
    print("\nTargets")
    for kind, t in results["comparison"]["targets"].items():
        print(
            f"{kind:10} best {t['best_saturated_samples_per_s']:.0f} samples/s (batch {t['best_saturated_batch']})"
            f" = {t['best_over_target']}x target {t['target_samples_per_s']}; no loss: "
            f"{t['no_loss_no_duplicates_all_cases']}; p99 at target rate {t['p99_ms_at_target_rate_by_batch']}"
            f" → met: {t['met']}"
        )


def main(out: Path = OUT) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "mqtt",
        "machine": machine_info("amqtt", "paho-mqtt", "pydantic", "SQLAlchemy", mosquitto=mosquitto_version()),
        "inputs": {
            "topic_prefix": PREFIX,
            "seed": SEED,
            "outbox_requests_per_mode": OUTBOX_REQUESTS,
            "outbox_messages_per_request": "3: the request, its Submitted status, its ModelRequested status",
            "batch_sizes_samples_per_message": list(BATCH_SIZES),
            "saturated_seconds_per_case": SATURATED_S,
            "distinct_batches_per_case": POOL,
            "signals": list(SIGNALS),
            "sample_definition": (
                "one timestamp of a MetricsBatch (a row of the columnar batch) carrying one value per signal; "
                "values = samples x signals (MetricsBatch.samples counts values)"
            ),
            "qos": 1,
            "publisher_window_unacked_messages": WINDOW,
            "paced_batches": list(PACED_BATCHES),
            "paced_seconds": PACED_S,
            "targets": {"samples_per_s": TARGET_SAMPLES_S, "p99_ms": TARGET_P99_MS, "loss": 0},
            "latency": "arrival at the subscriber's on_message - publisher's publish() call, same process perf_counter",
            "reading_latency": (
                "saturated cases: both brokers PUBACK the publisher on receipt and queue delivery to the subscriber, "
                "so the publisher's window does not bound end-to-end delay; their latency is the queue built up in "
                "SATURATED_S seconds of overload. Paced cases give the latency at the target rate."
            ),
            "cpu": "broker and bench process CPU seconds from /proc and process_time (10 ms ticks); % of one core",
            "embedded_broker": "EmbeddedBroker + BrokerPolicy (DB identities, role ACLs) in its own Python process",
            "mosquitto": "tests.mqtt_helpers.start_mosquitto: passwd + ACL files, max_queued_messages 0",
            "clients": "paho-mqtt in this process (publisher and subscriber threads); the LIMS uses MqttClient",
        },
        "outbox": {},
        "metrics": [],
    }
    workdir = Path(tempfile.mkdtemp(prefix="fastlims-bench-mqtt-"))
    try:
        template = prepare_template(workdir)
        for kind in ("embedded", "mosquitto"):
            url = lims_database(template, workdir, kind)
            broker = start_embedded(url, workdir) if kind == "embedded" else start_mosquitto_broker()
            try:
                print(f"{kind} broker on port {broker.port} (pid {broker.pid})", flush=True)
                results["outbox"][kind] = bench_outbox(broker, url, workdir)
                results["metrics"] += bench_metrics(broker)
            finally:
                broker.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["comparison"] = compare(results)
    results["machine"]["load_average_1_5_15_min_after"] = load_average()
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"\nwrote {out} in {results['total_seconds']} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the JSON (default: %(default)s)")
    parser.add_argument(
        "--serve-embedded",
        nargs=2,
        metavar=("DATABASE_URL", "PORT"),
        help="internal: run the embedded broker in this process",
    )
    arguments = parser.parse_args()
    if arguments.serve_embedded:
        asyncio.run(_serve_embedded(arguments.serve_embedded[0], int(arguments.serve_embedded[1])))
    else:
        main(arguments.out)

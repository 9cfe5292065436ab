# ruff: noqa: E402 - the repository root must be on sys.path before tests.* and bench.* are imported
"""Benchmark of physical-bench ingest: how many emulated benches, each sampling at 10 Hz with 8
Battery Data Format signals, the LIMS's bench gateway stores with zero loss, and the p99 from a
sample's measurement to the commit that stored it, on the embedded broker and on Mosquitto in
one run.

Run: ``python bench/benches.py [--ladder 25,50,...] [--seconds 20] [--out PATH]`` (writes
``bench/results/benches.json``; about 10 minutes with the default ladder).

Three processes per broker, as in a lab:

* **The broker**: the embedded amqtt broker as production builds it (``EmbeddedBroker`` +
  ``BrokerPolicy``: argon2 identities in the LIMS database, role ACLs) in its own process, or
  Mosquitto 2 with the same ACL policy (password file with every bench identity).
* **The LIMS** (this process): the real ``BenchGateway`` (persistent session, manual PUBACK after
  the commit, run/bench check, exactly-once key on ``record_index``) on the LIMS's SQLite database
  in its data directory (WAL, as ``fastlims up`` opens it). It is the only busy thread here; the
  ``on_stored`` hook records (commit time, run, first record, count) per batch.
* **The benches** (one generator process, this script with ``--generate``): N paho clients, each
  its own MQTT connection with its own bench identity (user ``bench-NNN``, role ``bench``), driven
  by one selector loop (paho's external-loop API), so the generator does not take a core per
  bench. Each bench publishes v1 ``MetricsBatch`` messages (QoS 1, ``record_index``, ``seq``,
  ``t0_utc``) for the run booked on it (a ``ScheduledRun`` row in the LIMS database).

Timing: bench ``b`` of a step starts measuring at ``t0_b = start + b·period/N`` (benches spread
over one batch period, as unsynchronised bench PCs are); its sample ``i`` is *measured* at
``t0_b + i/10 s`` and a batch is published when its last sample is measured. Latency of a sample =
wall time of the commit that stored its batch − its measured time (both processes read the same
``time.time()`` clock), so it includes the batching delay a bench adds (up to
``(samples per batch − 1)/10 s``), any lateness of the generator, the broker and the gateway.

Per ladder step (N benches, ``--seconds`` each): zero loss means every run's records 0..n−1 are
stored exactly once (read back from ``RunMetricBatches``: no gap, no overlap, no missing batch);
the step passes with zero loss and p99 < 1 s. The ladder stops for a broker at its first failing
step. CPU: seconds of the LIMS process, the broker process and the generator process over the
publishing window (from /proc, 10 ms ticks), in % of one core. The machine is shared (2 cores):
its load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import os
import queue
import random
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import load_average, machine_info

OUT = ROOT / "bench" / "results" / "benches.json"
PREFIX = "fastest/v1"
LAB_ZONE = "Europe/Berlin"
SAMPLE_HZ = 10
SAMPLES_PER_BATCH = 2  # 5 batches/s per bench: the batching delay stays at 0.1 s of the 1 s budget
LADDER = (25, 50, 100, 200, 300, 400, 500)
SECONDS = 20.0
DRAIN_IDLE_S = 10.0  # after the last publish: give up waiting when nothing is stored for this long
TARGET = {"broker": "mosquitto", "benches": 200, "p99_s": 1.0, "cores": 2}
TIME_COLUMN = ("Test Time / s", "s")
SIGNALS = (
    ("Voltage / V", "V"),
    ("Current / A", "A"),
    ("Temperature T1 / degC", "degC"),
    ("Step Count / 1", "1"),
    ("Cycle Count / 1", "1"),
    ("Charge Capacity / Ah", "Ah"),
    ("Discharge Capacity / Ah", "Ah"),
)
LIMS_EXTERNAL = ("lims", "lims-password-123")
BENCH_PASSWORD = "bench-password-0123"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def bench_name(index: int) -> str:
    return f"bench-{index:03d}"


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime + stime


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- the generator process: N benches on one selector loop ---------------------------------------


def metrics_payload(run_id: str, test_uuid: str, seq: int, first: int, count: int, t0_utc: str) -> bytes:
    """A v1 ``MetricsBatch`` (checked against the model once at start, see ``generate``): a
    constant-current discharge with a little noise, samples ``first .. first + count - 1``."""
    times = [round((first + j) / SAMPLE_HZ, 3) for j in range(count)]
    voltage = [round(4.1 - 0.0001 * t + random.uniform(-0.002, 0.002), 5) for t in times]
    current = [round(-1.6667 + random.uniform(-0.001, 0.001), 5) for _ in times]
    temperature = [round(25.0 + 0.0005 * t, 4) for t in times]
    discharge = [round(1.6667 * t / 3600, 6) for t in times]
    columns = {
        "Voltage / V": voltage,
        "Current / A": current,
        "Temperature T1 / degC": temperature,
        "Step Count / 1": [2.0] * count,
        "Cycle Count / 1": [1.0] * count,
        "Charge Capacity / Ah": [0.0] * count,
        "Discharge Capacity / Ah": discharge,
    }
    message = {
        "message_id": f"{run_id}:{seq}",
        "run_id": run_id,
        "test_UUID": test_uuid,
        "seq": seq,
        "record_index": first,
        "t0_utc": t0_utc,
        "timestamps": times,
        "signals": {name: {"unit": unit, "values": columns[name]} for name, unit in SIGNALS},
    }
    return json.dumps(message, separators=(",", ":")).encode()


class Generator:
    """``--generate``: the benches of every ladder step, one selector loop over paho clients.

    Line protocol on stdin/stdout: a JSON step (port, seconds, benches) → it connects the benches
    it has not connected yet (connections stay open across steps: the embedded broker's argon2
    check costs ~0.5 s per CONNECT) and prints ``ready`` → a start time → it publishes for
    ``seconds``, waits for every PUBACK and prints the step's figures as JSON. EOF: disconnect."""

    def __init__(self) -> None:
        import paho.mqtt.client as mqtt

        self.mqtt = mqtt
        self.selector = selectors.DefaultSelector()
        self.clients: dict[str, Any] = {}
        self.connacks: dict[str, int] = {}
        self.acked = 0
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read_stdin, daemon=True).start()
        self.last_misc = time.monotonic()

    def _read_stdin(self) -> None:
        for line in sys.stdin:
            self.lines.put(line)
        self.lines.put("")

    def _on_connect(self, _c: Any, name: str, _f: Any, reason: Any, _p: Any) -> None:
        self.connacks[name] = int(getattr(reason, "value", reason))

    def _on_publish(self, *_: Any) -> None:
        self.acked += 1

    def pump(self, timeout: float) -> None:
        for key, events in self.selector.select(timeout):
            client = key.data
            if events & selectors.EVENT_READ:
                client.loop_read()
            if events & selectors.EVENT_WRITE:
                client.loop_write()
            if client.socket() is not None and not client.want_write():
                self.selector.modify(key.fileobj, selectors.EVENT_READ, client)
        if time.monotonic() - self.last_misc > 1.0:
            for client in self.clients.values():
                client.loop_misc()
            self.last_misc = time.monotonic()

    def flush(self, client: Any) -> None:
        if client.want_write():
            self.selector.modify(client.socket(), selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def next_line(self) -> str:
        """The next stdin line, keeping the connections alive (keepalive pings) while waiting."""
        while True:
            try:
                return self.lines.get_nowait()
            except queue.Empty:
                self.pump(0.05)

    def connect(self, benches: list[dict[str, Any]], port: int) -> float:
        from paho.mqtt.enums import CallbackAPIVersion

        started = time.perf_counter()
        for bench in benches:
            if bench["name"] in self.clients:
                continue
            client = self.mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=f"{bench['name']}/load-{os.urandom(3).hex()}",
                protocol=self.mqtt.MQTTv311,
                clean_session=True,
                userdata=bench["name"],
            )
            client.username_pw_set(bench["name"], bench["password"])
            client.max_inflight_messages_set(100)
            client.max_queued_messages_set(0)
            client.on_connect, client.on_publish = self._on_connect, self._on_publish
            client.connect("127.0.0.1", port, keepalive=60)
            self.selector.register(client.socket(), selectors.EVENT_READ, client)
            self.clients[bench["name"]] = client
        deadline = time.monotonic() + 300
        while len(self.connacks) < len(self.clients) and time.monotonic() < deadline:
            self.pump(0.1)
        refused = {name: code for name, code in self.connacks.items() if code != 0}
        if len(self.connacks) < len(self.clients) or refused:
            raise SystemExit(f"benches not connected: {len(self.connacks)}/{len(self.clients)}, refused {refused}")
        return time.perf_counter() - started

    def step(self, plan: dict[str, Any]) -> dict[str, Any]:
        benches = plan["benches"]
        connect_s = self.connect(benches, plan["port"])
        print("ready", flush=True)
        start = float(self.next_line())
        cpu0 = time.process_time()
        period = SAMPLES_PER_BATCH / SAMPLE_HZ
        n = len(benches)
        t0s = [start + index * period / n for index in range(n)]
        t0_utc = [datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%d %H:%M:%S") for t0 in t0s]
        batches = int(plan["seconds"] * SAMPLE_HZ) // SAMPLES_PER_BATCH
        due = [(t0s[index] + (SAMPLES_PER_BATCH - 1) / SAMPLE_HZ, index, 0) for index in range(n)]
        heapq.heapify(due)
        lateness: list[float] = []
        acked0, published = self.acked, 0
        while due:
            now = time.time()
            while due and due[0][0] <= now:
                at, index, seq = heapq.heappop(due)
                bench = benches[index]
                client = self.clients[bench["name"]]
                first = seq * SAMPLES_PER_BATCH
                payload = metrics_payload(
                    bench["run_id"], bench["test_uuid"], seq, first, SAMPLES_PER_BATCH, t0_utc[index]
                )
                client.publish(f"{PREFIX}/benches/{bench['name']}/runs/{bench['run_id']}/metrics", payload, qos=1)
                self.flush(client)
                lateness.append(time.time() - at)
                published += 1
                if seq + 1 < batches:
                    heapq.heappush(due, (at + period, index, seq + 1))
            self.pump(max(0.0, min(0.05, due[0][0] - time.time())) if due else 0.0)
        publish_cpu = time.process_time() - cpu0
        deadline = time.monotonic() + 60
        while self.acked - acked0 < published and time.monotonic() < deadline:
            self.pump(0.05)
        return {
            "benches": n,
            "connect_s_new_benches": round(connect_s, 2),
            "batches_published": published,
            "batches_acknowledged_by_broker": self.acked - acked0,
            "publish_lateness_s": {
                "p50": round(percentile(lateness, 0.5) or 0.0, 4),
                "p99": round(percentile(lateness, 0.99) or 0.0, 4),
                "max": round(max(lateness, default=0.0), 4),
            },
            "cpu_s_while_publishing": round(publish_cpu, 3),
        }

    def serve(self) -> None:
        from fastlims.messaging.schemas import MetricsBatch

        MetricsBatch.model_validate_json(metrics_payload("r", "u", 0, 0, SAMPLES_PER_BATCH, "2024-01-01 00:00:00"))
        while line := self.next_line():
            print(json.dumps(self.step(json.loads(line))), flush=True)
        for client in self.clients.values():
            client.disconnect()


# --- the LIMS side ----------------------------------------------------------------------------------


@dataclass
class Broker:
    kind: str
    port: int
    pid: int
    stop: Any
    lims: tuple[str, str]


def prepare_template(workdir: Path, benches: int) -> tuple[Path, str]:
    """A migrated, seeded LIMS database with one test request and ``benches`` physical benches
    (registry rows and MQTT identities); returns it and the request's test UUID."""
    from sqlalchemy import select
    from tests.catalog_helpers import applicable

    from bench.mqtt import prepare_template as migrated
    from fastlims.benches import registry
    from fastlims.benches.registry import Ratings
    from fastlims.bootstrap import build
    from fastlims.config import Settings
    from fastlims.messaging import identities
    from fastlims.messaging.models import MqttRole, MqttUser
    from fastlims.requests import service as requests
    from fastlims.requests.schemas import TestRequestCreate
    from fastlims.users import service as users

    path = migrated(workdir)
    system = build(Settings(data_dir=workdir, database_url=f"sqlite:///{path}", timezone=LAB_ZONE))
    combo = applicable(system)
    try:
        with system.database.transaction() as session:
            requester = users.create(
                session=session, username="bench-requester", role="requester", password="correct-horse-battery",
                display_name="Bench Requester",
            )  # fmt: skip
            body = TestRequestCreate(
                uut=combo.uut, use_case=combo.use_case, standard=combo.standard, test_name=combo.test_name,
                bench=combo.bench, preferred_date=datetime.now(UTC).date() + timedelta(days=365),
            )  # fmt: skip
            test_uuid = str(
                requests.create(session=session, data=body, requester=requester, zone=system.zone).test_uuid
            )
            ratings = Ratings(max_current_A=100.0, max_voltage_V=10.0, min_voltage_V=0.0)
            for index in range(1, benches + 1):
                registry.add(session=session, name=bench_name(index), kind="physical", ratings=ratings)
            # MQTT identities as ``fastlims mqtt-users add`` stores them, but one argon2 hash for
            # all (hashing takes ~0.5 s each here): every bench has its own user, one password.
            identities.add(session=session, username=bench_name(1), role="bench", password=BENCH_PASSWORD)
            shared = session.scalar(select(MqttUser.password_hash).where(MqttUser.username == bench_name(1)))
            session.add_all(
                MqttUser(username=bench_name(index), role=MqttRole.bench, password_hash=shared)
                for index in range(2, benches + 1)
            )
    finally:
        system.close()
    return path, test_uuid


def start_mosquitto(benches: int) -> Broker:
    """Mosquitto 2 with the embedded broker's ACL policy and every bench's identity (the tests'
    Mosquitto: tests/mqtt_helpers.start_mosquitto)."""
    from tests.mqtt_helpers import mosquitto_binary
    from tests.mqtt_helpers import start_mosquitto as start

    from fastlims.messaging.models import MqttRole

    if mosquitto_binary() is None:
        raise SystemExit("Mosquitto is not installed (Debian package mosquitto)")
    users = {LIMS_EXTERNAL[0]: (LIMS_EXTERNAL[1], MqttRole.lims)} | {
        bench_name(i): (BENCH_PASSWORD, MqttRole.bench) for i in range(1, benches + 1)
    }
    server = start(users, PREFIX)
    return Broker("mosquitto", server.port, server.process.pid, server.stop, LIMS_EXTERNAL)


def start_embedded(database_url: str, workdir: Path) -> Broker:
    from bench.mqtt import start_embedded as start

    broker = start(database_url, workdir)
    return Broker("embedded", broker.port, broker.pid, broker.stop, broker.lims)


class Lims:
    """The real ``BenchGateway`` on the LIMS database, connected to ``broker``."""

    def __init__(self, database_url: str, broker: Broker) -> None:
        from fastlims.benches.gateway.ingest import BenchGateway
        from fastlims.db.engine import Database
        from fastlims.messaging.client import BrokerAddress, paho_client
        from fastlims.messaging.topics import Topics

        self.database = Database(database_url)
        self.subscribed = threading.Event()
        self.stored: list[tuple[float, str, int, int]] = []  # (commit wall time, run, first record, count)

        def connect() -> Any:
            client = paho_client(
                BrokerAddress("127.0.0.1", broker.port), client_id=f"{broker.lims[0]}/gateway-bench",
                username=broker.lims[0], password=broker.lims[1],
            )  # fmt: skip
            client.on_subscribe = lambda *_: self.subscribed.set()
            return client

        self.gateway = BenchGateway(self.database, Topics(PREFIX), connect=connect, notify=lambda *_: None)
        self.gateway.on_stored = self._on_stored
        asyncio.run(self.gateway.start())
        if not self.subscribed.wait(30):
            raise RuntimeError(f"the bench gateway did not subscribe on the {broker.kind} broker")

    def _on_stored(self, batches: list[tuple[Any, float]]) -> None:
        now = time.time()
        self.stored.extend((now, batch.run_id, batch.first_record, batch.count) for batch, _received in batches)

    def close(self) -> None:
        asyncio.run(self.gateway.stop())
        self.database.dispose()


def book_runs(lims: Lims, test_uuid: str, step: str, benches: int) -> list[dict[str, Any]]:
    """One running ``ScheduledRun`` per bench for this ladder step (the workflow is not needed
    for ingest: the gateway only checks that the run is booked on the publishing bench)."""
    from sqlalchemy import select

    from fastlims.requests.models import TestRequest
    from fastlims.runs.lifecycle import RunState
    from fastlims.runs.models import Channel, ScheduledRun
    from fastlims.timeutil import utcnow

    now = utcnow()
    plan = []
    with lims.database.transaction() as session:
        request_id = session.scalar(select(TestRequest.id).where(TestRequest.test_uuid == test_uuid))
        for index in range(1, benches + 1):
            run_id = f"{test_uuid}:{step}-{index:03d}"
            session.add(
                ScheduledRun(
                    run_id=run_id, request_id=request_id, test_uuid=test_uuid, workflow_id=f"bench-{step}",
                    design_run_id=f"{step}-{index:03d}", bench=bench_name(index), bench_kind="physical",
                    start_at=now, end_at=now + timedelta(hours=1), test_start_at=now,
                    idempotency_key=f"bench-{step}:{run_id}", channel=Channel.mqtt.value,
                    state=RunState.running.value, dispatched_at=now, started_at=now,
                )
            )  # fmt: skip
            plan.append(
                {"name": bench_name(index), "password": BENCH_PASSWORD, "run_id": run_id, "test_uuid": test_uuid}
            )
    return plan


def verify(lims: Lims, runs: list[str], records_per_run: int) -> dict[str, Any]:
    """Every run's records 0..n−1 stored exactly once, read back from the database."""
    from sqlalchemy import select

    from fastlims.runs.samples import RunMetricBatch

    with lims.database.transaction() as session:
        rows = session.execute(
            select(RunMetricBatch.run_id, RunMetricBatch.first_record, RunMetricBatch.count).where(
                RunMetricBatch.run_id.in_(runs)
            )
        ).all()
    by_run: dict[str, list[tuple[int, int]]] = {run: [] for run in runs}
    for run_id, first, count in rows:
        by_run[run_id].append((first, count))
    missing = duplicated = 0
    incomplete: list[str] = []
    for run_id, batches in by_run.items():
        expected = 0
        for first, count in sorted(batches):
            if first > expected:
                missing += first - expected
            duplicated += max(0, expected - first)
            expected = max(expected, first + count)
        missing += max(0, records_per_run - expected)
        if expected != records_per_run or len(batches) != records_per_run // SAMPLES_PER_BATCH:
            incomplete.append(run_id)
    return {
        "records_expected": records_per_run * len(runs),
        "records_stored": sum(c for _r, _f, c in rows),
        "records_missing": missing,
        "records_duplicated": duplicated,
        "runs_incomplete": len(incomplete),
        "zero_loss": missing == 0 and duplicated == 0 and not incomplete,
    }


def start_generator() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--generate"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def run_step(
    lims: Lims, broker: Broker, generator: subprocess.Popen[str], test_uuid: str, benches: int, seconds: float
) -> dict[str, Any]:
    step = f"{broker.kind}-{benches}"
    plan = book_runs(lims, test_uuid, step, benches)
    assert generator.stdin is not None and generator.stdout is not None
    generator.stdin.write(json.dumps({"port": broker.port, "seconds": seconds, "benches": plan}) + "\n")
    generator.stdin.flush()
    line = generator.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"generator failed (exit {generator.poll()}): {line}")
    start = time.time() + 0.5
    stored_before = len(lims.stored)
    generator.stdin.write(f"{start!r}\n")
    generator.stdin.flush()
    time.sleep(max(0.0, start - time.time()))
    wall0, lims0, broker0, generator0 = (
        time.perf_counter(),
        time.process_time(),
        cpu_s(broker.pid),
        cpu_s(generator.pid),
    )
    records_per_run = int(seconds * SAMPLE_HZ) // SAMPLES_PER_BATCH * SAMPLES_PER_BATCH
    expected_batches = benches * records_per_run // SAMPLES_PER_BATCH
    window_end = start + records_per_run / SAMPLE_HZ
    time.sleep(max(0.0, window_end - time.time()))
    wall = time.perf_counter() - wall0
    usage = {
        "lims_cpu_s": time.process_time() - lims0,
        "broker_cpu_s": cpu_s(broker.pid) - broker0,
        "generator_cpu_s": cpu_s(generator.pid) - generator0,
    }
    line = generator.stdout.readline()
    if not line:
        raise RuntimeError(f"generator exited {generator.wait()}")
    generated = json.loads(line)
    seen, last_change = -1, time.monotonic()
    while len(lims.stored) - stored_before < expected_batches:
        if len(lims.stored) != seen:
            seen, last_change = len(lims.stored), time.monotonic()
        elif time.monotonic() - last_change > DRAIN_IDLE_S:
            break
        time.sleep(0.05)
    drained_at = time.time()
    period = SAMPLES_PER_BATCH / SAMPLE_HZ
    t0 = {bench["run_id"]: start + index * period / benches for index, bench in enumerate(plan)}
    latencies = [
        committed - (t0[run_id] + (first + j) / SAMPLE_HZ)
        for committed, run_id, first, count in lims.stored[stored_before:]
        if run_id in t0
        for j in range(count)
    ]
    check = verify(lims, list(t0), records_per_run)
    p99 = percentile(latencies, 0.99)
    result = {
        "benches": benches,
        "seconds": seconds,
        "batches_expected": expected_batches,
        "samples_expected": benches * records_per_run,
        **check,
        "latency_s": {
            "p50": round(percentile(latencies, 0.5) or 0.0, 4),
            "p99": round(p99 or 0.0, 4),
            "max": round(max(latencies, default=0.0), 4),
        },
        "ingest_samples_per_s": round(check["records_stored"] / max(1e-9, drained_at - start), 1),
        "offered_samples_per_s": benches * SAMPLE_HZ,
        "offered_messages_per_s": round(benches / period, 1),
        "drain_after_last_sample_s": round(drained_at - window_end, 2),
        "cpu_pct_of_one_core": {
            "lims": round(100 * usage["lims_cpu_s"] / wall, 1),
            "broker": round(100 * usage["broker_cpu_s"] / wall, 1),
            "generator": round(100 * usage["generator_cpu_s"] / wall, 1),
        },
        "load_average_1_min_after": (load_average() or [None])[0],
        "generator": generated,
    }
    result["passed"] = bool(check["zero_loss"] and p99 is not None and p99 < TARGET["p99_s"])
    return result


def bench_broker(
    kind: str, template: Path, test_uuid: str, ladder: list[int], seconds: float, workdir: Path
) -> dict[str, Any]:
    data_dir = workdir / f"data-{kind}"
    data_dir.mkdir()
    database = data_dir / "fastlims.db"
    shutil.copy(template, database)
    url = f"sqlite:///{database}"
    broker = start_embedded(url, workdir) if kind == "embedded" else start_mosquitto(max(ladder))
    steps: list[dict[str, Any]] = []
    try:
        lims = Lims(url, broker)
        generator = start_generator()
        try:
            for benches in ladder:
                result = run_step(lims, broker, generator, test_uuid, benches, seconds)
                steps.append(result)
                print_step(kind, result)
                if not result["passed"]:
                    break
        finally:
            assert generator.stdin is not None
            generator.stdin.close()
            try:
                generator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                generator.kill()
            lims.close()
    finally:
        broker.stop()
    passed = [s for s in steps if s["passed"]]
    best = max(passed, key=lambda s: s["benches"]) if passed else None
    return {
        "steps": steps,
        "max_benches_zero_loss_p99_below_1s": best["benches"] if best else 0,
        "at_max": None
        if best is None
        else {
            k: best[k] for k in ("latency_s", "ingest_samples_per_s", "offered_messages_per_s", "cpu_pct_of_one_core")
        },
        "gateway": {
            "stored_batches": lims.gateway.stored_batches,
            "duplicate_batches_redelivered": lims.gateway.duplicate_batches,
            "refused": lims.gateway.refused,
        },
    }


def print_step(kind: str, r: dict[str, Any]) -> None:
    cpu = r["cpu_pct_of_one_core"]
    print(
        f"{kind:10} {r['benches']:>4} benches  {r['ingest_samples_per_s']:>8.0f} samples/s  "
        f"p50 {r['latency_s']['p50']:.3f} s  p99 {r['latency_s']['p99']:.3f} s  max {r['latency_s']['max']:.3f} s  "
        f"missing {r['records_missing']} dup {r['records_duplicated']}  "
        f"CPU lims {cpu['lims']}% broker {cpu['broker']}% "
        f"generator {cpu['generator']}%  lateness p99 {r['generator']['publish_lateness_s']['p99']} s  "
        f"→ {'pass' if r['passed'] else 'FAIL'}",
        flush=True,
    )


def main(out: Path, ladder: list[int], seconds: float, brokers: list[str]) -> dict[str, Any]:
    import logging

    from bench.mqtt import mosquitto_version

    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "benches",
        "machine": machine_info(
            "amqtt",
            "paho-mqtt",
            "pydantic",
            "SQLAlchemy",
            mosquitto=mosquitto_version() if "mosquitto" in brokers else None,
        ),
        "inputs": {
            "ladder_benches": ladder,
            "seconds_per_step": seconds,
            "sample_rate_hz": SAMPLE_HZ,
            "signals": [TIME_COLUMN[0], *(name for name, _unit in SIGNALS)],
            "samples_per_batch": SAMPLES_PER_BATCH,
            "batches_per_s_per_bench": SAMPLE_HZ / SAMPLES_PER_BATCH,
            "qos": 1,
            "message": "v1 MetricsBatch with record_index, seq, t0_utc on …/benches/{bench}/runs/{run_id}/metrics",
            "database": "SQLite in the LIMS data directory (WAL, synchronous=NORMAL, as fastlims up opens it)",
            "lims": "the real BenchGateway (manual PUBACK after commit, persistent session) in the benchmark process",
            "generator": "one process, N paho clients (one connection and bench identity each) on one selector loop",
            "latency": "commit of the batch that stored a sample − the sample's measured time (t0 + index/10 s)",
            "zero_loss": "every run's records 0..n-1 stored exactly once in RunMetricBatches",
            "pass": "zero loss and p99 < 1 s; the ladder stops at a broker's first failing step",
            "not_exercised": "relay to a DT partner (the request has none) and run events",
            "target": TARGET,
        },
        "brokers": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="fastlims-bench-benches-"))
    try:
        template, test_uuid = prepare_template(workdir, max(ladder))
        for kind in brokers:
            results["brokers"][kind] = bench_broker(kind, template, test_uuid, ladder, seconds, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    mosquitto = results["brokers"].get("mosquitto")
    results["verdict"] = {
        kind: {
            "max_benches": r["max_benches_zero_loss_p99_below_1s"],
            "p99_s_at_max": r["at_max"]["latency_s"]["p99"] if r["at_max"] else None,
        }
        for kind, r in results["brokers"].items()
    }
    results["verdict"]["target_met"] = (
        mosquitto is not None and mosquitto["max_benches_zero_loss_p99_below_1s"] >= TARGET["benches"]
    )
    results["machine"]["load_average_1_5_15_min_after"] = load_average()
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"verdict: {json.dumps(results['verdict'])}\nwrote {out} in {results['total_seconds']} s")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the JSON (default: %(default)s)")
    parser.add_argument("--ladder", default=",".join(map(str, LADDER)), help="bench counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="publishing time per step")
    parser.add_argument("--brokers", default="embedded,mosquitto", help="embedded, mosquitto or both")
    parser.add_argument("--generate", action="store_true", help="internal: the benches (steps on stdin)")
    arguments = parser.parse_args()
    if arguments.generate:
        Generator().serve()
    else:
        main(
            arguments.out,
            [int(x) for x in arguments.ladder.split(",")],
            arguments.seconds,
            [b.strip() for b in arguments.brokers.split(",")],
        )

"""``fastlims bench emulate`` in its own process speaks bench contract v1 on a real broker (the
embedded amqtt and Mosquitto): birth with capabilities, one reply per command id, a capacity run's
events and gap-free metrics, the state checks, and each fault it can show."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fastlims.messaging.schemas import BenchCommand, BenchReply, BenchState, MetricsBatch, RunEvent
from tests.bench_helpers import (
    PREFIX,
    BenchBroker,
    EmulatorProcess,
    capacity_run_file,
    command,
    start_bench_broker,
    start_emulator,
)
from tests.mqtt_helpers import Peer
from tests.services import wait_for

RIG = ("rig-1", "rig-1-password-x")
OTHER = ("rig-2", "rig-2-password-y")
BENCH_TOPICS = f"{PREFIX}/benches/{RIG[0]}"


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[BenchBroker]:
    started = start_bench_broker(str(request.param), tmp_path, sqlite_template, dict([RIG, OTHER]))
    started.env["TMPDIR"] = str(tmp_path)
    yield started
    started.close()


@pytest.fixture
def emulators() -> Iterator[list[EmulatorProcess]]:
    running: list[EmulatorProcess] = []
    yield running
    for emulator in running:
        if emulator.process.poll() is None:
            emulator.process.kill()
            emulator.process.wait()


class Lab:
    """The LIMS's side: sends commands to rig-1 and sorts what the bench publishes."""

    def __init__(self, broker: BenchBroker) -> None:
        self.peer: Peer = broker.lab_peer()
        assert self.peer.subscribe(f"{BENCH_TOPICS}/#") == [1]
        self.seen: list[tuple[str, Any]] = []

    def send(self, message: BenchCommand) -> None:
        self.peer.publish(f"{BENCH_TOPICS}/commands", message.model_dump_json())

    def until(self, predicate: Any, timeout: float = 60) -> dict[str, Any]:
        """Read until ``predicate(topic_tail, message)`` holds; that message."""
        while True:
            topic, message = self.peer.next_message(timeout=timeout)
            tail = topic[len(BENCH_TOPICS) + 1 :]
            self.seen.append((tail, message))
            if predicate(tail, message):
                return dict(message)

    def reply(self, command_id: str) -> BenchReply:
        found = self.until(lambda tail, m: tail == "replies" and m["command_id"] == command_id)
        return BenchReply.model_validate(found)

    def state(self, state: str) -> BenchState:
        return BenchState.model_validate(self.until(lambda tail, m: tail == "state" and m["state"] == state))

    def event(self, event: str) -> RunEvent:
        return RunEvent.model_validate(self.until(lambda tail, m: tail.endswith("/events") and m["event"] == event))

    def of(self, suffix: str) -> list[Any]:
        return [m for tail, m in self.seen if tail.endswith(suffix)]


def emulate(broker: BenchBroker, emulators: list[EmulatorProcess], *arguments: str) -> tuple[Lab, EmulatorProcess]:
    lab = Lab(broker)
    emulator = start_emulator(broker, *RIG, "--speed", "1000", *arguments)
    emulators.append(emulator)
    birth = lab.state("idle")
    assert birth.capabilities is not None and birth.capabilities.contract == "1", emulator.output()
    return lab, emulator


def retained_state(broker: BenchBroker) -> dict[str, Any]:
    """The retained state as an independent client sees it: mosquitto_sub, one message."""
    user, password = broker.lab_identity
    result = subprocess.run(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", user, "-P", password, "-i", f"{user}/sub"]
        + ["-t", f"{BENCH_TOPICS}/state", "-C", "1", "-W", "20", "-q", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_a_capacity_run_on_the_emulator_process(broker: BenchBroker, emulators: list[EmulatorProcess]) -> None:
    lab, emulator = emulate(broker, emulators)
    retained = BenchState.model_validate(retained_state(broker))
    assert retained.state == "idle" and retained.capabilities is not None
    assert (retained.capabilities.max_current_A, retained.capabilities.max_voltage_V) == (50.0, 5.0)
    assert "cc" in retained.capabilities.step_modes and retained.capabilities.software.startswith("fastlims")
    run_id = "3f2a9c1e-8d4b-4e59-9a31-6c0f1d2b7e44.run-001"
    run = capacity_run_file()
    load = command("load", run_id, "idle", run=run, factors={"SOC0": 0.5})
    lab.send(load)
    assert lab.reply(load.command_id).result == "accepted"
    start = command("start", run_id, "loaded", run=run)
    lab.send(start)
    first = lab.reply(start.command_id)
    assert (first.result, first.state) == ("accepted", "running")
    lab.send(start)  # the LIMS's retry: the same command id
    again = lab.reply(start.command_id)
    assert again == first  # the same reply, message id and all
    wrong = command("pause", run_id, "idle")
    lab.send(wrong)
    refused = lab.reply(wrong.command_id)
    assert refused.result == "rejected" and refused.reason is not None
    assert "'idle'" in refused.reason and "'running'" in refused.reason
    completed = lab.event("completed")
    lab.state("idle")
    events = [RunEvent.model_validate(m) for m in lab.of("/events")]
    kinds = [e.event for e in events if e.event != "progress"]
    assert kinds == ["started", "step_started", "step_ended", "step_started", "step_ended", "completed"]
    assert any(e.event == "progress" for e in events)
    discharge = [e for e in events if e.event == "step_ended"][1]
    assert discharge.step_index == 1 and discharge.charge_Ah is not None and discharge.energy_Wh is not None
    assert discharge.charge_Ah == pytest.approx(-2.5, rel=0.05) and discharge.energy_Wh < 0  # half of 5 Ah, out
    batches = sorted((MetricsBatch.model_validate(m) for m in lab.of("/metrics")), key=lambda b: b.seq)
    assert [b.seq for b in batches] == list(range(len(batches)))
    expected = 0
    for batch in batches:
        assert batch.record_index == expected  # numbered from 0 without gaps or repeats
        expected += len(batch.timestamps)
    assert completed.record_index == expected - 1
    current = [v for b in batches for v in b.signals["Current / A"].values]
    voltage = [v for b in batches for v in b.signals["Voltage / V"].values]
    step = [v for b in batches for v in b.signals["Step ID"].values]
    discharging = [i for i, s in enumerate(step) if s == 1]
    assert discharging and all(current[i] == pytest.approx(-5.0 / 3) for i in discharging)
    assert voltage[-1] == pytest.approx(2.5, abs=0.01) and min(voltage) > 2.4  # at the cut-off, not 0 V
    assert batches[0].signals["Voltage / V"].unit == "V"
    assert len(lab.of("replies")) == 4 and len([e for e in events if e.event == "started"]) == 1
    assert emulator.terminate() == 0
    offline = lab.state("offline")
    assert offline.capabilities is not None and retained_state(broker)["state"] == "offline"
    assert RIG[1] not in emulator.output()  # the password is never logged


def test_a_bench_that_never_answers(broker: BenchBroker, emulators: list[EmulatorProcess]) -> None:
    lab, emulator = emulate(broker, emulators, "--fault", "never-answer")
    start = command("start", "r.run-001", "idle", run=capacity_run_file())
    lab.send(start)
    wait_for(lambda: f"command {start.command_id} ignored" in emulator.output(), 20, "the command to be ignored")
    assert emulator.terminate() == 0
    lab.state("offline")  # its last message; nothing about the command came before it
    assert lab.of("replies") == [] and lab.of("/events") == []


def test_a_bench_that_rejects(broker: BenchBroker, emulators: list[EmulatorProcess]) -> None:
    lab, _emulator = emulate(broker, emulators, "--fault", "reject")
    start = command("start", "r.run-001", "idle", run=capacity_run_file())
    lab.send(start)
    reply = lab.reply(start.command_id)
    assert (reply.result, reply.state) == ("rejected", "idle")
    assert reply.reason is not None and "reject every load and start" in reply.reason


def test_a_bench_that_goes_offline_mid_run_leaves_its_will(
    broker: BenchBroker, emulators: list[EmulatorProcess]
) -> None:
    lab, emulator = emulate(broker, emulators, "--fault", "offline-after=1")
    start = command("start", "r.run-001", "idle", run=capacity_run_file())
    lab.send(start)
    assert lab.reply(start.command_id).result == "accepted"
    will = lab.state("offline")
    assert will.capabilities is not None and will.reason is not None and "last will" in will.reason
    assert emulator.process.wait(timeout=20) == 3
    assert lab.of("/events")[-1]["event"] != "completed"  # it left mid-run
    retained = retained_state(broker)
    assert (retained["state"], retained["message_id"]) == ("offline", will.message_id)


def test_a_tripped_safety_limit_is_reported_then_the_run_fails(
    broker: BenchBroker, emulators: list[EmulatorProcess]
) -> None:
    lab, _emulator = emulate(broker, emulators, "--fault", "trip-safety")
    start = command("start", "r.run-001", "idle", run=capacity_run_file())
    lab.send(start)
    assert lab.reply(start.command_id).result == "accepted"
    tripped = lab.event("safety_tripped")
    assert tripped.limit == "min_voltage_V" and tripped.value is not None and tripped.value < 3.435
    assert tripped.test_time_s is not None and tripped.test_time_s > 3600  # after the hour's rest
    assert tripped.reason is not None and "min_voltage_V" in tripped.reason
    failed = lab.event("failed")
    assert failed.reason == tripped.reason
    lab.state("idle")


def test_a_bench_speaks_only_under_its_own_name(broker: BenchBroker) -> None:
    lab = broker.lab_peer()
    assert lab.subscribe(f"{PREFIX}/benches/+/#") == [1]
    reply = {"message_id": "x1", "command_id": "c1", "result": "accepted", "state": "idle", "at": "2027-03-01 08:00:00"}
    for forbidden in (f"{PREFIX}/benches/{OTHER[0]}/replies", f"{PREFIX}/benches/{OTHER[0]}/state"):
        intruder = broker.peer(*RIG)  # one connection each: Mosquitto 2 disconnects the offender
        assert intruder.connect() == 0
        intruder.publish(forbidden, reply)
    barrier = broker.peer(*RIG)
    assert barrier.connect() == 0
    barrier.publish(f"{BENCH_TOPICS}/replies", {**reply, "message_id": "x2"})
    topic, message = lab.next_message()
    assert (topic, message["message_id"]) == (f"{BENCH_TOPICS}/replies", "x2")
    assert lab.received.empty()

"""Bench contract v1 as data: bad commands and replies are refused naming what is wrong, a bench
takes each command only in its states and answers a command id once, and the emulator's fault
options parse or say what they accept."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from fastlims.benches.emulator.cell import EmulatedUut
from fastlims.benches.emulator.driver import EmulatorDriver
from fastlims.benches.emulator.protocol import Fault, ReplyBook, parse_fault, refusal, tightened
from fastlims.benches.emulator.runner import EmulatedRun
from fastlims.messaging.schemas import BenchCommand, BenchReply, BenchState, MetricsBatch, RunEvent, RunFile
from tests.unit.benches.test_emulator import BENCH, CAPACITY, Clock, run_file

GOOD = {
    "command_id": "c-1",
    "command": "abort",
    "run_id": "u.run-001",
    "test_UUID": "u",
    "expected_state": "running",
}


def test_a_command_without_its_run_file_or_with_an_unknown_name_is_refused_by_name() -> None:
    assert BenchCommand.model_validate(GOOD).contract == "1"
    with pytest.raises(ValidationError, match="command 'start' needs run_file"):
        BenchCommand.model_validate({**GOOD, "command": "start", "expected_state": "idle"})
    with pytest.raises(ValidationError, match="command\n.*Input should be 'load', 'start', 'pause'"):
        BenchCommand.model_validate({**GOOD, "command": "launch"})
    with pytest.raises(ValidationError, match="expected_state\n"):
        BenchCommand.model_validate({**GOOD, "expected_state": "busy"})
    with pytest.raises(ValidationError, match="parameters\n.*Extra inputs are not permitted"):
        BenchCommand.model_validate({**GOOD, "parameters": {}})
    with pytest.raises(ValidationError, match="run_id\n.*should match pattern"):
        BenchCommand.model_validate({**GOOD, "run_id": "a/b"})


def test_the_run_file_travels_whole_and_a_broken_one_is_refused() -> None:
    run = run_file(CAPACITY)
    carried = RunFile.of(run)
    assert carried.run_procedure() == run
    document = json.loads(run.to_json())
    document["uut_ratings"]["max_voltage_V"] = 1.0  # below its min_voltage_V
    with pytest.raises(ValidationError, match="not a runnable run file: RatingsError: .*MaxVoltageV 1.0"):
        RunFile.model_validate(document)
    command = BenchCommand.model_validate({**GOOD, "command": "start", "expected_state": "idle", "run_file": carried})
    assert BenchCommand.model_validate_json(command.model_dump_json()) == command


def test_a_rejected_reply_says_why() -> None:
    base = {"command_id": "c-1", "command": "start", "run_id": "r", "state": "idle", "at": "2027-03-01 08:00:00"}
    assert BenchReply.model_validate({**base, "result": "accepted"}).reason is None
    with pytest.raises(ValidationError, match="a rejected reply needs a reason"):
        BenchReply.model_validate({**base, "result": "rejected"})


def test_virtual_runs_events_and_metrics_stay_valid_and_the_new_fields_are_optional() -> None:
    RunEvent(run_id="r", test_UUID="u", event="cancelled", at="2027-03-01 08:00:00")
    tripped = RunEvent(
        run_id="r", test_UUID="u", event="safety_tripped", at="2027-03-01 08:00:00", limit="max_voltage_V", value=4.3
    )
    assert tripped.record_index is None
    batch = MetricsBatch(run_id="r", test_UUID="u", seq=0, timestamps=[0.0], signals={})
    assert batch.record_index is None
    with pytest.raises(ValidationError, match="record_index"):
        MetricsBatch(run_id="r", test_UUID="u", seq=0, record_index=-1, timestamps=[0.0], signals={})
    state = BenchState(bench="rig-1", state="offline", since="2027-03-01 08:00:00")
    assert state.capabilities is None


def test_a_bench_takes_a_command_only_in_its_states_and_for_its_run() -> None:
    assert refusal(command="start", state="idle", expected_state="idle", bench_run=None, run_id="r1") is None
    assert refusal(command="start", state="loaded", expected_state="loaded", bench_run="r1", run_id="r1") is None
    wrong = refusal(command="pause", state="running", expected_state="idle", bench_run="r1", run_id="r1")
    assert wrong == "the LIMS expected the bench in state 'idle' but it is 'running'"
    assert refusal(command="resume", state="running", expected_state="running", bench_run="r1", run_id="r1") == (
        "resume is taken in state 'paused', the bench is 'running'"
    )
    other = refusal(command="abort", state="running", expected_state="running", bench_run="r1", run_id="r2")
    assert other == "run 'r2' is not on this bench (it holds run 'r1')"


def test_a_command_id_is_answered_once_and_the_book_is_bounded() -> None:
    book: ReplyBook[str] = ReplyBook(size=2)
    assert book.get("a") is None
    book.remember("a", "accepted a")
    assert book.get("a") == "accepted a"  # a retry finds the same reply
    book.remember("b", "accepted b")
    book.remember("c", "accepted c")
    assert (book.get("a"), book.get("b"), book.get("c")) == (None, "accepted b", "accepted c")


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("never-answer", Fault("never-answer")),
        ("reject", Fault("reject")),
        ("trip-safety", Fault("trip-safety")),
        ("offline-after=2.5", Fault("offline-after", 2.5)),
        ("die-after=0", Fault("die-after", 0.0)),
    ],
)
def test_fault_options_parse(text: str, fault: Fault) -> None:
    assert parse_fault(text) == fault


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("explode", "is not one of never-answer, reject"),
        ("offline-after", "offline-after needs a number of seconds, e.g. offline-after=5"),
        ("die-after=soon", "die-after needs a number of seconds"),
        ("die-after=-1", "the seconds must be a number >= 0"),
        ("reject=3", "is not one of"),
    ],
)
def test_a_bad_fault_option_says_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault(text)


def test_trip_safety_narrows_the_voltage_window_so_the_run_trips() -> None:
    run = tightened(run_file(CAPACITY))
    assert (run.procedure.safety.min_voltage_V, run.procedure.safety.max_voltage_V) == pytest.approx((3.435, 3.724))
    emulated = EmulatedRun(run, EmulatedUut.from_ratings(run.ratings, soc=0.5))
    emulated.advance(1e6, max_rows=10**6)
    assert emulated.end_cause == "safety_limit" and "max_voltage_V = 3.724 V" in (emulated.reason or "")


def test_the_rows_up_to_a_pause_or_an_abort_are_still_read() -> None:
    clock = Clock()
    driver = EmulatorDriver(BENCH, speed=100.0, clock=clock)
    driver.load("u.run-001", run_file(CAPACITY))
    driver.start()
    clock.now = 5.0
    first = driver.read_samples()
    clock.now = 8.0
    driver.pause()
    held = driver.read_samples()
    assert first is not None and held is not None
    assert held.first_index == first.first_index + first.count and held.count == 300  # 3 s at 100x, 1 s samples
    driver.resume()
    clock.now = 9.0
    driver.abort("operator abort")
    last = driver.read_samples()
    assert last is not None and last.first_index == held.first_index + held.count
    assert last.rows["Test Time / s"][-1] == 901.0  # 100 test seconds after the resume at 801 s
    assert driver.read_samples() is None

"""The bench emulator runs a run file's procedure on a UUT model built from its ratings: the
physics a battery engineer checks (capacity, the cut-off, a safety trip and its words), the
rows numbered without gaps, and the driver's states at a speed factor on a test clock."""

from __future__ import annotations

import pytest

from fastlims.benches.emulator.cell import EmulatedUut
from fastlims.benches.emulator.driver import Capabilities, DriverError, EmulatorDriver
from fastlims.benches.emulator.runner import COLUMNS, EmulatedRun
from fastlims.procedures.estimate import expected_duration_s
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.resolve import resolve
from fastlims.procedures.runfile import RunProcedure
from fastlims.procedures.text import parse_text
from tests.unit.procedures.uuts import REFERENCE_CELL

CELL = REFERENCE_CELL  # the reference battery cell's own ratings (5 Ah, OCV 2.5-4.2 V)
MODULE = UutRatings(
    **{**CELL.__dict__, "code": "Gen3b - Module", "format": "module", "series_count": 12, "parallel_count": 4}
    | {"nominal_capacity_Ah": 20.0, "nominal_voltage_V": 43.8, "min_voltage_V": 30.0, "max_voltage_V": 50.4}
    | {"max_charge_current_A": 20.0, "max_discharge_current_A": 60.0, "max_pulse_current_A": 120.0}
)
CAPACITY = "Charge at C/3 until 4.2 V\nHold at 4.2 V until C/20\nRest for 1 hour\nDischarge at C/3 until 2.5 V\n"
BENCH = Capabilities(8, 50.0, 0.0, 5.0, True, ("rest", "cc", "cv"), 10.0, "emulator test")


def run_file(text: str, ratings: UutRatings = CELL) -> RunProcedure:
    parsed = parse_text(text)
    resolved = resolve(parsed.procedure, ratings, lines=parsed.lines)
    return RunProcedure(resolved, ratings, expected_duration_s(resolved, ratings))


def run_to_end(run: EmulatedRun, hours: float = 24.0):  # type: ignore[no-untyped-def]
    rows: dict[str, list[float]] = {name: [] for name in COLUMNS}
    events = []
    while not run.ended:
        chunk = run.advance(run.t + 600.0)
        assert chunk.first_index == len(rows[COLUMNS[0]])  # numbered without gaps
        for name in COLUMNS:
            rows[name] += chunk.rows[name]
        events += chunk.events
        assert run.t < hours * 3600, "the run did not end"
    return rows, events


def test_a_capacity_test_discharges_to_the_cut_off_and_measures_the_capacity() -> None:
    uut = EmulatedUut.from_ratings(CELL, soc=0.5)
    run = EmulatedRun(run_file(CAPACITY), uut)
    rows, events = run_to_end(run)
    assert run.end_cause == "procedure_complete"
    ended = [e.details for e in events if e.kind == "step_ended"]
    assert [e["step_id"] for e in ended] == [0, 1, 2, 3]
    discharged = ended[3]["discharge_Ah"]
    assert discharged == pytest.approx(5.0, rel=0.02)  # C/3 to 2.5 V takes nearly the rated capacity
    net_Ah = rows["Charge Capacity / Ah"][-1] - rows["Discharge Capacity / Ah"][-1]
    assert uut.soc == pytest.approx(0.5 + net_Ah / 5.0, abs=1e-9)  # the counters are the coulombs the UUT moved
    assert rows["Voltage / V"][-1] == pytest.approx(2.5, abs=0.01)  # it stopped at the cut-off
    assert max(rows["Current / A"]) == pytest.approx(5.0 / 3) and min(rows["Current / A"]) == pytest.approx(-5.0 / 3)
    assert rows["Discharge Capacity / Ah"][-1] == pytest.approx(discharged, rel=1e-9)
    assert [e.kind for e in events][-1] == "completed"


def test_a_charge_without_a_cut_off_trips_the_voltage_limit_and_says_so() -> None:
    run = EmulatedRun(run_file("Charge at 1C for 2 hours\n"), EmulatedUut.from_ratings(CELL, soc=0.5))
    rows, events = run_to_end(run)
    assert run.end_cause == "safety_limit"
    tripped = next(e for e in events if e.kind == "safety_tripped")
    assert tripped.details["limit"] == "max_voltage_V" and tripped.details["value"] > 4.22
    assert run.reason is not None and run.reason.startswith("safety limit max_voltage_V = 4.22 V: voltage ")
    assert f"at test time {tripped.test_time_s:.10g} s" in run.reason
    assert [e.kind for e in events][-2:] == ["safety_tripped", "failed"]
    assert rows["Test Time / s"][-1] == tripped.test_time_s < 3600.0


def test_a_module_is_the_cell_scaled_by_series_and_parallel() -> None:
    uut = EmulatedUut.from_ratings(MODULE, soc=0.0)
    assert uut.ocv() == pytest.approx(30.0)
    uut.soc = 1.0
    assert uut.ocv() == pytest.approx(50.4)
    cell = EmulatedUut.from_ratings(CELL)
    assert uut.r0_ohm == pytest.approx(cell.r0_ohm * 12 / 4)
    uut.hold(-20.0, 3600.0)  # 1C for an hour empties the 20 Ah module
    assert uut.soc == pytest.approx(0.0, abs=1e-12)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_driver_runs_at_its_speed_pauses_resumes_and_refuses_what_its_state_forbids() -> None:
    clock = Clock()
    driver = EmulatorDriver(BENCH, speed=100.0, clock=clock)
    assert driver.connect() == BENCH
    with pytest.raises(DriverError, match="start needs a loaded run, the bench is idle"):
        driver.start()
    driver.load("u.run-001", run_file(CAPACITY))
    driver.start()
    clock.now = 10.0  # ten wall seconds at 100x: a thousand test seconds
    chunk = driver.read_samples()
    assert chunk is not None and driver.run is not None and driver.run.t == pytest.approx(1001.0)
    driver.pause()
    clock.now = 1000.0  # paused: the test clock stands still
    assert driver.read_samples() is None and driver.run.t == pytest.approx(1001.0)
    with pytest.raises(DriverError, match="busy with run u.run-001"):
        driver.load("u.run-002", run_file(CAPACITY))
    driver.resume()
    clock.now = 1001.0
    driver.read_samples()
    assert driver.run.t == pytest.approx(1102.0)
    driver.abort("operator abort")
    assert driver.state == "ended" and driver.run.end_cause == "error" and driver.run.reason == "operator abort"
    with pytest.raises(DriverError, match="resume needs a paused run, the bench is ended"):
        driver.resume()


def test_a_bench_refuses_a_run_whose_safety_window_it_cannot_measure() -> None:
    driver = EmulatorDriver(BENCH, speed=1.0, clock=Clock())
    with pytest.raises(DriverError, match="the run's safety window 29.76-50.64 V is outside the bench's 0-5 V"):
        driver.load("m.run-001", run_file("Discharge at C/3 until 30 V\n", MODULE))
    with pytest.raises(ValueError, match="speed must be in"):
        EmulatorDriver(BENCH, speed=5000.0)

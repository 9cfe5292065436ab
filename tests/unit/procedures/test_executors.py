"""The two executors of a program (Python reference, C controller) on an analytic cell: the same
samples, and the physics a battery engineer checks (capacity, CV regulation, taper, safety)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastlims.procedures.program import Code, Limit, Mode, Op, Program, ProgramError, Safety, Sampling, Until, check
from tests.unit.procedures.cell_model import Cell, run_both

CAPACITY = 5.0


def leaf(mode: Mode, value: float = 0.0, *until: tuple[Until, float], step_id: int, **kw: object) -> Op:
    return Op(mode, value, until=tuple(until), step_id=step_id, **kw)  # type: ignore[arg-type]


def test_constant_current_discharge_measures_the_capacity_between_the_limits() -> None:
    # Linear OCV 3.0-4.2 V, no resistance: the cut-off at 3.0 V is SOC 0 exactly.
    cell = Cell(soc=1.0, r0=0.0, r1=0.0, c1=1.0)
    program = Program(ops=(leaf(Mode.CC, -CAPACITY / 3, (Until.VOLTAGE_BELOW, 3.0), step_id=0),))
    trace = run_both(program, cell)
    assert trace.code is Code.COMPLETE
    discharged = trace.column("Discharge Capacity / Ah")[-1]
    assert discharged == pytest.approx(CAPACITY, rel=1e-3)
    assert trace.column("Charge Capacity / Ah")[-1] == 0.0
    # energy of a linear discharge from 4.2 to 3.0 V: capacity x mean voltage
    assert trace.column("Discharge Energy / Wh")[-1] == pytest.approx(CAPACITY * 3.6, rel=2e-3)


def test_cccv_charge_holds_the_voltage_within_5_mV_and_tapers() -> None:
    cell = Cell(soc=0.2)
    program = Program(
        ops=(
            leaf(Mode.CC, CAPACITY / 2, (Until.VOLTAGE_ABOVE, 4.1), step_id=0),
            leaf(Mode.CV, 4.1, (Until.CURRENT_BELOW, CAPACITY / 20), step_id=1, limits=(CAPACITY / 2, 0.0)),
            leaf(Mode.REST, 0.0, (Until.TIME, 600.0), step_id=2),
        ),
        safety=Safety(max_charge_current_A=10, max_discharge_current_A=10),
    )
    trace = run_both(program, cell)
    assert trace.code is Code.COMPLETE
    step = trace.column("Step ID")
    voltage = trace.column("Voltage / V")
    current = trace.column("Current / A")
    cv = step == 1
    assert cv.sum() > 100
    assert np.abs(voltage[cv][2:] - 4.1).max() < 0.005
    assert current[cv][-1] <= CAPACITY / 20 + 1e-9
    assert np.all(np.diff(current[cv][2:]) <= 1e-9)  # a taper: the current only falls
    rest = step == 2
    assert rest.sum() == 600  # "for 600 s": exactly 600 samples of current


def test_step_counts_cycles_and_time_terminations_are_exact() -> None:
    ops = (
        Op(Mode.LOOP_BEGIN, 3, cycle=True),
        leaf(Mode.CC, -1.0, (Until.TIME, 10.0), step_id=0),
        leaf(Mode.REST, 0.0, (Until.TIME, 5.0), step_id=1),
        Op(Mode.LOOP_END, target=0),
    )
    trace = run_both(Program(ops=ops), Cell(soc=0.8))
    assert trace.code is Code.COMPLETE
    assert len(trace.samples) == 1 + 3 * 15  # the opening sample at open circuit, then the steps
    steps = trace.column("Step Count / 1")
    cycles = trace.column("Cycle Count / 1")
    assert steps[0] == 0 and trace.column("Step ID")[0] == -1 and trace.column("Current / A")[0] == 0
    assert list(np.unique(steps)) == [0, 1, 2, 3, 4, 5, 6]
    assert list(np.unique(cycles)) == [0, 1, 2, 3]
    assert trace.column("Discharge Capacity / Ah")[-1] == pytest.approx(3 * 10 / 3600.0)


def test_a_safety_limit_trips_after_its_delay_and_says_which() -> None:
    # Charging a nearly full cell at 2C: the voltage passes 4.25 V and stays above.
    cell = Cell(soc=0.95)
    program = Program(
        ops=(leaf(Mode.CC, 2 * CAPACITY, (Until.TIME, 3600.0), step_id=0),),
        safety=Safety(max_voltage_V=4.25, delay_s=2.0),
    )
    trace = run_both(program, cell)
    assert trace.code is Code.SAFETY
    voltage = trace.column("Voltage / V")
    first_above = int(np.argmax(voltage > 4.25))
    assert len(trace.samples) - 1 == first_above + 2  # held for 2 s at 1 s samples
    from fastlims.procedures.interpreter import Interpreter

    interpreter = Interpreter(program)
    interpreter.begin(0.0, 1.0)
    for sample_index, sample in enumerate(trace.samples):
        row = trace.native_rows[sample_index]
        result = interpreter.sample(row[0], row[1], row[2])
    assert result.code is Code.SAFETY
    assert interpreter.trip is not None and interpreter.trip.limit is Limit.MAX_VOLTAGE
    assert interpreter.trip.held_s == pytest.approx(2.0)


def test_a_voltage_cutoff_equal_to_the_safety_limit_does_not_trip_it() -> None:
    """The sample that crosses the cut-off also crosses the limit; the next step (a rest) relaxes
    the voltage within the delay, as on a real cycler."""
    cell = Cell(soc=0.3)
    program = Program(
        ops=(
            leaf(Mode.CC, -CAPACITY, (Until.VOLTAGE_BELOW, 3.2), step_id=0),
            leaf(Mode.REST, 0.0, (Until.TIME, 60.0), step_id=1),
        ),
        safety=Safety(min_voltage_V=3.2, delay_s=1.0),
    )
    trace = run_both(program, cell)
    assert trace.code is Code.COMPLETE


def test_constant_power_discharge_holds_the_power() -> None:
    cell = Cell(soc=0.9)
    program = Program(ops=(leaf(Mode.CP, -10.0, (Until.VOLTAGE_BELOW, 3.4), step_id=0),))
    trace = run_both(program, cell)
    power = trace.column("Current / A")[2:] * trace.column("Voltage / V")[2:]
    assert np.abs(power + 10.0).max() < 0.05  # one sample of latency on a slowly falling voltage


def test_a_current_profile_is_followed_and_ends_at_its_last_point() -> None:
    table = np.array([[0.0, -2.0], [10.0, 1.0], [20.0, -3.0]])
    op = Op(Mode.PROFILE_CURRENT, profile=(0, 3), until=((Until.TIME, 20.0),), step_id=0)
    trace = run_both(Program(ops=(op,), profile=table), Cell())
    current = trace.column("Current / A")[1:]  # after the opening sample
    assert list(current[:3]) == [-2.0, -2.0, -2.0]
    assert current[10] == 1.0
    assert len(current) == 20


def test_an_external_step_cannot_run_on_a_virtual_bench() -> None:
    op = Op(Mode.EXTERNAL, until=((Until.TIME, 60.0),), step_id=0)
    trace = run_both(Program(ops=(op,)), Cell())
    assert trace.code is Code.EXTERNAL


def test_check_names_what_is_wrong() -> None:
    with pytest.raises(ProgramError, match="open-ended step needs a termination"):
        check(Program(ops=(Op(Mode.CC, -1.0, step_id=0),)))
    with pytest.raises(ProgramError, match="not closed"):
        check(Program(ops=(Op(Mode.LOOP_BEGIN, 2), leaf(Mode.REST, 0, (Until.TIME, 1), step_id=0))))
    with pytest.raises(ProgramError, match="whole count"):
        rest = leaf(Mode.REST, 0, (Until.TIME, 1), step_id=0)
        check(Program(ops=(Op(Mode.LOOP_BEGIN, 0), rest, Op(Mode.LOOP_END, target=0))))


# --- the two executors agree on random programs ------------------------------------------------------

_UNTIL = st.sampled_from(
    [
        (Until.TIME, st.floats(1, 50)),
        (Until.VOLTAGE_ABOVE, st.floats(3.6, 4.3)),
        (Until.VOLTAGE_BELOW, st.floats(2.9, 3.8)),
        (Until.CURRENT_BELOW, st.floats(0.05, 2.0)),
        (Until.CHARGE, st.floats(0.001, 0.05)),
        (Until.TEMPERATURE_ABOVE, st.floats(25.5, 40)),
    ]
).flatmap(lambda pair: pair[1].map(lambda v: (pair[0], v)))


@st.composite
def programs(draw: st.DrawFn) -> Program:
    ops: list[Op] = []
    leaves = 0

    def add_leaf() -> None:
        nonlocal leaves
        mode = draw(st.sampled_from([Mode.REST, Mode.CC, Mode.CV, Mode.CP, Mode.AMBIENT]))
        value = {
            Mode.REST: 0.0,
            Mode.CC: draw(st.floats(-10, 10)),
            Mode.CV: draw(st.floats(3.3, 4.2)),
            Mode.CP: draw(st.floats(-30, 30)),
            Mode.AMBIENT: 0.0,
        }[mode]
        until = draw(st.lists(_UNTIL, min_size=1, max_size=3))
        until.append((Until.TIME, draw(st.floats(1, 120))))  # every random step ends
        ambient = draw(st.floats(-10, 45)) if mode is Mode.AMBIENT else math.nan
        ops.append(Op(mode, value, ambient=ambient, until=tuple(until), step_id=leaves, limits=(8.0, 8.0)))
        leaves += 1

    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            begin = len(ops)
            ops.append(Op(Mode.LOOP_BEGIN, draw(st.integers(1, 3)), cycle=draw(st.booleans())))
            for _ in range(draw(st.integers(1, 3))):
                add_leaf()
            ops.append(Op(Mode.LOOP_END, target=begin))
        else:
            add_leaf()
    safety = Safety(
        max_voltage_V=draw(st.floats(4.0, 5.0)),
        min_voltage_V=draw(st.floats(2.5, 3.2)),
        max_charge_current_A=12.0,
        max_discharge_current_A=12.0,
        max_temperature_C=draw(st.floats(30, 80)),
        delay_s=draw(st.sampled_from([0.0, 1.0, 3.0])),
    )
    sampling = Sampling(
        period_s=draw(st.sampled_from([1.0, 5.0])), voltage_delta_V=draw(st.sampled_from([math.inf, 0.01]))
    )
    return Program(ops=tuple(ops), safety=safety, sampling=sampling)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.floats(0.05, 0.95), st.sampled_from([0.5, 1.0, 2.0]))
def test_the_c_controller_and_the_reference_agree_sample_by_sample(program: Program, soc: float, tick: float) -> None:
    trace = run_both(program, Cell(soc=soc), tick=tick, limit=100_000)
    names = (
        "Step Count / 1",
        "Cycle Count / 1",
        "Step ID",
        "Charge Capacity / Ah",
        "Discharge Capacity / Ah",
        "Charge Energy / Wh",
        "Discharge Energy / Wh",
        "record",
        "Current / A",
    )
    for name in names:
        native = trace.column(name)
        reference = np.array([_field(sample, name) for sample in trace.samples])
        np.testing.assert_allclose(native, reference, rtol=1e-12, atol=1e-12, err_msg=name)


def _field(sample: object, name: str) -> float:
    attribute = {
        "Step Count / 1": "step_count",
        "Cycle Count / 1": "cycle_count",
        "Step ID": "step_id",
        "Charge Capacity / Ah": "charge_Ah",
        "Discharge Capacity / Ah": "discharge_Ah",
        "Charge Energy / Wh": "charge_Wh",
        "Discharge Energy / Wh": "discharge_Wh",
        "record": "record",
        "Current / A": "current",
    }[name]
    return float(getattr(sample, attribute))

"""A resolved procedure compiles to the program the executors run."""

from __future__ import annotations

import math

import pytest

from fastlims.procedures.compiler import compile_procedure
from fastlims.procedures.model import ResolvedProcedure
from fastlims.procedures.program import Code, Mode, Until
from tests.unit.procedures.cell_model import Cell, run_both

LIMITS = {"charge_limit_A": 5.0, "discharge_limit_A": 10.0}


def resolved(steps: list[dict[str, object]], **safety: float) -> ResolvedProcedure:
    limits = {
        "max_voltage_V": 4.2,
        "min_voltage_V": 3.0,
        "max_charge_current_A": 5.0,
        "max_discharge_current_A": 10.0,
        "max_temperature_C": 60.0,
        "min_temperature_C": -20.0,
        "delay_s": 1.0,
        **safety,
    }
    return ResolvedProcedure.model_validate(
        {"name": "t", "uut": "cell", "steps": steps, "safety": limits, "sampling": {"period_s": 1.0}}
    )


def test_every_step_type_compiles_in_document_order() -> None:
    procedure = resolved(
        [
            {"type": "ambient", "id": 0, "path": "steps[0]", "temperature_C": 25.0, "until": []},
            {
                "type": "repeat", "path": "steps[1]", "count": 2, "cycle": True,
                "steps": [
                    {"type": "cc", "id": 1, "path": "steps[1].steps[0]", "current_A": 2.5,
                     "until": [{"kind": "voltage_above_V", "value": 4.1}]},
                    {"type": "cv", "id": 2, "path": "steps[1].steps[1]", "voltage_V": 4.1, **LIMITS,
                     "until": [{"kind": "current_below_A", "value": 0.25}]},
                    {"type": "pulse", "id": 3, "path": "steps[1].steps[2]", "current_A": -10.0, "duration_s": 10.0},
                ],
            },
            {"type": "profile", "id": 4, "path": "steps[2]", "quantity": "current", "interpolation": "linear", **LIMITS,
             "points": [[0, -1.0], [30, 1.0]], "until": [{"kind": "voltage_below_V", "value": 3.0}]},
            {"type": "external", "id": 5, "path": "steps[3]", "action": "vibration", "description": "",
             "duration_s": 60.0},
        ]
    )  # fmt: skip
    program = compile_procedure(procedure)
    modes = [op.mode for op in program.ops]
    assert modes == [
        Mode.AMBIENT, Mode.LOOP_BEGIN, Mode.CC, Mode.CV, Mode.CC, Mode.LOOP_END, Mode.PROFILE_CURRENT, Mode.EXTERNAL,
    ]  # fmt: skip
    assert program.ops[1].value == 2 and program.ops[1].cycle
    assert program.ops[5].target == 1
    assert program.ops[3].limits == (5.0, 10.0)
    assert program.ops[4].until == ((Until.TIME, 10.0),)
    assert program.ops[6].until == ((Until.VOLTAGE_BELOW, 3.0), (Until.TIME, 30.0))
    assert program.profile.tolist() == [[0.0, -1.0], [30.0, 1.0]]
    assert [op.step_id for op in program.ops if op.mode not in (Mode.LOOP_BEGIN, Mode.LOOP_END)] == [0, 1, 2, 3, 4, 5]
    assert program.resistance_guess_ohm == pytest.approx(0.5 * 1.2 / 10.0)
    assert math.isinf(program.sampling.voltage_delta_V)


def test_a_compiled_cccv_capacity_test_runs_to_completion_on_the_cell() -> None:
    procedure = resolved(
        [
            {"type": "cc", "id": 0, "path": "steps[0]", "current_A": 2.5,
             "until": [{"kind": "voltage_above_V", "value": 4.1}]},
            {"type": "cv", "id": 1, "path": "steps[1]", "voltage_V": 4.1, **LIMITS,
             "until": [{"kind": "current_below_A", "value": 0.25}]},
            {"type": "rest", "id": 2, "path": "steps[2]", "until": [{"kind": "time_s", "value": 600}]},
            {"type": "cc", "id": 3, "path": "steps[3]", "current_A": -5.0 / 3,
             "until": [{"kind": "voltage_below_V", "value": 3.0}]},
        ]
    )  # fmt: skip
    r0 = 0.001
    trace = run_both(compile_procedure(procedure), Cell(soc=0.3, r0=r0, r1=0.0, c1=1.0))
    assert trace.code is Code.COMPLETE
    step = trace.column("Step ID")
    discharge = trace.column("Discharge Capacity / Ah")
    # Linear OCV 3.0-4.2 V over 5 Ah: the CV ends with 0.25 A at 4.1 V, the discharge at 3.0 V under load.
    soc_charged = (4.1 - 0.25 * r0 - 3.0) / 1.2
    soc_empty = (5.0 / 3 * r0) / 1.2
    in_step = discharge[step == 3]
    assert in_step[-1] - in_step[0] == pytest.approx(5.0 * (soc_charged - soc_empty), rel=1e-3)

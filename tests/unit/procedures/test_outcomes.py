from __future__ import annotations

import numpy as np
import pytest

from fastlims.procedures.criteria import Criterion
from fastlims.procedures.defaults import criterion
from fastlims.procedures.outcomes import OutcomeError, cycle_summaries, run_outcomes, step_summaries, summarise
from fastlims.procedures.resolve import resolve
from fastlims.procedures.text import parse_text

from .synthetic import Cell, Recorder, run
from .uuts import GEN3B_CELL, GEN3B_PACK

R = GEN3B_CELL  # 50 Ah, 2.5..4.2 V


def _resolved(text: str):  # type: ignore[no-untyped-def]
    return resolve(parse_text(text).procedure, R)


def _cell(**kw: float) -> Cell:
    return Cell(capacity_Ah=50.0, v_min=2.5, v_max=4.2, **kw)


CAPACITY = """\
Rest for 10 s
Charge at 1C until 4.2 V
Rest for 10 s
Discharge at 1C until 2.5 V  # tags=capacity
Rest for 10 s
"""


def test_constant_current_discharge_of_a_linear_ocv_cell() -> None:
    resolved = _resolved(CAPACITY)
    columns = run(resolved, Recorder(_cell(soc=0.5)))
    result = summarise(columns, resolved)
    steps = result["steps"]
    assert [s["end_reason"] for s in steps] == ["time_s", "voltage_above_V", "time_s", "voltage_below_V", "time_s"]
    # The sample that sees the end voltage still carries the step's current (one sample of
    # latency): the charge from 50 % ends 1 s past 100 %, and the 1C discharge from there to
    # 2.5 V (0 %) takes 3601 s: 3602 one-second samples of 50 A.
    discharge = steps[3]
    assert discharge["discharge_Ah"] == pytest.approx(3602 * 50 / 3600, rel=1e-12)
    assert discharge["duration_s"] == 3602.0
    assert discharge["voltage_start_V"] == pytest.approx(4.2 + 1.7 / 3600)
    assert discharge["voltage_end_V"] == pytest.approx(2.5)
    assert discharge["mean_current_A"] == pytest.approx(-50.0)
    # energy: sum of V_k x 50 A x 1 s over a linear voltage ramp
    volts = 4.2 + 1.7 / 3600 - 1.7 * np.arange(3602) / 3600
    assert discharge["discharge_Wh"] == pytest.approx(float(np.sum(volts) * 50 / 3600), rel=1e-9)
    charge = steps[1]
    assert charge["charge_Ah"] == pytest.approx(1801 * 50 / 3600)
    outcomes = result["outcomes"]
    assert outcomes["discharge_capacity_Ah"] == discharge["discharge_Ah"]
    assert outcomes["charge_capacity_Ah"] == pytest.approx(charge["charge_Ah"])
    assert outcomes["coulombic_efficiency"] == pytest.approx(3602 / 1801)
    assert outcomes["min_voltage_V"] == pytest.approx(2.5 - 1.7 / 3600)
    assert outcomes["capacity_retention"] is None  # one capacity measurement
    assert outcomes["verdict"]["result"] == "n/a"


def test_cumulative_columns_and_computed_integrals_agree() -> None:
    resolved = _resolved(CAPACITY)
    columns = run(resolved, Recorder(_cell(soc=0.5), dt=2.0))
    bare = {k: v for k, v in columns.items() if "Capacity" not in k and "Energy" not in k}
    with_cum, computed = step_summaries(columns, resolved), step_summaries(bare, resolved)
    for a, b in zip(with_cum, computed, strict=True):
        for key in ("charge_Ah", "discharge_Ah", "charge_Wh", "discharge_Wh"):
            assert a[key] == pytest.approx(b[key], abs=1e-9)


def test_dcir_from_pulses_equals_the_series_resistance() -> None:
    text = (
        "Rest for 30 s\nPulse discharge at 100 A for 10 s\nRest for 30 s\nPulse charge at 75 A for 10 s\nRest for 5 s\n"
    )
    resolved = _resolved(text)
    columns = run(resolved, Recorder(_cell(soc=0.5, r0_ohm=0.002)))
    result = summarise(columns, resolved)
    pulses = [s for s in result["steps"] if s["type"] == "pulse"]
    assert [s["dcir_ohm"] for s in pulses] == [pytest.approx(0.002, rel=1e-9)] * 2
    assert result["outcomes"]["dcir_ohm"] == pytest.approx(0.002, rel=1e-9)
    assert [s["end_reason"] for s in pulses] == ["duration", "duration"]


def test_cycles_and_capacity_retention_over_a_fading_cell() -> None:
    text = "Repeat 4 times:\n    Charge at 1C until 4.2 V\n    Discharge at 1C until 2.5 V\n"
    resolved = _resolved(text)
    columns = run(resolved, Recorder(_cell(soc=0.0, fade_per_cycle=0.02), dt=5.0))
    cycles = cycle_summaries(columns, resolved)
    assert [c["cycle_count"] for c in cycles] == [1, 2, 3, 4]
    fade = [c["discharge_Ah"] / 50 for c in cycles]
    # each cycle's discharge follows the faded capacity (within 1 %: the one-sample latency at both
    # ends of every 5 s-sampled half cycle)
    for k, value in enumerate(fade):
        assert value == pytest.approx(0.98 ** (k + 1), rel=0.01)
    assert fade == sorted(fade, reverse=True)
    assert all(0.99 < c["coulombic_efficiency"] < 1.01 for c in cycles[1:])
    outcomes = run_outcomes(columns, resolved)
    assert outcomes["capacity_retention"] == pytest.approx(cycles[-1]["discharge_Ah"] / cycles[0]["discharge_Ah"])
    assert outcomes["capacity_retention"] == pytest.approx(0.98**3, rel=0.01)
    assert outcomes["discharge_capacity_Ah"] == cycles[-1]["discharge_Ah"]


def test_run_without_a_discharge_step() -> None:
    resolved = _resolved("Rest for 10 s\nCharge at C/2 for 60 s\nRest for 10 s\n")
    outcomes = run_outcomes(run(resolved, Recorder(_cell(soc=0.2))), resolved)
    assert outcomes["discharge_capacity_Ah"] is None
    assert outcomes["discharge_energy_Wh"] is None and outcomes["coulombic_efficiency"] is None
    assert outcomes["capacity_retention"] is None
    assert outcomes["max_voltage_V"] > outcomes["min_voltage_V"]


def test_run_ended_by_a_safety_limit_mid_step() -> None:
    resolved = _resolved(CAPACITY)
    columns = run(resolved, Recorder(_cell(soc=0.5), stop_at_s=3000.0))
    limit = Criterion(text="stay in the region", check="operating_region", limits=(2.5, 4.3, 60.0))
    result = summarise(columns, resolved, criterion=limit, end_cause="safety_limit")
    last = result["steps"][-1]
    assert last["label"] is None and last["text"] == "Discharge at 1C until 2.5 V"
    assert last["end_reason"] == "safety_limit"
    assert result["outcomes"]["discharge_capacity_Ah"] == pytest.approx(last["discharge_Ah"])
    assert result["outcomes"]["verdict"] == {
        "result": "fail",
        "criterion": "stay in the region",
        "reason": "a safety limit ended the run",
        "check": "operating_region",
    }


def test_one_cycle_only_has_no_retention() -> None:
    resolved = _resolved("Repeat 1 times:\n    Charge at 1C until 4.2 V\n    Discharge at 1C until 2.5 V\n")
    outcomes = run_outcomes(run(resolved, Recorder(_cell(soc=0.5), dt=10.0)), resolved)
    assert outcomes["capacity_retention"] is None
    assert outcomes["discharge_capacity_Ah"] == pytest.approx(50.0, rel=0.01)


def test_un_383_ocv_verdict_passes_and_fails() -> None:
    text = "Rest for 60 s  # tags=ocv_pre\nDischarge at 1C for 360 s\nRest for 60 s  # tags=ocv_post\n"
    resolved = _resolved(text)
    t1 = criterion("UN383-T1", GEN3B_PACK)
    assert t1 is not None
    # from 100 % SOC a 10 % discharge: OCV 4.2 -> 4.03 V, 95.95 % of the pre-test value
    columns = run(resolved, Recorder(_cell(soc=1.0)))
    outcomes = run_outcomes(columns, resolved, criterion=t1)
    assert outcomes["ocv_pre_V"] == pytest.approx(4.2) and outcomes["ocv_post_V"] == pytest.approx(4.03)
    verdict = outcomes["verdict"]
    assert verdict["result"] == "pass" and verdict["criterion"].endswith("at least 90 % of the pre-test value.")
    assert "95.95 %" in verdict["reason"] and "leakage, venting" in verdict["reason"]
    # a 50 % discharge: 3.35 / 4.2 = 79.8 %
    deep = resolve(parse_text(text.replace("360 s", "1800 s")).procedure, R)
    deep_outcomes = run_outcomes(run(deep, Recorder(_cell(soc=1.0))), deep, criterion=t1)
    assert deep_outcomes["verdict"]["result"] == "fail"


def test_temperature_and_observation_verdicts() -> None:
    resolved = _resolved("Discharge at 3C for 60 s\nRest for 10 s\n")
    t5 = criterion("UN383-T5", GEN3B_CELL)  # case temperature at most 170 degC
    assert t5 is not None and t5.threshold == 170.0
    warm = run(resolved, Recorder(_cell(soc=1.0, heating_C_per_A=0.5)))  # 25 + 75 degC
    assert run_outcomes(warm, resolved, criterion=t5)["verdict"]["result"] == "pass"
    hot = run(resolved, Recorder(_cell(soc=1.0, heating_C_per_A=1.0)))  # 25 + 150 degC
    verdict = run_outcomes(hot, resolved, criterion=t5)["verdict"]
    assert verdict["result"] == "fail" and "maximum temperature 175 degC (at most 170 degC)" in verdict["reason"]
    no_temperature = {k: v for k, v in hot.items() if k != "Temperature T1 / degC"}
    assert run_outcomes(no_temperature, resolved, criterion=t5)["verdict"]["result"] == "n/a"
    t7 = criterion("UN383-T7", GEN3B_PACK)
    assert t7 is not None
    observed = run_outcomes(warm, resolved, criterion=t7)["verdict"]
    assert observed["result"] == "n/a" and observed["criterion"].startswith("Pass: no disassembly and no fire")
    assert "judged by the operator" in observed["reason"]


def test_capacity_stability_of_preconditioning() -> None:
    text = "Repeat 3 times:\n    Charge at 1C until 4.2 V\n    Discharge at 1C until 2.5 V  # tags=capacity\n"
    resolved = _resolved(text)
    stable = criterion("PERF-PRECONDITION", GEN3B_CELL)
    assert stable is not None
    steady = run(resolved, Recorder(_cell(soc=0.5), dt=10.0))
    assert run_outcomes(steady, resolved, criterion=stable)["verdict"]["result"] == "pass"
    fading = run(resolved, Recorder(_cell(soc=0.5, fade_per_cycle=0.05), dt=10.0))
    verdict = run_outcomes(fading, resolved, criterion=stable)["verdict"]
    assert verdict["result"] == "fail" and "(below 3 % required)" in verdict["reason"]


def test_bad_columns_are_named() -> None:
    resolved = _resolved(CAPACITY)
    columns = run(resolved, Recorder(_cell(soc=0.5), dt=60.0))
    with pytest.raises(OutcomeError, match="result columns missing: Step ID"):
        step_summaries({k: v for k, v in columns.items() if k != "Step ID"}, resolved)
    short = dict(columns, **{"Voltage / V": columns["Voltage / V"][:-1]})
    with pytest.raises(OutcomeError, match="column 'Voltage / V' has shape"):
        step_summaries(short, resolved)
    wrong = dict(columns, **{"Step ID": columns["Step ID"] + 10})
    with pytest.raises(OutcomeError, match="outside the procedure's 5 steps"):
        step_summaries(wrong, resolved)
    backwards = dict(columns, **{"Test Time / s": columns["Test Time / s"][::-1]})
    with pytest.raises(OutcomeError, match="must be finite and non-decreasing"):
        step_summaries(backwards, resolved)
    empty = {k: v[:0] for k, v in columns.items()}
    result = summarise(empty, resolved)
    assert result["steps"] == [] and result["outcomes"]["discharge_capacity_Ah"] is None

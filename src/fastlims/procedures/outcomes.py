"""What a run measured, as a battery engineer reads it: per-step and per-cycle summaries and the
run's outcomes, from the result columns (Battery Data Format names) and the resolved procedure.

Sampling convention (the executors' and the BDF cumulative columns'): the current of sample ``k``
flows over ``[t_k, t_k+1)`` and the cumulative charge/energy at sample ``k`` counts up to ``t_k``.
So a step from sample ``a`` to ``b`` passed ``cum[b+1] - cum[a]`` (``cum[b] - cum[a]`` for the
run's last step); without the cumulative columns the current is integrated the same way.

Run outcomes use the steps' tags (see :mod:`.blocks`): the reference discharge is the last step
tagged ``capacity`` (else the last cycle that discharged, else the whole run) and the reference
charge the charging steps just before it; ``capacity_retention`` compares the last and first
``capacity`` steps (else cycles); ``dcir_ohm`` is the mean over pulses of (V just before - V at
the pulse's first sample) / |I|; ``ocv_pre_V``/``ocv_post_V`` are the last voltages of the rests
tagged ``ocv_pre``/``ocv_post``; ``energy_efficiency`` divides the discharge energy of the steps
tagged ``efficiency_discharge`` by the charge energy of those tagged ``efficiency_charge``.
The ``verdict`` evaluates the standard's :class:`~.criteria.Criterion` where one is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fastlims.procedures.blocks import BMS_CHECK, CAPACITY, EFF_CHARGE, EFF_DISCHARGE, OCV_POST, OCV_PRE
from fastlims.procedures.criteria import Criterion
from fastlims.procedures.resolved import (
    ResolvedExternal,
    ResolvedLeaf,
    ResolvedProcedure,
    ResolvedProfile,
    ResolvedPulse,
)

__all__ = [
    "AMBIENT",
    "CHARGE_AH",
    "CHARGE_WH",
    "CURRENT",
    "CYCLE",
    "DISCHARGE_AH",
    "DISCHARGE_WH",
    "STEP_COUNT",
    "STEP_ID",
    "TEMPERATURE",
    "TIME",
    "VOLTAGE",
    "OutcomeError",
    "cycle_summaries",
    "run_outcomes",
    "step_summaries",
    "summarise",
    "verdict",
]

TIME = "Test Time / s"
VOLTAGE = "Voltage / V"
CURRENT = "Current / A"
STEP_COUNT = "Step Count / 1"
CYCLE = "Cycle Count / 1"
STEP_ID = "Step ID"
CHARGE_AH = "Charge Capacity / Ah"
DISCHARGE_AH = "Discharge Capacity / Ah"
CHARGE_WH = "Charge Energy / Wh"
DISCHARGE_WH = "Discharge Energy / Wh"
TEMPERATURE = "Temperature T1 / degC"
AMBIENT = "Ambient Temperature / degC"
REQUIRED = (TIME, VOLTAGE, CURRENT, STEP_COUNT, STEP_ID)
# Every column the outcomes read (a caller reading a results file needs no others).
USED = (*REQUIRED, "Cycle Count / 1", "Charge Capacity / Ah", "Discharge Capacity / Ah", "Charge Energy / Wh",
        "Discharge Energy / Wh", "Temperature T1 / degC", "Ambient Temperature / degC")  # fmt: skip

Array = NDArray[np.float64]


class OutcomeError(ValueError):
    """Result columns that cannot be summarised; the message names the column."""


# --------------------------------------------------------------------------- columns


class _Run:
    """The columns as float arrays, with cumulative charge and energy (computed when absent)."""

    def __init__(self, columns: Mapping[str, Any], resolved: ResolvedProcedure):
        missing = [name for name in REQUIRED if name not in columns]
        if missing:
            raise OutcomeError(f"result columns missing: {', '.join(missing)}")
        self.n = len(np.asarray(columns[TIME]))
        self.col: dict[str, Array] = {}
        for name, values in columns.items():
            if name not in USED:
                continue
            array = np.asarray(values, dtype=np.float64)
            if array.ndim != 1 or len(array) != self.n:
                raise OutcomeError(f"column {name!r} has shape {array.shape}, expected ({self.n},) like {TIME!r}")
            self.col[name] = array
        t = self.col[TIME]
        if self.n and (not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0)):
            raise OutcomeError(f"column {TIME!r} must be finite and non-decreasing")
        leaves = resolved.leaves()
        ids = self.col[STEP_ID]
        # -1: the samples before the first step (the executors' opening sample at open circuit)
        if self.n and (np.any(ids < -1) or np.any(ids >= len(leaves)) or np.any(ids != np.round(ids))):
            raise OutcomeError(f"column {STEP_ID!r} holds values outside the procedure's {len(leaves)} steps")
        self.leaves = leaves
        dt = np.diff(t, append=t[-1] if self.n else 0.0)  # sample k's current flows until t_k+1
        i, v = self.col[CURRENT], self.col[VOLTAGE]
        charge_flow = np.where(i > 0, i, 0.0) * dt / 3600
        discharge_flow = np.where(i < 0, -i, 0.0) * dt / 3600
        self.cum = {
            CHARGE_AH: self._cumulative(CHARGE_AH, charge_flow),
            DISCHARGE_AH: self._cumulative(DISCHARGE_AH, discharge_flow),
            CHARGE_WH: self._cumulative(CHARGE_WH, charge_flow * v),
            DISCHARGE_WH: self._cumulative(DISCHARGE_WH, discharge_flow * v),
        }
        self.charge_integral = np.concatenate(([0.0], np.cumsum(i * dt / 3600)))

    def _cumulative(self, name: str, flow: Array) -> Array:
        if name in self.col:
            return self.col[name]
        # cum[k] counts up to t_k: the flows of samples before k
        return np.concatenate(([0.0], np.cumsum(flow)[:-1])) if self.n else flow

    def passed(self, name: str, start: int, stop: int) -> float:
        """What the samples ``start..stop-1`` passed (see the module docstring)."""
        cum = self.cum[name]
        end = stop if stop < self.n else self.n - 1  # the run's last sample: nothing flows after it
        return float(cum[end] - cum[start])

    def segments(self, key: str) -> list[tuple[int, int]]:
        """``(start, stop)`` index ranges where column ``key`` keeps one value."""
        if not self.n:
            return []
        values = self.col[key]
        cuts = np.flatnonzero(np.diff(values) != 0) + 1
        edges = [0, *cuts.tolist(), self.n]
        return [(edges[j], edges[j + 1]) for j in range(len(edges) - 1)]


# --------------------------------------------------------------------------- steps


def step_summaries(
    columns: Mapping[str, Any], resolved: ResolvedProcedure, *, end_cause: str | None = None
) -> list[dict[str, Any]]:
    """One summary per step execution (each value of ``Step Count / 1``), in order."""
    return _steps(_Run(columns, resolved), end_cause)


def _steps(run: _Run, end_cause: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    segments = run.segments(STEP_COUNT)
    t, v, i = run.col[TIME], run.col[VOLTAGE], run.col[CURRENT]
    temperature = run.col.get(TEMPERATURE)
    for index, (a, b) in enumerate(segments):
        if run.col[STEP_ID][a] < 0:
            continue  # the opening sample at open circuit, before the first step
        leaf = run.leaves[int(run.col[STEP_ID][a])]
        last = index == len(segments) - 1
        stop = b if not last else run.n
        end_time = t[b] if b < run.n else t[b - 1]
        duration = float(end_time - t[a])
        charge_ah = run.passed(CHARGE_AH, a, b)
        discharge_ah = run.passed(DISCHARGE_AH, a, b)
        net_ah = float(run.charge_integral[b] - run.charge_integral[a])
        summary: dict[str, Any] = {
            "step_count": int(run.col[STEP_COUNT][a]),
            "step_id": leaf.id,
            "type": leaf.type,
            "label": leaf.label,
            "text": leaf.text,
            "path": leaf.path,
            "tags": list(leaf.tags),
            "start_time_s": float(t[a]),
            "end_time_s": float(end_time),
            "duration_s": duration,
            "end_reason": "",
            "charge_Ah": charge_ah,
            "discharge_Ah": discharge_ah,
            "charge_Wh": run.passed(CHARGE_WH, a, b),
            "discharge_Wh": run.passed(DISCHARGE_WH, a, b),
            "voltage_start_V": float(v[a]),
            "voltage_end_V": float(v[stop - 1]),
            "voltage_min_V": float(np.min(v[a:stop])),
            "voltage_max_V": float(np.max(v[a:stop])),
            "mean_current_A": net_ah * 3600 / duration if duration > 0 else float(i[a]),
            "max_temperature_C": float(np.max(temperature[a:stop])) if temperature is not None else None,
            "last_period_s": float(t[stop - 1] - t[stop - 2]) if stop - a >= 2 else 0.0,
        }
        summary["end_reason"] = _end_reason(leaf, summary, float(i[stop - 1]), temperature, stop, last, end_cause)
        del summary["last_period_s"]
        if isinstance(leaf, ResolvedPulse) and a > 0 and i[a] != 0:
            summary["dcir_ohm"] = abs(float(v[a - 1] - v[a]) / float(i[a]))
        out.append(summary)
    return out


def _end_reason(
    leaf: ResolvedLeaf,
    s: Mapping[str, Any],
    current: float,
    temperature: Array | None,
    stop: int,
    last: bool,
    end_cause: str | None,
) -> str:
    """The termination met at the step's last sample, else why the step stopped."""
    tolerance = 1e-6
    for term in getattr(leaf, "until", ()):
        met = False
        if term.kind == "time_s":
            # the run's last step ends at its last sample, one sample period short of its time
            met = s["duration_s"] >= term.value * (1 - 1e-9) - (s["last_period_s"] if last else 0.0)
        elif term.kind == "voltage_above_V":
            met = s["voltage_end_V"] >= term.value - tolerance
        elif term.kind == "voltage_below_V":
            met = s["voltage_end_V"] <= term.value + tolerance
        elif term.kind == "current_below_A":
            met = abs(current) <= term.value + tolerance
        elif term.kind == "charge_Ah":
            met = max(s["charge_Ah"], s["discharge_Ah"]) >= term.value * (1 - 1e-3)
        elif temperature is not None and term.kind == "temperature_above_C":
            met = float(temperature[stop - 1]) >= term.value - tolerance
        elif temperature is not None and term.kind == "temperature_below_C":
            met = float(temperature[stop - 1]) <= term.value + tolerance
        if met:
            return str(term.kind)
    if isinstance(leaf, ResolvedProfile) and s["duration_s"] >= leaf.points[-1][0] * 0.999:
        return "profile_end"
    if isinstance(leaf, ResolvedPulse | ResolvedExternal):
        return "duration" if not last or s["duration_s"] >= leaf.duration_s * 0.999 else (end_cause or "run_end")
    if leaf.type == "ambient" and not getattr(leaf, "until", ()):
        return "set"
    return (end_cause or "run_end") if last else "unknown"


# --------------------------------------------------------------------------- cycles


def cycle_summaries(columns: Mapping[str, Any], resolved: ResolvedProcedure) -> list[dict[str, Any]]:
    """One summary per value of ``Cycle Count / 1`` (empty without that column)."""
    return _cycles(_Run(columns, resolved))


def _cycles(run: _Run) -> list[dict[str, Any]]:
    if CYCLE not in run.col:
        return []
    temperature = run.col.get(TEMPERATURE)
    out = []
    for a, b in run.segments(CYCLE):
        charge, discharge = run.passed(CHARGE_AH, a, b), run.passed(DISCHARGE_AH, a, b)
        out.append(
            {
                "cycle_count": int(run.col[CYCLE][a]),
                "start_time_s": float(run.col[TIME][a]),
                "charge_Ah": charge,
                "discharge_Ah": discharge,
                "charge_Wh": run.passed(CHARGE_WH, a, b),
                "discharge_Wh": run.passed(DISCHARGE_WH, a, b),
                "coulombic_efficiency": discharge / charge if charge > 0 and discharge > 0 else None,
                "max_temperature_C": float(np.max(temperature[a:b])) if temperature is not None else None,
            }
        )
    return out


# --------------------------------------------------------------------------- run


def run_outcomes(
    columns: Mapping[str, Any],
    resolved: ResolvedProcedure,
    *,
    criterion: Criterion | None = None,
    end_cause: str | None = None,
) -> dict[str, Any]:
    """The run's outcomes (see the module docstring) with its ``verdict``."""
    return summarise(columns, resolved, criterion=criterion, end_cause=end_cause)["outcomes"]  # type: ignore[no-any-return]


def summarise(
    columns: Mapping[str, Any],
    resolved: ResolvedProcedure,
    *,
    criterion: Criterion | None = None,
    end_cause: str | None = None,
) -> dict[str, Any]:
    """``{"steps": [...], "cycles": [...], "outcomes": {...}}`` for one run.

    ``end_cause``: how the run ended (``procedure_complete``, ``safety_limit``, ...), which names
    the end of a step cut short and enters the ``operating_region`` check.
    """
    run = _Run(columns, resolved)
    steps = _steps(run, end_cause)
    cycles = _cycles(run)
    outcomes = _outcomes(run, steps, cycles)
    outcomes["verdict"] = verdict(criterion, outcomes, steps, end_cause)
    return {"steps": steps, "cycles": cycles, "outcomes": outcomes}


def _tagged(steps: Sequence[Mapping[str, Any]], tag: str) -> list[Mapping[str, Any]]:
    return [s for s in steps if tag in s["tags"]]


def _outcomes(run: _Run, steps: list[dict[str, Any]], cycles: list[dict[str, Any]]) -> dict[str, Any]:
    v = run.col[VOLTAGE]
    temperature = run.col.get(TEMPERATURE)
    discharged = [c for c in cycles if c["discharge_Ah"] > 0]
    reference = _reference(steps, discharged)
    out: dict[str, Any] = {
        "discharge_capacity_Ah": reference[0],
        "charge_capacity_Ah": reference[1],
        "discharge_energy_Wh": reference[2],
        "coulombic_efficiency": (reference[0] / reference[1] if reference[0] is not None and reference[1] else None),
        "dcir_ohm": _mean([s["dcir_ohm"] for s in steps if "dcir_ohm" in s]),
        "capacity_retention": _retention(steps, discharged),
        "max_temperature_C": float(np.max(temperature)) if temperature is not None and run.n else None,
        "min_voltage_V": float(np.min(v)) if run.n else None,
        "max_voltage_V": float(np.max(v)) if run.n else None,
    }
    opening = np.flatnonzero(run.col[STEP_ID] < 0)
    if opening.size:  # the executors' first sample, at open circuit before the first step
        out["open_circuit_voltage_V"] = float(v[opening[-1]])
    pre, post = _tagged(steps, OCV_PRE), _tagged(steps, OCV_POST)
    if pre or post:
        out["ocv_pre_V"] = pre[-1]["voltage_end_V"] if pre else None
        out["ocv_post_V"] = post[-1]["voltage_end_V"] if post else None
        out["ocv_retention"] = out["ocv_post_V"] / out["ocv_pre_V"] if pre and post and out["ocv_pre_V"] else None
    eff_out, eff_in = _tagged(steps, EFF_DISCHARGE), _tagged(steps, EFF_CHARGE)
    if eff_out and eff_in:
        energy_in = sum(s["charge_Wh"] for s in eff_in)
        out["energy_efficiency"] = sum(s["discharge_Wh"] for s in eff_out) / energy_in if energy_in > 0 else None
    return out


def _reference(
    steps: Sequence[Mapping[str, Any]], discharged: Sequence[Mapping[str, Any]]
) -> tuple[float | None, float | None, float | None]:
    """(discharge Ah, charge Ah, discharge Wh) of the reference discharge (module docstring)."""
    tagged = [index for index, s in enumerate(steps) if CAPACITY in s["tags"] and s["discharge_Ah"] > 0]
    if tagged:
        index = tagged[-1]
        charge = 0.0
        for s in reversed(steps[:index]):
            if s["discharge_Ah"] > s["charge_Ah"]:
                break  # the previous discharge: the charge before it fed something else
            charge += s["charge_Ah"]
        return steps[index]["discharge_Ah"], charge or None, steps[index]["discharge_Wh"]
    if discharged:
        last = discharged[-1]
        return last["discharge_Ah"], last["charge_Ah"] or None, last["discharge_Wh"]
    total_out = sum(s["discharge_Ah"] for s in steps)
    if total_out <= 0:
        return None, None, None
    total_in = sum(s["charge_Ah"] for s in steps)
    return total_out, total_in or None, sum(s["discharge_Wh"] for s in steps)


def _retention(steps: Sequence[Mapping[str, Any]], discharged: Sequence[Mapping[str, Any]]) -> float | None:
    values = [s["discharge_Ah"] for s in steps if CAPACITY in s["tags"] and s["discharge_Ah"] > 0]
    if len(values) < 2:
        values = [c["discharge_Ah"] for c in discharged]
    return values[-1] / values[0] if len(values) >= 2 and values[0] > 0 else None


def _capacities(steps: Sequence[Mapping[str, Any]]) -> list[float]:
    return [s["discharge_Ah"] for s in steps if CAPACITY in s["tags"] and s["discharge_Ah"] > 0]


def _mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


# --------------------------------------------------------------------------- verdict


def verdict(
    criterion: Criterion | None,
    outcomes: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    end_cause: str | None = None,
) -> dict[str, Any]:
    """``{"result": "pass"|"fail"|"n/a", "criterion": quoted text or None, "reason": ...}``.

    Only the part of a criterion the data can decide is decided; what the operator observes
    (fire, leakage, ...) is named in the reason and never passed or failed here.
    """
    if criterion is None:
        return {
            "result": "n/a",
            "criterion": None,
            "reason": "the standard states no pass/fail criterion for this test",
        }
    also = f"; observed by the operator, not in the data: {criterion.observed}" if criterion.observed else ""

    def decide(ok: bool | None, measured: str) -> dict[str, Any]:
        result = "n/a" if ok is None else ("pass" if ok else "fail")
        return {"result": result, "criterion": criterion.text, "reason": measured + also, "check": criterion.check}

    threshold = criterion.threshold
    if criterion.check == "observation":
        return {
            "result": "n/a",
            "criterion": criterion.text,
            "reason": f"judged by the operator: {criterion.observed or criterion.text}; the recorded data cannot "
            "decide it",
            "check": criterion.check,
        }
    if criterion.check == "ocv_retention":
        ratio = outcomes.get("ocv_retention")
        if ratio is None or threshold is None:
            return decide(None, "the run has no pre-test and post-test OCV (rests tagged ocv_pre and ocv_post)")
        return decide(
            ratio >= threshold,
            f"OCV after the test {outcomes['ocv_post_V']:.4g} V is {ratio * 100:.2f} % of the pre-test "
            f"{outcomes['ocv_pre_V']:.4g} V (at least {threshold * 100:g} % required)",
        )
    if criterion.check == "max_temperature":
        peak = outcomes.get("max_temperature_C")
        if peak is None or threshold is None:
            return decide(None, "the run recorded no UUT temperature (Temperature T1 / degC)")
        return decide(peak <= threshold, f"maximum temperature {peak:.4g} degC (at most {threshold:g} degC)")
    if criterion.check == "max_voltage":
        peak = outcomes.get("max_voltage_V")
        if peak is None or threshold is None:
            return decide(None, "the run recorded no voltage")
        return decide(peak <= threshold + 1e-9, f"maximum voltage {peak:.5g} V (at most {threshold:g} V)")
    if criterion.check == "min_voltage":
        low = outcomes.get("min_voltage_V")
        if low is None or threshold is None:
            return decide(None, "the run recorded no voltage")
        return decide(low >= threshold - 1e-9, f"minimum voltage {low:.5g} V (at least {threshold:g} V)")
    if criterion.check == "capacity_stable":
        values = _capacities(steps)
        if len(values) < 2 or threshold is None:
            return decide(None, f"{len(values)} capacity measurement(s): two consecutive ones are needed")
        change = abs(values[-1] - values[-2]) / values[-2]
        return decide(
            change < threshold,
            f"the last two discharge capacities {values[-2]:.5g} Ah and {values[-1]:.5g} Ah differ by "
            f"{change * 100:.2f} % (below {threshold * 100:g} % required)",
        )
    if criterion.check == "current_interrupted":
        checked = _tagged(steps, BMS_CHECK)
        if not checked:
            return decide(None, "the run did not reach the step the protection should end (tag bms_check)")
        reason = checked[-1]["end_reason"]
        if reason == "current_below_A":
            return decide(True, f"the charging current fell below its limit ({checked[-1]['text']})")
        if reason == "time_s":
            return decide(False, f"the charging current was not reduced before the time limit ({checked[-1]['text']})")
        return decide(None, f"the step ended by {reason}")
    if criterion.check == "operating_region":
        assert criterion.limits is not None
        low_v, high_v, high_t = criterion.limits
        problems = []
        if outcomes.get("min_voltage_V") is not None and outcomes["min_voltage_V"] < low_v - 1e-9:
            problems.append(f"minimum voltage {outcomes['min_voltage_V']:.5g} V below {low_v:g} V")
        if outcomes.get("max_voltage_V") is not None and outcomes["max_voltage_V"] > high_v + 1e-9:
            problems.append(f"maximum voltage {outcomes['max_voltage_V']:.5g} V above {high_v:g} V")
        peak = outcomes.get("max_temperature_C")
        if peak is not None and peak > high_t:
            problems.append(f"maximum temperature {peak:.4g} degC above {high_t:g} degC")
        if end_cause == "safety_limit":
            problems.append("a safety limit ended the run")
        if problems:
            return decide(False, "; ".join(problems))
        measured = f"voltages within {low_v:g}..{high_v:g} V"
        measured += f", temperature at most {peak:.4g} degC" if peak is not None else " (no UUT temperature recorded)"
        return decide(True, measured)
    raise ValueError(f"unknown criterion check {criterion.check!r}")

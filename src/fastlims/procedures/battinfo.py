"""Export a resolved procedure to the BattINFO test-protocol JSON (the schema bundled by the
Battery Data Format project, ``test-protocol.schema.json``), wherever the mapping exists.

What maps: rest, constant current, constant voltage (with its current limit), constant power,
pulses (constant current with a duration), repeats (``group`` with ``count``), the ambient
temperature (on every step it applies to), time/voltage/current/charge terminations, the safety
limits and the sampling. What does not: profile tables and external (fixture) steps, which become
an empty ``group`` placeholder with a description so the order stays readable, and temperature
terminations, which are dropped; each is listed in ``notes``. BattINFO steps carry magnitudes with
a ``direction``; FastLIMS's BDF signs (positive = charge) are turned into that.

The ``test_spec.id`` is derived from the protocol's content (a stable BattINFO-shaped IRI); it is
not registered at w3id.org, which the notes say.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from fastlims.procedures.resolved import (
    AnyResolved,
    ResolvedAmbient,
    ResolvedCc,
    ResolvedCp,
    ResolvedCv,
    ResolvedExternal,
    ResolvedProcedure,
    ResolvedProfile,
    ResolvedPulse,
    ResolvedRepeat,
    ResolvedRest,
    ResolvedTermination,
)

__all__ = ["SCHEMA_VERSION", "spec_iri", "to_battinfo"]

SCHEMA_VERSION = "1.0.0"
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base 32, as BattINFO short ids use
_KINDS = (
    "cycling",
    "capacity_check",
    "rate_capability",
    "hppc",
    "ici",
    "gitt",
    "dcir",
    "eis",
    "impedance",
    "calendar_ageing",
    "formation",
    "rpt",
    "quasi_ocv",
    "field",
    "duty_cycle",
    "wltp",
    "nedc",
    "sem",
    "characterization",
    "other",
)


def spec_iri(resolved: ResolvedProcedure) -> str:
    """``https://w3id.org/battinfo/spec/xxxx-xxxx-xxxx-xxxx`` from a hash of the procedure."""
    digest = hashlib.sha256(json.dumps(resolved.model_dump(mode="json"), sort_keys=True).encode()).digest()
    number = int.from_bytes(digest[:10], "big")
    chars = []
    for _ in range(16):
        number, index = divmod(number, 32)
        chars.append(_ALPHABET[index])
    text = "".join(chars)
    return "https://w3id.org/battinfo/spec/" + "-".join(text[i : i + 4] for i in range(0, 16, 4))


def to_battinfo(
    resolved: ResolvedProcedure,
    *,
    retrieved_at: int,
    kind: str | None = None,
    source_url: str | None = None,
) -> dict[str, Any]:
    """The BattINFO test-protocol record of ``resolved``.

    ``retrieved_at``: Unix seconds of the export (the caller's clock: this module is pure);
    ``kind``: a BattINFO ``test_spec.kind`` (else guessed from the steps: pulses -> ``hppc``, a
    counted cycle -> ``cycling``, a capacity discharge -> ``capacity_check``, else ``other``).
    """
    if kind is not None and kind not in _KINDS:
        raise ValueError(f"kind {kind!r} is not a BattINFO test kind; expected one of {', '.join(_KINDS)}")
    notes: list[str] = []
    state: dict[str, float | None] = {"ambient": None}
    method = _steps(resolved.steps, notes, state)
    s = resolved.safety
    record: dict[str, Any] = {"time_s": resolved.sampling.period_s}
    if resolved.sampling.voltage_delta_V is not None:
        record["voltage_V"] = resolved.sampling.voltage_delta_V
    if resolved.sampling.current_delta_A is not None:
        record["current_mA"] = resolved.sampling.current_delta_A * 1000
    if s.max_charge_current_A != s.max_discharge_current_A:
        notes.append(
            f"safety: BattINFO has one current limit; max_current_mA is the larger of the charge "
            f"({s.max_charge_current_A:g} A) and discharge ({s.max_discharge_current_A:g} A) limits"
        )
    notes.append("test_spec.id is derived from the procedure's content; it is not registered at w3id.org")
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "test_spec": {
            "id": spec_iri(resolved),
            "name": resolved.name,
            "kind": kind or _guess_kind(resolved),
            "description": resolved.description or resolved.name,
            "identifier": f"{resolved.uut}: {resolved.name}",
        },
        "provenance": {
            "source_type": "other",
            "source_name": "FastLIMS",
            "workflow_version": resolved.format,
            "retrieved_at": int(retrieved_at),
            "comment": f"resolved for UUT {resolved.uut}"
            + (f" under standard {resolved.standard}" if resolved.standard else ""),
        },
        "method": method,
        "safety": {
            "max_voltage_V": s.max_voltage_V,
            "min_voltage_V": s.min_voltage_V,
            "max_current_mA": max(s.max_charge_current_A, s.max_discharge_current_A) * 1000,
            "max_temperature_degC": s.max_temperature_C,
            "min_temperature_degC": s.min_temperature_C,
            "delay_s": s.delay_s,
        },
        "record": record,
        "notes": notes,
    }
    if source_url is not None:
        document["provenance"]["source_url"] = source_url
    ambients = {step.temperature_C for step in resolved.walk() if isinstance(step, ResolvedAmbient)}
    if len(ambients) == 1:
        document["conditions"] = {"temperature": {"value": ambients.pop(), "unit": "degC"}}
    return document


def _guess_kind(resolved: ResolvedProcedure) -> str:
    steps = list(resolved.walk())
    if any(isinstance(step, ResolvedPulse) for step in steps):
        return "hppc"
    if any(isinstance(step, ResolvedRepeat) and step.cycle and step.count > 1 for step in steps):
        return "cycling"
    if any("capacity" in step.tags for step in steps):
        return "capacity_check"
    return "other"


def _steps(steps: Sequence[AnyResolved], notes: list[str], state: dict[str, float | None]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for step in steps:
        mapped = _step(step, notes, state)
        if mapped is not None:
            out.append(mapped)
    return out


def _q(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit}


def _describe(step: AnyResolved) -> str:
    return f"{step.label}: {step.text}" if step.label else step.text


def _step(step: AnyResolved, notes: list[str], state: dict[str, float | None]) -> dict[str, Any] | None:
    where = f"{step.path} ({step.text})"
    if isinstance(step, ResolvedRepeat):
        inner = _steps(step.steps, notes, state)
        group: dict[str, Any] = {"mode": "group", "count": step.count, "steps": inner, "description": _describe(step)}
        if step.cycle:
            group["tags"] = ["cycle", *step.tags]
        elif step.tags:
            group["tags"] = list(step.tags)
        return group
    if isinstance(step, ResolvedAmbient):
        state["ambient"] = step.temperature_C
        if not step.until:
            return None  # the set-point travels on the following steps' temperature
    base: dict[str, Any] = {"description": _describe(step)}
    if step.tags:
        base["tags"] = list(step.tags)
    if state["ambient"] is not None:
        base["temperature"] = _q(state["ambient"], "degC")
    if isinstance(step, ResolvedRest | ResolvedAmbient):
        base |= {"mode": "rest", "direction": "rest"}
    elif isinstance(step, ResolvedCc | ResolvedPulse):
        direction = "charge" if step.current_A > 0 else "discharge"
        base |= {"mode": "cc", "direction": direction, "setpoints": {"current": _q(abs(step.current_A), "A")}}
        if isinstance(step, ResolvedPulse):
            base["duration"] = _q(step.duration_s, "s")
            base["tags"] = ["pulse", *base.get("tags", [])]
    elif isinstance(step, ResolvedCv):
        setpoints = {"voltage": _q(step.voltage_V, "V")}
        if step.charge_limit_A == step.discharge_limit_A:
            setpoints["current_limit"] = _q(step.charge_limit_A, "A")
        base |= {"mode": "cv", "direction": "hold", "setpoints": setpoints}
    elif isinstance(step, ResolvedCp):
        direction = "charge" if step.power_W > 0 else "discharge"
        base |= {"mode": "cp", "direction": direction, "setpoints": {"power": _q(abs(step.power_W), "W")}}
    elif isinstance(step, ResolvedProfile):
        notes.append(f"{where}: a {step.quantity} profile of {len(step.points)} points has no BattINFO step type")
        return base | {"mode": "group", "duration": _q(step.points[-1][0], "s")}
    else:
        assert isinstance(step, ResolvedExternal)
        notes.append(f"{where}: an external {step.action} step (a fixture, not a cycler) has no BattINFO step type")
        return base | {"mode": "group", "duration": _q(step.duration_s, "s")}
    until = getattr(step, "until", ())
    terminations = [t for t in (_termination(term, where, notes) for term in until) if t is not None]
    if terminations:
        base["termination"] = terminations
    return base


def _termination(term: ResolvedTermination, where: str, notes: list[str]) -> dict[str, Any] | None:
    if term.kind == "time_s":
        return {"quantity": "duration", "direction": "elapsed", "value": term.value, "unit": "s"}
    if term.kind == "voltage_above_V":
        return {"quantity": "voltage", "direction": "above", "value": term.value, "unit": "V"}
    if term.kind == "voltage_below_V":
        return {"quantity": "voltage", "direction": "below", "value": term.value, "unit": "V"}
    if term.kind == "current_below_A":
        return {"quantity": "current", "direction": "below", "value": term.value, "unit": "A"}
    if term.kind == "charge_Ah":
        return {"quantity": "capacity", "direction": "above", "value": term.value, "unit": "Ah"}
    notes.append(f"{where}: the termination {term.kind} {term.value:g} has no BattINFO quantity (dropped)")
    return None

"""The test procedure in the co-simulation: which FMU ports play the UUT's roles, where the
controller reads and writes in the row buffer, and how its end becomes the run's end.

The Digital Twin's ``inter_connection.json`` maps roles to ports (``UUT_ports``): the procedure
drives ``current`` (and ``ambient_temperature``, when mapped) and watches ``voltage`` (and
``temperature``). The controller (:mod:`fastlims.procedures.native`, compiled C) is a row call
made after the FMUs have stepped: it reads the point's voltage from the row and sets the next
point's current (and ambient) in the FMU itself, so a closed-loop point costs one C call more
than an open-loop one and the loop stays in C. The driven ports are *controlled inputs*: set by
the master only in initialization mode. The controller's own columns (the Battery Data Format's
``Test Time / s``, ``Current / A``, counters, capacities, energies) are appended after the FMUs'
columns and recorded in place of the role ports' raw signals; a row is kept when the
controller's sampling rules say so. Pure apart from :func:`start_controller`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastlims.benches.cosim.errors import CosimError
from fastlims.benches.cosim.spec import ProcedureRun
from fastlims.benches.cosim.system import CosimSystem, Port
from fastlims.benches.cosim.units import conversion
from fastlims.procedures.interpreter import trip_reason
from fastlims.procedures.native import OUT_COLUMNS, Conversions, FmuInput, NativeController, RowLayout
from fastlims.procedures.program import Code, Mode, Program

RECORD = "record"
# The BDF columns of a run with a procedure, in the order the results list them (time columns first).
BDF_ORDER = (
    "Test Time / s",
    "Voltage / V",
    "Current / A",
    "Temperature T1 / degC",
    "Ambient Temperature / degC",
    "Step Count / 1",
    "Cycle Count / 1",
    "Step ID",
    "Charge Capacity / Ah",
    "Discharge Capacity / Ah",
    "Charge Energy / Wh",
    "Discharge Energy / Wh",
)
UNITS = {name: (name.rsplit(" / ", 1)[1] if " / " in name else "") for name in OUT_COLUMNS}
# Each role: the causalities its port may have (ambient may be a tunable parameter: FMI lets a
# tunable parameter change between steps), and the unit the controller works in.
ROLES = {
    "current": (("input",), "A"),
    "voltage": (("output",), "V"),
    "temperature": (("output",), "degC"),
    "ambient_temperature": (("input", "parameter"), "degC"),
}


@dataclass(frozen=True)
class RolePorts:
    """The role ports of a run, checked: ``current`` and ``voltage`` always, the rest if mapped."""

    current: Port
    voltage: Port
    temperature: Port | None
    ambient: Port | None

    @property
    def driven(self) -> list[Port]:
        return [p for p in (self.current, self.ambient) if p is not None]

    @property
    def watched(self) -> list[Port]:
        return [p for p in (self.voltage, self.temperature) if p is not None]


def role_ports(system: CosimSystem, run: ProcedureRun, problems: list[str]) -> RolePorts | None:
    """Resolve and check the ``UUT_ports`` a procedure needs; problems are appended."""
    driven = {(c.target.fmu, c.target.name): c.source.reference for c in system.connections}
    found: dict[str, Port] = {}
    for role, reference in run.ports.items():
        if role not in ROLES:
            continue  # soc, power: recorded under their FMU names; the controller regulates current itself
        causalities, _ = ROLES[role]
        what = f"UUT_ports.{role}"
        try:
            port = system.resolve(reference, what=what)
        except CosimError as exc:
            problems += exc.problems
            continue
        if not port.real:
            problems.append(f"{what} is {port.reference}, a {port.type}: a role needs a Real/Float64 scalar")
        elif port.causality not in causalities or (port.causality == "parameter" and port.variability != "tunable"):
            allowed = " or ".join("a tunable parameter" if c == "parameter" else f"an {c}" for c in causalities)
            problems.append(f"{what} is {port.reference} ({port.causality}): it must be {allowed}")
        elif "input" in causalities and (port.fmu, port.name) in driven:
            problems.append(f"{what} is {port.reference}, which is already driven by {driven[(port.fmu, port.name)]}")
        else:
            found[role] = port
    for role in ("current", "voltage"):
        if role not in run.ports:
            problems.append(f"a battery procedure needs UUT_ports.{role} in inter_connection.json")
    if "current" not in found or "voltage" not in found:
        return None
    return RolePorts(found["current"], found["voltage"], found.get("temperature"), found.get("ambient_temperature"))


@dataclass(frozen=True)
class ControlPlan:
    """Where the controller works in a row, and with which conversions."""

    program: Program
    layout: RowLayout
    conversions: Conversions
    allow_external: bool
    record_column: int
    initial_ambient_raw: float  # NaN: the FMU keeps its own start value


def control_plan(
    system: CosimSystem,
    run: ProcedureRun,
    ports: RolePorts,
    where: dict[tuple[str, str], int],
    first_column: int,
    problems: list[str],
) -> ControlPlan | None:
    """The controller's columns start at ``first_column`` (after the FMUs'); ``where`` maps the
    FMUs' variables to their columns."""

    def convert(port: Port, given: str, declared: str, role: str) -> tuple[float, float]:
        definitions = system.fmus[port.fmu].unit_definitions
        try:
            c = conversion(given, declared, unit_definitions=definitions, what=f"UUT_ports.{role} ({port.reference})")
        except CosimError as exc:
            problems.extend(exc.problems)
            return 1.0, 0.0
        return c.scale, c.offset

    # measured SI = raw * scale + offset
    voltage = convert(ports.voltage, ports.voltage.unit, "V", "voltage")
    temperature = (
        convert(ports.temperature, ports.temperature.unit, "degC", "temperature") if ports.temperature else (1.0, 0.0)
    )
    # command raw = SI * gain + bias; a discharge-positive port gets the BDF current negated
    scale, offset = convert(ports.current, "A", ports.current.unit, "current")
    sign = -1.0 if run.current_sign == "discharge_positive" else 1.0
    ambient = convert(ports.ambient, "degC", ports.ambient.unit, "ambient_temperature") if ports.ambient else (1.0, 0.0)
    if problems:
        return None
    out = tuple(first_column + j for j in range(len(OUT_COLUMNS)))
    layout = RowLayout(
        stride=first_column + len(OUT_COLUMNS),
        time=0,
        voltage=where[(ports.voltage.fmu, ports.voltage.name)],
        temperature=where[(ports.temperature.fmu, ports.temperature.name)] if ports.temperature else -1,
        current_command=where[(ports.current.fmu, ports.current.name)],
        ambient_command=where[(ports.ambient.fmu, ports.ambient.name)] if ports.ambient else -1,
        out=out,
    )
    initial = run.program.initial_ambient_C
    return ControlPlan(
        program=run.program,
        layout=layout,
        conversions=Conversions(
            voltage=voltage, temperature=temperature, current=(sign * scale, offset), ambient=ambient
        ),
        allow_external=run.allow_external,
        record_column=out[OUT_COLUMNS.index(RECORD)],
        initial_ambient_raw=initial * ambient[0] + ambient[1]
        if ports.ambient and not math.isnan(initial)
        else math.nan,
    )


def start_controller(
    plan: ControlPlan, *, tick_s: float, t0: float, current: FmuInput, ambient: FmuInput | None
) -> NativeController:
    """The controller of ``plan``, setting ``current`` (and ``ambient``) in the FMUs itself."""
    return NativeController(
        plan.program,
        plan.layout,
        plan.conversions,
        tick_s=tick_s,
        t0=t0,
        allow_external=plan.allow_external,
        current_input=current,
        ambient_input=ambient,
    )


def end_of(controller: NativeController, code: int, at: float, t0: float) -> tuple[str, str, str]:
    """``(status, end_cause, reason)`` of a run the controller ended with ``code`` at time ``at``."""
    test_time = f"{at - t0:.10g} s"
    state = controller.state
    if code == Code.COMPLETE:
        steps = int(state.step_count)
        return "completed", "procedure_complete", f"the procedure completed at test time {test_time} ({steps} steps)"
    if code == Code.SAFETY:
        trip = controller.trip
        if trip is not None:
            return "failed", "safety_limit", trip_reason(trip, controller.program.safety, t0)
        return "failed", "safety_limit", f"a safety limit tripped at test time {test_time}"
    if code == Code.FMU_ERROR:
        role = "current" if state.fmu_input == 0 else "ambient_temperature"
        return (
            "failed",
            "error",
            f"an FMU refused the {role} the procedure set after test time {test_time} (status {int(state.fmu_status)})",
        )
    if code == Code.EXTERNAL:
        step = int(state.pc)
        op = controller.program.ops[step] if 0 <= step < len(controller.program.ops) else None
        text = (
            controller.program.steps[op.step_id] if op is not None and op.mode is Mode.EXTERNAL else "an external step"
        )
        return (
            "failed",
            "error",
            f"step {text!r} needs a fixture or an operator: only a physical bench can run it (test time {test_time})",
        )
    return "failed", "error", f"the procedure cannot go on at test time {test_time}: the voltage read is not a number"

"""The plan of a run, decided before any binary is loaded: how many steps, which inputs the
profiles drive (in the inputs' units), which parameters are set, what is read at every point and
where in a row of the row buffer it lands, and the stop conditions. Pure; every problem of the
spec is collected and raised together as a :class:`CosimError`.

Row layout: column 0 is the time; then, FMU by FMU in the system's order, its profile inputs,
the columns of the connections that run against the order (loops), and its *block*: the
variables read from it at every point. A block starts with the outputs connected to each later
FMU, grouped per target in the target's input order, so that each group is a contiguous slice
the target's ``fmiSetReal`` reads straight from the row; then the other recorded variables.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fastlims.benches.cosim.control import BDF_ORDER, UNITS, ControlPlan, control_plan, role_ports
from fastlims.benches.cosim.errors import CosimError
from fastlims.benches.cosim.spec import COMPARISONS, SimulationSpec, StopCondition
from fastlims.benches.cosim.system import BOOLEAN_TYPES, INTEGER_TYPES, Connection, CosimSystem, Port
from fastlims.benches.cosim.units import conversion
from fastlims.procedures.native import OUT_COLUMNS

Parameter = tuple[Port, float | int | bool]


def seconds(value: float) -> str:
    """A time as the reasons write it: ``36``, ``0.001``, ``3600.5``."""
    return f"{value:.10g}"


@dataclass
class Group:
    """The connections from one FMU into another: one ``fmiSetReal`` (and one read, for a loop)."""

    source: str
    target: str
    connections: list[Connection]
    forward: bool  # the source comes before the target in the order
    column: int = -1  # where the values sit in a row: in the source's block, or own columns for a loop

    @property
    def source_vrs(self) -> list[int]:
        return [c.source.value_reference for c in self.connections]

    @property
    def target_vrs(self) -> list[int]:
        return [c.target.value_reference for c in self.connections]

    @property
    def inputs(self) -> str:
        return ", ".join(c.target.name for c in self.connections)


@dataclass
class Profile:
    """A profile driving one input: its points in seconds from the start, values in the input's
    unit. A ``controlled`` input has no points: the procedure's controller writes its column."""

    port: Port
    column: int
    times: np.ndarray
    values: np.ndarray
    controlled: bool = False


@dataclass
class Condition:
    text: str
    column: int
    compare: Callable[[Any, Any], Any]
    value: float  # in the signal's unit
    unit: str


@dataclass
class Plan:
    order: tuple[str, ...]
    start: float
    step: float
    steps: int
    end_cause: str  # "stop_time" or "profile_end"
    profiles: dict[str, list[Profile]]  # per FMU, in consecutive columns
    groups: dict[str, list[Group]]  # per target FMU
    blocks: dict[str, tuple[int, list[int]]]  # per FMU: first column, value references read at every point
    width: int  # columns of a row
    signals: dict[str, tuple[int, str]]  # recorded signal -> (column, unit), in the results' order
    owners: dict[int, str]  # column -> the signal read into it (an output, or a profile's input)
    conditions: list[Condition]
    parameters: list[Parameter]
    notes: list[str] = field(default_factory=list)
    control: ControlPlan | None = None  # the procedure's controller (spec.procedure), see .control

    def time(self, step: int) -> float:
        """t_k = start + k·h (never accumulated, so no drift)."""
        return self.start + step * self.step


def make_plan(system: CosimSystem, spec: SimulationSpec) -> Plan:
    """The plan of ``spec`` on ``system``; :class:`CosimError` lists every problem."""
    problems: list[str] = []
    notes: list[str] = list(system.warnings)
    steps, end_cause = _steps(spec, problems, notes)
    profiles = _profiles(system, spec, problems, notes)
    parameters = _parameters(system, spec, problems)
    wanted = _recorded(system, spec, problems, notes)
    conditions = _condition_ports(system, spec, wanted, problems)
    roles = role_ports(system, spec.procedure, problems) if spec.procedure is not None else None
    if roles is not None:
        profiled = {(port.fmu, port.name) for port, *_ in profiles}
        for port in roles.driven:
            if (port.fmu, port.name) in profiled:
                problems.append(
                    f"custom_profile drives {port.reference}, which the procedure drives (a UUT_ports role)"
                )
        empty = np.zeros(0)
        profiles += [(port, empty, empty, True) for port in roles.driven]
        for port in roles.watched:
            if port not in wanted[port.fmu]:
                wanted[port.fmu].append(port)
        end_cause = "timeout"  # reaching stop_time: the procedure did not end in time
    if problems:
        raise CosimError(problems)
    groups = _groups(system)
    plan = Plan(system.order, spec.start_time, spec.step_size, steps, end_cause, {}, groups, {}, 0, {}, {}, [],
                parameters, notes)  # fmt: skip
    where = _layout(plan, system, profiles, wanted)
    mapped = set() if roles is None else {(p.fmu, p.name) for p in (*roles.driven, *roles.watched)}
    if roles is not None and spec.procedure is not None:
        plan.control = control_plan(system, spec.procedure, roles, where, plan.width, problems)
        if plan.control is None:
            raise CosimError(problems)
        for name in BDF_ORDER:  # the controller's columns first, in the Battery Data Format's names
            index = OUT_COLUMNS.index(name)
            if name == "Temperature T1 / degC" and roles.temperature is None:
                continue
            if name == "Ambient Temperature / degC" and roles.ambient is None:
                continue
            plan.signals[name] = (plan.control.layout.out[index], UNITS[name])
        plan.owners.update({column: OUT_COLUMNS[j] for j, column in enumerate(plan.control.layout.out)})
        plan.width = plan.control.layout.stride
    for name, fmu in system.fmus.items():  # results: FMU by FMU, variables in model-description order
        for port in fmu.ports.values():
            if (name, port.name) in where and (name, port.name) not in mapped:
                plan.signals[port.signal] = (where[(name, port.name)], port.unit)
    for condition, port in conditions:
        if (port.fmu, port.name) not in where:
            problems.append(f"stop condition {condition}: input {port.reference} is not driven, so it never changes")
            continue
        what = f"stop condition {condition}"
        try:
            convert = conversion(
                condition.unit, port.unit, unit_definitions=system.fmus[port.fmu].unit_definitions, what=what
            )
        except CosimError as exc:
            problems += exc.problems
            continue
        column = where[(port.fmu, port.name)]
        plan.conditions.append(
            Condition(str(condition), column, COMPARISONS[condition.op], convert(condition.value), port.unit)
        )
    if problems:
        raise CosimError(problems)
    return plan


def _steps(spec: SimulationSpec, problems: list[str], notes: list[str]) -> tuple[int, str]:
    end = spec.end_time()
    ratio = (end - spec.start_time) / spec.step_size
    steps = int(math.floor(ratio + 1e-9 * max(1.0, ratio)))  # 300 s / 1 ms is 299999.99999999994
    if steps < 1:
        problems.append(f"step_size {spec.step_size} s is longer than the run ({seconds(end - spec.start_time)} s)")
    elif end - (spec.start_time + steps * spec.step_size) > 1e-9 * max(1.0, abs(end)):
        last = spec.start_time + steps * spec.step_size
        notes.append(f"the run ends at t={seconds(last)} s, the last whole step before {seconds(end)} s")
    return steps, "stop_time" if spec.stop_time is not None and end == spec.stop_time else "profile_end"


def _profiles(
    system: CosimSystem, spec: SimulationSpec, problems: list[str], notes: list[str]
) -> list[tuple[Port, np.ndarray, np.ndarray, bool]]:
    driven = {(c.target.fmu, c.target.name): c.source.reference for c in system.connections}
    found: list[tuple[Port, np.ndarray, np.ndarray, bool]] = []
    for profile in spec.profiles:
        what = f"custom_profile {profile.Name!r}"
        if profile.type != "input":
            notes.append(f"{what} has type {profile.type!r}: a reference trace, not applied to the simulation")
            continue
        try:
            port = system.resolve_input(profile.Name, what="custom_profile Name")
            if not port.real:
                raise CosimError([f"{what} drives {port.reference}, a {port.type}; profiles drive Real/Float64 inputs"])
            if (port.fmu, port.name) in driven:
                raise CosimError(
                    [f"{what} drives {port.reference}, which is already driven by {driven[(port.fmu, port.name)]}"]
                )
            driven[(port.fmu, port.name)] = what
            convert = conversion(
                profile.unit, port.unit, unit_definitions=system.fmus[port.fmu].unit_definitions, what=what
            )
        except CosimError as exc:
            problems += exc.problems
            continue
        times = np.array([p.timestamp for p in profile.values], dtype=float)
        values = np.asarray(convert(np.array([p.value for p in profile.values], dtype=float)), dtype=float)
        found.append((port, times, values, False))
    return found


def _parameters(system: CosimSystem, spec: SimulationSpec, problems: list[str]) -> list[Parameter]:
    """The DoE run's values: ``FMU.name``, or a bare name set in every FMU that declares it."""
    found: list[Parameter] = []
    for name, value in spec.parameters.items():
        if "/" in name or any(name.startswith(f"{f}.") for f in system.fmus):
            try:
                targets = [system.resolve(name, what="parameter")]
            except CosimError as exc:
                problems += exc.problems
                continue
        else:
            targets = [f.ports[name] for f in system.fmus.values() if name in f.ports]
            if not targets:
                settable = sorted(
                    {p.name for f in system.fmus.values() for p in f.ports.values() if p.causality == "parameter"}
                )
                close = difflib.get_close_matches(name, settable, n=3)
                hint = (
                    f"did you mean {', '.join(close)}?"
                    if close
                    else f"parameters: {', '.join(settable[:15]) or 'none'}"
                )
                problems.append(f"parameter {name!r}: no FMU declares it; {hint}")
                continue
        for port in targets:
            problem = _parameter_problem(port, value)
            if problem:
                problems.append(problem)
            else:
                found.append((port, value))
    return found


def _parameter_problem(port: Port, value: float | int | bool) -> str | None:
    if port.causality != "parameter" or port.variability not in ("fixed", "tunable"):
        return (
            f"parameter {port.signal}: it has causality={port.causality!r}, variability={port.variability!r}; "
            "only causality 'parameter' with variability 'fixed' or 'tunable' can be set per run"
        )
    if port.dimensions:
        return f"parameter {port.signal} is an array; only scalar parameters can be set"
    if port.type in INTEGER_TYPES and float(value) != int(value):
        return f"parameter {port.signal} is {port.type}: {value!r} is not a whole number"
    if port.type not in INTEGER_TYPES | BOOLEAN_TYPES | {"Real", "Float64", "Float32"}:
        return (
            f"parameter {port.signal} is {port.type}; a number sets Real, Float, Integer, Enumeration or Boolean ones"
        )
    return None


def _recorded(
    system: CosimSystem, spec: SimulationSpec, problems: list[str], notes: list[str]
) -> dict[str, list[Port]]:
    wanted: dict[str, list[Port]] = {name: [] for name in system.order}
    if spec.outputs is None:
        for name in system.order:
            outputs = system.fmus[name].outputs()
            wanted[name] = [p for p in outputs if p.real]
            skipped = [p.name for p in outputs if not p.real]
            if skipped:
                notes.append(f"FMU {name!r}: outputs {', '.join(skipped)} are not Real/Float64 scalars: not recorded")
        return wanted
    for reference in spec.outputs:
        try:
            port = system.resolve(reference, what="output to record")
        except CosimError as exc:
            problems += exc.problems
            continue
        if not port.real:
            problems.append(f"output to record {reference!r} is {port.type}; only Real/Float64 scalars are recorded")
        elif port not in wanted[port.fmu]:
            wanted[port.fmu].append(port)
    return wanted


def _condition_ports(
    system: CosimSystem, spec: SimulationSpec, wanted: dict[str, list[Port]], problems: list[str]
) -> list[tuple[StopCondition, Port]]:
    found: list[tuple[StopCondition, Port]] = []
    for condition in spec.stop_conditions:
        try:
            port = system.resolve(condition.signal, what="stop condition signal")
        except CosimError as exc:
            problems += exc.problems
            continue
        if not port.real:
            problems.append(f"stop condition {condition}: {port.reference} is {port.type}, not a Real/Float64 scalar")
            continue
        found.append((condition, port))
        if port.causality != "input" and port not in wanted[port.fmu]:
            wanted[port.fmu].append(port)  # a condition's signal is always read, hence recorded
    return found


def _groups(system: CosimSystem) -> dict[str, list[Group]]:
    position = {name: i for i, name in enumerate(system.order)}
    groups: dict[str, list[Group]] = {name: [] for name in system.order}
    by_pair: dict[tuple[str, str], Group] = {}
    for connection in system.connections:
        pair = (connection.source.fmu, connection.target.fmu)
        if pair not in by_pair:
            by_pair[pair] = Group(pair[0], pair[1], [], forward=position[pair[0]] < position[pair[1]])
            groups[pair[1]].append(by_pair[pair])
        by_pair[pair].connections.append(connection)
    return groups


def _layout(
    plan: Plan,
    system: CosimSystem,
    profiles: list[tuple[Port, np.ndarray, np.ndarray, bool]],
    wanted: dict[str, list[Port]],
) -> dict[tuple[str, str], int]:
    """Assign the row's columns (see the module docstring); returns variable -> column."""
    where: dict[tuple[str, str], int] = {}
    column = 1  # 0 is the time

    def place(port: Port, owner: str) -> None:
        nonlocal column
        where.setdefault((port.fmu, port.name), column)
        plan.owners[column] = owner
        column += 1

    for index, name in enumerate(plan.order):
        plan.profiles[name] = []
        for port, times, values, controlled in profiles:
            if port.fmu == name:
                plan.profiles[name].append(Profile(port, column, times, values, controlled))
                place(port, port.signal)
        for group in plan.groups[name]:
            if not group.forward:  # a loop: read from the source during the exchange into own columns
                group.column = column
                for c in group.connections:
                    place(c.target, c.source.signal)
        block_start = column
        vrs: list[int] = []
        for target in plan.order[index + 1 :]:
            for group in plan.groups[target]:
                if group.source == name:
                    group.column = column
                    for c in group.connections:
                        where.setdefault((c.source.fmu, c.source.name), column)
                        place(c.target, c.source.signal)
                        vrs.append(c.source.value_reference)
        for port in wanted[name]:
            if (port.fmu, port.name) not in where:
                place(port, port.signal)
                vrs.append(port.value_reference)
        plan.blocks[name] = (block_start, vrs)
    plan.width = column
    return where

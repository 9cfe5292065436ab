"""UUT port roles: which FMU ports of an upload set are the unit under test's current, voltage,
temperature, ... (the Digital Twin's side of the procedure contract).

``inter_connection.json`` may declare, beside ``FMU_signal_connections``::

    "UUT_ports": {"current": "cycler/current_setpoint", "voltage": "battery_cell/V",
                  "temperature": "battery_cell/T", "soc": "battery_cell/SOC",
                  "ambient_temperature": "battery_cell/T_ambient_K"},
    "current_sign": "discharge_positive"

A battery procedure drives the ``current`` (or ``power``) input and watches the outputs.
:func:`check_uut_ports` checks the declaration at upload; a set without ``UUT_ports`` is still
accepted (partners from before the roles), and whoever needs the roles later asks
:func:`required_ports_problem`. Pure: data in, data out; intake must not import the benches, so
the few units a role accepts live here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from fastlims.intake.interface import FmuInterface, FmuVariable, Problem

PORT_KEYS = ("UUT_ports", "current_sign")
CURRENT_SIGNS = ("charge_positive", "discharge_positive")
REQUIRED_ROLES = ("current", "voltage")
# The same shape as a connection's references (fastlims.requests.variables.SIGNAL_REFERENCE).
PORT_REFERENCE = re.compile(r"^[^/\s][^/]*/[^/]+$")
MAX_REFERENCE_LENGTH = 400
FLOAT_TYPES = frozenset({"Real", "Float32", "Float64"})
TUNABLE_PARAMETER = "tunable parameter"


@dataclass(frozen=True)
class Role:
    """What a role's port must be: its causality (``input``, ``output`` or a tunable parameter),
    the quantity its unit measures, and a sentence for the docs and the JSON Schema."""

    name: str
    causalities: tuple[str, ...]
    quantity: str
    description: str


ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role(
            "current",
            ("input",),
            "current",
            "Required. The UUT current the procedure drives: an FMU input (A, mA, kA or no unit) that no"
            " connection drives; its sign follows current_sign.",
        ),
        Role(
            "voltage",
            ("output",),
            "voltage",
            "Required. The UUT terminal voltage: an FMU output (V, mV, kV or no unit).",
        ),
        Role(
            "temperature",
            ("output",),
            "temperature",
            "The UUT (cell, module or pack) temperature: an FMU output (K, degC or no unit).",
        ),
        Role("soc", ("output",), "ratio", "The state of charge: an FMU output (1, % or no unit)."),
        Role(
            "power",
            ("input",),
            "power",
            "Optional. A power set-point input (W, kW, mW or no unit) for constant-power steps and power profiles;"
            " same sign as current.",
        ),
        Role(
            "ambient_temperature",
            ("input", TUNABLE_PARAMETER),
            "temperature",
            "The ambient temperature the procedure sets: an FMU input, or a parameter with variability"
            " 'tunable' (FMI lets it change between steps); K, degC or no unit.",
        ),
    )
}

# unit -> (scale, offset) into the procedures' core unit (A, V, W, degC, fraction): core = value * scale + offset.
# An empty unit means the FMU declares none: the value is taken as already in the core unit.
UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "current": {"": (1.0, 0.0), "A": (1.0, 0.0), "mA": (1e-3, 0.0), "kA": (1e3, 0.0)},
    "voltage": {"": (1.0, 0.0), "V": (1.0, 0.0), "mV": (1e-3, 0.0), "kV": (1e3, 0.0)},
    "power": {"": (1.0, 0.0), "W": (1.0, 0.0), "kW": (1e3, 0.0), "mW": (1e-3, 0.0)},
    "temperature": {"": (1.0, 0.0), "K": (1.0, -273.15), "degC": (1.0, 0.0), "°C": (1.0, 0.0)},
    "ratio": {"": (1.0, 0.0), "1": (1.0, 0.0), "%": (0.01, 0.0)},
}


def to_core_unit(role: str, unit: str) -> tuple[float, float] | None:
    """``(scale, offset)`` turning a value of ``role`` in the FMU's ``unit`` into the procedures'
    unit (A, V, W, degC, state of charge as a fraction); None when the role does not accept it."""
    known = ROLES.get(role)
    return None if known is None else UNITS[known.quantity].get(unit.strip())


def _accepted_units(quantity: str) -> str:
    return ", ".join(u for u in UNITS[quantity] if u and u != "°C") + " or no unit"


def uut_ports(interconnection: object) -> dict[str, str] | None:
    """The role -> ``FMU_name/Port`` mapping an ``inter_connection.json`` document declares, or None
    when it declares none (only string references are returned; the intake has checked the rest)."""
    if not isinstance(interconnection, Mapping):
        return None
    declared = interconnection.get("UUT_ports")
    if not isinstance(declared, Mapping):
        return None
    return {str(role): reference for role, reference in declared.items() if isinstance(reference, str)}


def current_sign(interconnection: object) -> str:
    """``charge_positive`` (the BDF convention) or ``discharge_positive``: how the FMU's ``current``
    (and ``power``) port counts. A document that does not say is taken as ``charge_positive``
    (the intake requires it whenever ``UUT_ports`` is declared)."""
    if isinstance(interconnection, Mapping) and interconnection.get("current_sign") in CURRENT_SIGNS:
        return str(interconnection["current_sign"])
    return CURRENT_SIGNS[0]


def required_ports_problem(interconnection: object, roles: tuple[str, ...] = REQUIRED_ROLES) -> str | None:
    """None when the document maps every role in ``roles``; otherwise the reason a battery procedure
    cannot run on this model set, written for the request's failure reason and the partner."""
    declared = uut_ports(interconnection) or {}
    missing = [role for role in roles if role not in declared]
    if not missing:
        return None
    example = ", ".join(f'"{role}": "FMU_name/Port"' for role in missing)
    start = "declares no UUT_ports" if not declared else f"has no UUT_ports role {', '.join(map(repr, missing))}"
    return (
        f"inter_connection.json {start}: a battery procedure needs the roles {', '.join(roles)} mapped to FMU"
        f' ports ("UUT_ports": {{{example}}}, with "current_sign": "charge_positive" or "discharge_positive");'
        " see docs/partners-upload.md, 'UUT ports'"
    )


# --- the check at upload -------------------------------------------------------------------------


def check_uut_ports(
    file: str,
    document: Mapping[str, object],
    fmus: Mapping[str, FmuInterface | None],
    driven_inputs: frozenset[str] | set[str],
) -> list[Problem]:
    """Every problem of the ``UUT_ports`` / ``current_sign`` part of ``document``.

    ``fmus`` maps FMU names to their interface (None: unreadable, its references are not checked
    further); ``driven_inputs`` are the ``InSignalReference`` s of the connections.
    """
    problems: list[Problem] = []
    sign = document.get("current_sign")
    if sign is not None and sign not in CURRENT_SIGNS:
        problems.append(
            Problem(file, None, f"current_sign {sign!r} must be one of {', '.join(CURRENT_SIGNS)}", "current-sign")
        )
    if "UUT_ports" not in document:
        return problems
    declared = document["UUT_ports"]
    if not isinstance(declared, Mapping):
        message = f"UUT_ports must be an object mapping roles ({', '.join(ROLES)}) to 'FMU_name/Port'"
        return [*problems, Problem(file, None, message, "port-role")]
    if sign is None:
        problems.append(
            Problem(
                file,
                None,
                "UUT_ports is declared but current_sign is missing: say whether the current port counts"
                " charging as positive (charge_positive, the BDF convention) or discharging (discharge_positive)",
                "current-sign",
            )
        )
    required = " and ".join(REQUIRED_ROLES)
    for role in REQUIRED_ROLES:
        if declared.get(role) is None:
            problems.append(
                Problem(file, None, f"UUT_ports has no {role!r} role: {required} are required", "port-role")
            )
    used: dict[str, str] = {}
    for role, reference in declared.items():
        where = f"UUT_ports.{role}"
        if reference is None and role in ROLES:
            continue  # null: not mapped (the JSON Schema allows it)
        if role not in ROLES:
            problems.append(
                Problem(
                    file,
                    reference if isinstance(reference, str) else None,
                    f"{where}: unknown role {role!r}; the roles are {', '.join(ROLES)}",
                    "port-role",
                )
            )
            continue
        if not _well_formed(reference):
            shown = reference[:80] if isinstance(reference, str) else reference
            problems.append(Problem(file, None, f"{where}: {shown!r} must look like 'FMU_name/Port'", "port-role"))
            continue
        if reference in used:
            problems.append(
                Problem(
                    file,
                    reference,
                    f"{where} {reference!r} is also the {used[reference]} port; each role needs its own port",
                    "port-role",
                )
            )
        used.setdefault(reference, role)
        problems += _check_port(file, ROLES[role], reference, fmus, driven_inputs)
    return problems


def _check_port(
    file: str,
    role: Role,
    reference: str,
    fmus: Mapping[str, FmuInterface | None],
    driven_inputs: frozenset[str] | set[str],
) -> list[Problem]:
    where = f"UUT_ports.{role.name} {reference!r}"
    fmu_name, _, port = reference.partition("/")
    if fmu_name not in fmus:
        known = ", ".join(sorted(fmus)) or "none"
        message = (
            f"{where} names FMU {fmu_name!r}, which is not in the upload set (FMUs: {known};"
            " an FMU's name is its file name without .fmu)"
        )
        return [Problem(file, reference, message, "unknown-fmu")]
    interface = fmus[fmu_name]
    if interface is None:
        return []
    variable = interface.variables.get(port)
    if variable is None:
        return [Problem(file, reference, f"{where}: FMU {fmu_name!r} has no variable {port!r}", "unknown-variable")]
    problems: list[Problem] = []
    kind = _kind(variable)
    if kind not in role.causalities:
        wanted = " or ".join(f"{_article(c)} {c}" for c in role.causalities)
        problems.append(
            Problem(
                file,
                reference,
                f"{where} is {_article(kind)} {kind} variable; the {role.name} role needs {wanted}",
                "port-causality",
            )
        )
    elif kind == "input" and reference in driven_inputs:
        problems.append(
            Problem(
                file,
                reference,
                f"{where} is already driven by a connection in FMU_signal_connections; the procedure must"
                f" drive the {role.name} input itself (map the role to the input no connection drives)",
                "port-driven",
            )
        )
    if variable.type not in FLOAT_TYPES:
        value = variable.type or "untyped"
        problems.append(
            Problem(
                file,
                reference,
                f"{where} is {_article(value)} {value} variable; the {role.name} role needs a real number"
                " (FMI 2 Real, FMI 3 Float32/Float64)",
                "port-type",
            )
        )
    if to_core_unit(role.name, variable.unit) is None:
        problems.append(
            Problem(
                file,
                reference,
                f"{where} has unit {variable.unit!r}; the {role.name} role accepts {_accepted_units(role.quantity)}",
                "port-unit",
            )
        )
    return problems


def _well_formed(reference: object) -> bool:
    if not isinstance(reference, str) or len(reference) > MAX_REFERENCE_LENGTH:
        return False
    return PORT_REFERENCE.match(reference) is not None


def _kind(variable: FmuVariable) -> str:
    if variable.causality == "parameter" and variable.variability == "tunable":
        return TUNABLE_PARAMETER
    if variable.causality == "parameter":
        return f"{variable.variability} parameter"
    return variable.causality


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"

"""The checks on ``inter_connection.json``: pure, every problem found, never an exception for
bad input.

The file is checked against its JSON Schema (:class:`.schemas.InterConnection`, the seed's
``FMU_signal_connections`` shape); every ``FMU_name/Port`` must name an FMU of the set (its file
name without ``.fmu``) and a variable of it; each connection must go from an output to an input
of a compatible type; no input may be driven twice. Its optional ``UUT_ports`` and
``current_sign`` are checked by :mod:`.ports` (role, causality, not driven, unit). The FMUs
themselves, and the whole set, are checked by :mod:`.validation`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from fastlims.intake.interface import FmuInterface, FmuVariable, Problem
from fastlims.intake.ports import PORT_KEYS, check_uut_ports
from fastlims.intake.schemas import InterConnection

__all__ = ["check_interconnection", "compatible"]

_NUMERIC_FAMILIES = {
    "Real": "float",
    "Float32": "float",
    "Float64": "float",
    "Integer": "integer",
    "Int8": "integer",
    "UInt8": "integer",
    "Int16": "integer",
    "UInt16": "integer",
    "Int32": "integer",
    "UInt32": "integer",
    "Int64": "integer",
    "UInt64": "integer",
    "Enumeration": "integer",
    "Boolean": "boolean",
    "String": "string",
    "Binary": "binary",
    "Clock": "clock",
}


def compatible(output_type: str, input_type: str) -> bool:
    """Same kind of value (FMI 2 Real ≈ FMI 3 Float32/Float64, integers and enumerations alike)."""
    out_family = _NUMERIC_FAMILIES.get(output_type, output_type)
    in_family = _NUMERIC_FAMILIES.get(input_type, input_type)
    return out_family == in_family


def check_interconnection(name: str, path: Path, fmus: Mapping[str, FmuInterface | None]) -> list[Problem]:
    """Problems of the interconnection file; ``fmus`` maps FMU names (file name without .fmu) to
    their interface (None when the FMU itself could not be read: its references are not checked
    further, its own problems already say why)."""
    try:
        return _check_interconnection(name, path, fmus)
    except Exception as exc:  # noqa: BLE001 - report, never raise
        return [Problem(name, None, f"could not be checked: {type(exc).__name__}: {exc}", "unreadable")]


def _check_interconnection(name: str, path: Path, fmus: Mapping[str, FmuInterface | None]) -> list[Problem]:
    raw = path.read_bytes()
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [Problem(name, None, f"is not valid JSON: {exc}", "json-invalid")]
    if not isinstance(document, dict):
        return _schema_problems(name, document)
    # The UUT port roles are checked on their own (ports.py), so that a bad role does not hide the
    # connections' problems, nor the reverse.
    port_part = {key: document.pop(key) for key in PORT_KEYS if key in document}
    try:
        parsed = InterConnection.model_validate(document)
    except ValidationError:
        listed = document.get("FMU_signal_connections")
        items = listed if isinstance(listed, list) else []
        driven = {str(c.get("InSignalReference")) for c in items if isinstance(c, dict)}
        return _schema_problems(name, document) + check_uut_ports(name, port_part, fmus, driven)
    problems: list[Problem] = []
    known_fmus = ", ".join(sorted(fmus)) or "none"
    drivers: dict[str, list[str]] = {}

    def resolve(reference: str, role: str) -> FmuVariable | None:
        fmu_name, _, port = reference.partition("/")
        if fmu_name not in fmus:
            problems.append(
                Problem(
                    name,
                    reference,
                    f"{role} {reference!r} names FMU {fmu_name!r}, which is not in the upload set"
                    f" (FMUs: {known_fmus}; an FMU's name is its file name without .fmu)",
                    "unknown-fmu",
                )
            )
            return None
        interface = fmus[fmu_name]
        if interface is None:
            return None
        variable = interface.variables.get(port)
        if variable is None:
            problems.append(
                Problem(
                    name,
                    reference,
                    f"{role} {reference!r}: FMU {fmu_name!r} has no variable {port!r}",
                    "unknown-variable",
                )
            )
        return variable

    for index, connection in enumerate(parsed.FMU_signal_connections):
        source = resolve(connection.OutSignalReference, f"FMU_signal_connections[{index}].OutSignalReference")
        target = resolve(connection.InSignalReference, f"FMU_signal_connections[{index}].InSignalReference")
        drivers.setdefault(connection.InSignalReference, []).append(connection.OutSignalReference)
        if source is not None and source.causality != "output":
            problems.append(
                Problem(
                    name,
                    connection.OutSignalReference,
                    f"FMU_signal_connections[{index}]: {connection.OutSignalReference!r} is an"
                    f" {source.causality} variable; a connection must start at an output",
                    "direction",
                )
            )
        if target is not None and target.causality != "input":
            problems.append(
                Problem(
                    name,
                    connection.InSignalReference,
                    f"FMU_signal_connections[{index}]: {connection.InSignalReference!r} is an"
                    f" {target.causality} variable; a connection must end at an input",
                    "direction",
                )
            )
        if source is not None and target is not None and not compatible(source.type, target.type):
            problems.append(
                Problem(
                    name,
                    connection.InSignalReference,
                    f"FMU_signal_connections[{index}]: cannot connect {connection.OutSignalReference!r}"
                    f" ({source.type}) to {connection.InSignalReference!r} ({target.type}): incompatible types",
                    "type",
                )
            )
    for target_reference, sources in drivers.items():
        if len(sources) > 1:
            problems.append(
                Problem(
                    name,
                    target_reference,
                    f"input {target_reference!r} is driven {len(sources)} times (by {', '.join(sources)});"
                    " an input takes exactly one source",
                    "driven-twice",
                )
            )
    return problems + check_uut_ports(name, port_part, fmus, set(drivers))


def _schema_problems(name: str, document: object) -> list[Problem]:
    try:
        InterConnection.model_validate(document)
    except ValidationError as exc:
        return [
            Problem(
                name,
                None,
                f"does not match the inter_connection.json schema: {_location(error['loc']) or 'document'}:"
                f" {error['msg'].removeprefix('Value error, ')}",
                "schema",
            )
            for error in exc.errors()
        ]
    return []


def _location(loc: tuple[object, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text

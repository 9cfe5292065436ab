"""Loading a co-simulation system: the FMUs (FMI 2.0 and 3.0 co-simulation), their variables, and
the connections of ``inter_connection.json`` validated against both.

An FMU's name is its file name without ``.fmu`` (the seed's ``FMU_name/Port`` convention); a
signal is written ``FMU.variable`` (results, stop conditions) or ``FMU/variable`` (the seed's
connections); both forms are accepted everywhere.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fmpy
from fmpy import read_model_description
from pydantic import ValidationError

from fastlims.benches.cosim.errors import CosimError
from fastlims.messaging.variables import SignalConnection

FMI_VERSIONS = ("2.0", "3.0")
REAL_TYPES = frozenset({"Real", "Float64"})
INTEGER_TYPES = frozenset(
    {"Integer", "Enumeration", "Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64"}
)
BOOLEAN_TYPES = frozenset({"Boolean"})


@dataclass(frozen=True)
class Port:
    """One variable of one FMU of the system."""

    fmu: str
    name: str
    value_reference: int
    causality: str
    variability: str
    type: str
    unit: str
    start: str | None
    initial: str | None
    dimensions: bool = False

    @property
    def signal(self) -> str:
        """``FMU.variable``: the name of this variable's column in results and metrics."""
        return f"{self.fmu}.{self.name}"

    @property
    def reference(self) -> str:
        """``FMU/variable``: the seed's signal reference."""
        return f"{self.fmu}/{self.name}"

    @property
    def real(self) -> bool:
        return self.type in REAL_TYPES and not self.dimensions


@dataclass(frozen=True)
class Connection:
    """``source`` (an output) drives ``target`` (an input of another or the same FMU)."""

    source: Port
    target: Port

    def __str__(self) -> str:
        return f"{self.source.reference} -> {self.target.reference}"


@dataclass
class LoadedFmu:
    """One FMU of a system: its model description, and where it was unpacked."""

    name: str
    path: Path
    fmi_version: str
    model_description: Any
    unzip_dir: Path
    library_path: Path
    ports: dict[str, Port] = field(default_factory=dict)

    @property
    def model_identifier(self) -> str:
        return str(self.model_description.coSimulation.modelIdentifier)

    @property
    def token(self) -> str:
        """The guid (FMI 2) or instantiationToken (FMI 3)."""
        md = self.model_description
        return str(md.guid if self.fmi_version == "2.0" else (md.instantiationToken or md.guid))

    @property
    def unit_definitions(self) -> list[Any]:
        return list(self.model_description.unitDefinitions or [])

    def outputs(self) -> list[Port]:
        return [p for p in self.ports.values() if p.causality == "output"]

    def inputs(self) -> list[Port]:
        return [p for p in self.ports.values() if p.causality == "input"]

    def describe(self) -> dict[str, Any]:
        """What results metadata records about this FMU."""
        md = self.model_description
        return {
            "file": self.path.name,
            "fmi_version": self.fmi_version,
            "model_name": md.modelName,
            "model_identifier": self.model_identifier,
            "token": self.token,
            "generation_tool": md.generationTool,
            "version": md.version,
        }


def _port(fmu: str, variable: Any) -> Port:
    declared = getattr(variable, "declaredType", None)
    unit = getattr(variable, "unit", None) or (getattr(declared, "unit", None) if declared is not None else None)
    return Port(
        fmu=fmu,
        name=str(variable.name),
        value_reference=int(variable.valueReference),
        causality=str(variable.causality or "local"),
        variability=str(variable.variability or "continuous"),
        type=str(variable.type),
        unit=str(unit or ""),
        start=None if variable.start is None else str(variable.start),
        initial=None if variable.initial is None else str(variable.initial),
        dimensions=bool(getattr(variable, "dimensions", None)),
    )


def _load_one(name: str, path: Path, work: Path, problems: list[str]) -> LoadedFmu | None:
    where = f"FMU {name!r} ({path})"
    if not path.is_file():
        problems.append(f"{where}: the file does not exist")
        return None
    if not zipfile.is_zipfile(path):
        problems.append(f"{where}: not an FMU (an FMU is a ZIP archive); was the upload complete?")
        return None
    try:
        description = read_model_description(str(path), validate=False)
    except Exception as exc:  # noqa: BLE001 - FMPy raises bare Exceptions for broken descriptions
        problems.append(f"{where}: its modelDescription.xml cannot be read: {exc}")
        return None
    version = str(description.fmiVersion)
    if version not in FMI_VERSIONS:
        problems.append(f"{where}: FMI {version} is not supported; the master runs FMI 2.0 and 3.0 co-simulation FMUs")
        return None
    if description.coSimulation is None:
        problems.append(
            f"{where}: it is not a co-simulation FMU (no <CoSimulation> element); ask for a co-simulation export"
        )
        return None
    unzip_dir = Path(tempfile.mkdtemp(prefix=f"{name[:40]}-", dir=work))
    try:
        fmpy.extract(str(path), str(unzip_dir))
    except Exception as exc:  # noqa: BLE001 - zipfile/FMPy errors: report, keep loading the others
        problems.append(f"{where}: cannot be unpacked: {exc}")
        return None
    platform = fmpy.platform if version == "2.0" else fmpy.platform_tuple
    identifier = description.coSimulation.modelIdentifier
    library = unzip_dir / "binaries" / platform / f"{identifier}{fmpy.sharedLibraryExtension}"
    if not library.is_file():
        found = sorted(p.name for p in (unzip_dir / "binaries").glob("*") if p.is_dir())
        problems.append(
            f"{where}: no binary for this machine: needs binaries/{platform}/{identifier}{fmpy.sharedLibraryExtension}"
            f", the FMU has {', '.join(found) or 'no binaries'} (ask the Digital Twin for a {platform} build)"
        )
        return None
    fmu = LoadedFmu(name, path, version, description, unzip_dir, library)
    fmu.ports = {str(v.name): _port(name, v) for v in description.modelVariables}
    return fmu


def _fmu_paths(fmus: Mapping[str, Path | str] | Iterable[Path | str], problems: list[str]) -> dict[str, Path]:
    if isinstance(fmus, Mapping):
        named = {str(k): Path(v) for k, v in fmus.items()}
    else:
        named = {}
        for item in fmus:
            path = Path(item)
            name = path.name[: -len(".fmu")] if path.name.lower().endswith(".fmu") else path.stem
            if name in named:
                problems.append(f"two FMUs are named {name!r} ({named[name]} and {path}): FMU names must be unique")
            named[name] = path
    for name in named:
        if not name.strip() or "/" in name or name != name.strip():
            problems.append(f"FMU name {name!r} cannot be used in 'FMU/Port' references (empty, '/' or spaces)")
    return named


def _connection_items(connections: object) -> list[object]:
    if connections is None:
        return []
    if isinstance(connections, Mapping):  # the whole inter_connection.json document
        return list(connections.get("FMU_signal_connections") or [])
    if isinstance(connections, Iterable) and not isinstance(connections, str | bytes):
        return list(connections)
    raise CosimError(
        [f"connections must be a list of connections or an inter_connection.json document, not {connections!r}"]
    )


class CosimSystem:
    """The FMUs of one co-simulation and their validated connections: plain data (and lookups),
    a context manager that deletes the unpacked FMUs.

    Build it with :func:`load_system`. ``order`` is the FMUs in topological order of the
    connections (an FMU after those that drive it; the given order breaks ties and loops);
    ``warnings`` lists what the master tolerates but a reader should know (unit mismatches,
    loops). :func:`fastlims.benches.cosim.run` simulates it; it may run many times (one DoE run
    each). Named apart from ``fastlims.system.System``, the running LIMS.
    """

    def __init__(self, fmus: dict[str, LoadedFmu], connections: list[Connection], work_dir: Path, owns_work: bool):
        self.fmus = fmus
        self.connections = tuple(connections)
        self.order, self.warnings = _order(list(fmus), self.connections)
        self._work_dir = work_dir
        self._owns_work = owns_work

    # -- lookup --

    def resolve(self, reference: str, *, what: str = "signal") -> Port:
        """The variable ``FMU.variable`` or ``FMU/variable``; :class:`CosimError` explains a miss."""
        fmu, variable = self._split(reference, what)
        return self._variable(fmu, variable, what, reference)

    def resolve_input(self, name: str, *, what: str) -> Port:
        """An input by ``FMU/Port``, ``FMU.Port`` or, when only one FMU has it, the bare port name."""
        if "/" in name or any(name.startswith(f"{f}.") for f in self.fmus):
            port = self.resolve(name, what=what)
        else:
            matches = [p for f in self.fmus.values() for p in f.inputs() if p.name == name]
            if len(matches) > 1:
                raise CosimError(
                    [f"{what} {name!r} is an input of several FMUs ({', '.join(p.reference for p in matches)}): "
                     "name it 'FMU_name/Port'"]
                )  # fmt: skip
            if not matches:
                every = [p.reference for f in self.fmus.values() for p in f.inputs()]
                raise CosimError(
                    [
                        f"{what} {name!r} names no FMU input; name it 'FMU_name/Port', "
                        f"one of: {', '.join(every) or 'none'}"
                    ]
                )
            port = matches[0]
        if port.causality != "input":
            raise CosimError(
                [f"{what} {port.reference} is a {port.causality}, not an input: only inputs can be driven"]
            )
        return port

    def _split(self, reference: str, what: str) -> tuple[str, str]:
        if "/" in reference:
            fmu, _, variable = reference.partition("/")
            return fmu, variable
        candidates = [f for f in self.fmus if reference.startswith(f"{f}.")]
        if not candidates:
            raise CosimError(
                [f"{what} {reference!r} names no FMU: write 'FMU.variable' with one of {', '.join(self.fmus)}"]
            )
        fmu = max(candidates, key=len)
        return fmu, reference[len(fmu) + 1 :]

    def _variable(self, fmu: str, variable: str, what: str, reference: str) -> Port:
        loaded = self.fmus.get(fmu)
        if loaded is None:
            close = difflib.get_close_matches(fmu, list(self.fmus), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise CosimError([f"{what} {reference!r}: no FMU named {fmu!r}; {hint}FMUs: {', '.join(self.fmus)}"])
        port = loaded.ports.get(variable)
        if port is None:
            close = difflib.get_close_matches(variable, list(loaded.ports), n=3)
            outputs = [p.name for p in loaded.outputs()]
            hint = f"did you mean {', '.join(close)}?" if close else f"its outputs: {', '.join(outputs) or 'none'}"
            raise CosimError([f"{what} {reference!r}: FMU {fmu!r} has no variable {variable!r}; {hint}"])
        return port

    def describe(self) -> dict[str, Any]:
        return {name: fmu.describe() for name, fmu in self.fmus.items()}

    def default_step_size(self) -> float | None:
        """The smallest ``DefaultExperiment/@stepSize`` the FMUs suggest, or None: a fallback for a
        test that names no communication step."""
        sizes = []
        for fmu in self.fmus.values():
            experiment = fmu.model_description.defaultExperiment
            with contextlib.suppress(TypeError, ValueError):
                size = float(experiment.stepSize) if experiment is not None and experiment.stepSize else math.nan
                if math.isfinite(size) and size > 0:
                    sizes.append(size)
        return min(sizes) if sizes else None

    def close(self) -> None:
        """Delete the unpacked FMUs (instances are freed by each run)."""
        if self._owns_work:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        else:
            for fmu in self.fmus.values():
                shutil.rmtree(fmu.unzip_dir, ignore_errors=True)

    def __enter__(self) -> CosimSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _order(names: list[str], connections: Sequence[Connection]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Topological order of the FMUs along the connections; ties and loops keep the given order."""
    drivers: dict[str, set[str]] = {n: set() for n in names}
    for c in connections:
        if c.source.fmu != c.target.fmu:
            drivers[c.target.fmu].add(c.source.fmu)
    order: list[str] = []
    warnings: list[str] = []
    remaining = list(names)
    while remaining:
        ready = [n for n in remaining if not (drivers[n] - set(order))]
        if ready:
            chosen = ready[0]
        else:
            loop = [n for n in remaining if drivers[n] - set(order)]
            chosen = loop[0]
            warnings.append(
                f"the connections form a loop through {', '.join(loop)}: {chosen} runs first, so its inputs from "
                f"{', '.join(sorted(drivers[chosen] - set(order)))} take the value of the previous communication point"
            )
        order.append(chosen)
        remaining.remove(chosen)
    for c in connections:
        if c.source.fmu == c.target.fmu:
            warnings.append(f"{c} connects an FMU to itself: the input takes the value of the previous point")
    return tuple(order), tuple(warnings)


def _connections(
    fmus: dict[str, LoadedFmu], items: list[object], problems: list[str], warnings: list[str]
) -> list[Connection]:
    found: list[Connection] = []
    driven: dict[tuple[str, str], str] = {}
    for index, item in enumerate(items):
        where = f"connection {index + 1}"
        try:
            connection = item if isinstance(item, SignalConnection) else SignalConnection.model_validate(item)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
            problems.append(
                f"{where}: {detail} (expected {{'InSignalReference': 'FMU/Port', 'OutSignalReference': 'FMU/Port'}})"
            )
            continue
        where = f"{where} ({connection.OutSignalReference} -> {connection.InSignalReference})"
        ends: list[Port | None] = []
        for reference, causality in (
            (connection.OutSignalReference, "output"),
            (connection.InSignalReference, "input"),
        ):
            fmu_name, _, variable = reference.partition("/")
            fmu = fmus.get(fmu_name)
            if fmu is None:
                close = difflib.get_close_matches(fmu_name, list(fmus), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                problems.append(f"{where}: no FMU named {fmu_name!r}; {hint}FMUs: {', '.join(fmus) or 'none'}")
                ends.append(None)
                continue
            port = fmu.ports.get(variable)
            if port is None:
                candidates = [p.name for p in fmu.ports.values() if p.causality == causality]
                close = difflib.get_close_matches(variable, candidates, n=3)
                listed = (
                    f"did you mean {', '.join(close)}?"
                    if close
                    else f"its {causality}s: {', '.join(candidates) or 'none'}"
                )
                problems.append(f"{where}: FMU {fmu_name!r} has no variable {variable!r}; {listed}")
                ends.append(None)
                continue
            if port.causality != causality:
                side = "OutSignalReference" if causality == "output" else "InSignalReference"
                problems.append(f"{where}: {side} {reference} is a {port.causality}, it must be an {causality}")
                ends.append(None)
                continue
            if not port.real:
                problems.append(
                    f"{where}: {reference} is {'an array' if port.dimensions else port.type}; only scalar Real/Float64 "
                    "signals can be connected"
                )
                ends.append(None)
                continue
            ends.append(port)
        source, target = ends
        if source is None or target is None:
            continue
        key = (target.fmu, target.name)
        if key in driven:
            problems.append(
                f"{where}: input {target.reference} is already driven by {driven[key]}; an input takes one driver"
            )
            continue
        driven[key] = source.reference
        if source.unit and target.unit and source.unit != target.unit:
            warnings.append(
                f"{source.reference} is in {source.unit!r} but {target.reference} expects {target.unit!r}: "
                "connected as is, without conversion"
            )
        found.append(Connection(source, target))
    return found


def load_system(
    fmus: Mapping[str, Path | str] | Iterable[Path | str],
    connections: object = (),
    *,
    work_dir: Path | None = None,
) -> CosimSystem:
    """Load the FMUs and validate the connections between them.

    ``fmus``: paths (each FMU named after its file, without ``.fmu``) or a mapping name → path.
    ``connections``: the seed's ``FMU_signal_connections`` (dicts or
    :class:`~fastlims.messaging.variables.SignalConnection`), or the whole ``inter_connection.json``
    document. Each FMU is unpacked into ``work_dir`` (default: a new temporary folder, deleted by
    :meth:`CosimSystem.close`); no binary is loaded until a run. Raises :class:`CosimError` listing
    every problem: missing or broken files, FMI versions other than 2.0/3.0, no binary for this
    platform, unknown FMUs or variables, a connection that does not go output → input, an input
    driven twice, non-Real signals.
    """
    problems: list[str] = []
    paths = _fmu_paths(fmus, problems)
    if not paths and not problems:
        problems.append("no FMU given: a system needs at least one .fmu")
    owns_work = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="fastlims-cosim-")) if work_dir is None else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    loaded: dict[str, LoadedFmu] = {}
    for name, path in paths.items():
        fmu = _load_one(name, path, work, problems)
        if fmu is not None:
            loaded[name] = fmu
    warnings: list[str] = []
    connections_found: list[Connection] = []
    if not problems:
        connections_found = _connections(loaded, _connection_items(connections), problems, warnings)
    system = CosimSystem(loaded, connections_found, work, owns_work)
    if problems:
        system.close()
        raise CosimError(problems)
    system.warnings = (*warnings, *system.warnings)
    return system

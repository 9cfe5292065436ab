"""Compile the test FMUs from the C sources in ``src/`` and package them as ``.fmu`` files.

Every model is ``src/<model>.c`` plus ``src/<model>.fmi2.xml`` and ``src/<model>.fmi3.xml``
(model-description templates), linked with the shared ``instance.c`` and the adapter of the
FMI version (``fmi2_adapter.c`` / ``fmi3_adapter.c``). The fault variants ``<model>_crash``,
``<model>_error`` and ``<model>_nan`` are the same sources, ``instance.c`` compiled with a
``FAULT_*`` define, and one more parameter, ``fault_time_s``.

``start_values`` give parameters other start values than the template's (a Digital Twin choosing
a model's parameters for a unit under test): they are written into the model description's
``start`` attributes and compiled into the binary's generated ``token.c``, which ``instance.c``
applies over the model's own start values, so both agree as FMI requires.

Builds are cached under a hash of everything that goes into them (sources, templates, FMI
headers, compiler, flags, start values, this file): each object file once (``objects/``), each
finished ``.fmu`` once. A cached build is a file copy; a new model or variant only compiles what it
does not share (the token and the link take ~0.1 s).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import fmpy

SOURCE_DIR = Path(__file__).parent / "src"
FMI_VERSIONS = ("2.0", "3.0")
FAULTS = {
    "crash": "FAULT_CRASH",  # doStep writes to an invalid address (SIGSEGV) in the step passing fault_time_s
    "error": "FAULT_ERROR",  # doStep returns fmi2Error / fmi3Error in the step passing fault_time_s
    "nan": "FAULT_NAN",  # every Float64 output reads NaN once the time is past fault_time_s
}
FAULT_TIME_VR = 900  # value reference of fault_time_s, also VR_FAULT_TIME in instance.h
FAULT_TIME_START_S = 10.0  # also FAULT_TIME_START in instance.c

_FAULT_DESCRIPTIONS = {
    "crash": "crashes the process with SIGSEGV in the doStep that passes fault_time_s",
    "error": "returns an error from the doStep that passes fault_time_s",
    "nan": "outputs NaN once the time is past fault_time_s",
}
_LOCAL_HEADERS = ("model.h", "instance.h")
_FMI_HEADERS = {
    "2.0": ("fmi2Functions.h", "fmi2FunctionTypes.h", "fmi2TypesPlatform.h"),
    "3.0": ("fmi3Functions.h", "fmi3FunctionTypes.h", "fmi3PlatformTypes.h"),
}
_CFLAGS = ("-O2", "-fPIC", "-fvisibility=hidden", "-std=c11")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same build gives the same bytes


class FmuBuildError(RuntimeError):
    """An FMU could not be built: unknown model or version, no compiler, or a compile error."""


def available_models() -> list[str]:
    """Names accepted by :func:`build_fmu`: every model in ``src/`` and its fault variants."""
    names: list[str] = []
    for base in _base_models():
        names.append(base)
        names.extend(f"{base}_{fault}" for fault in FAULTS)
    return sorted(names)


def default_cache_dir() -> Path:
    """``$FASTLIMS_FMU_CACHE``, else ``$XDG_CACHE_HOME/fastlims-fmus``, else ``~/.cache/fastlims-fmus``."""
    if configured := os.environ.get("FASTLIMS_FMU_CACHE"):
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fastlims-fmus"


def build_fmu(
    model: str,
    fmi_version: str,
    out_dir: Path,
    *,
    name: str | None = None,
    cache_dir: Path | None = None,
    start_values: Mapping[str, float] | None = None,
    model_dir: Path | None = None,
) -> Path:
    """Build ``model`` as an FMI ``fmi_version`` ("2.0" or "3.0") co-simulation FMU for this platform.

    Writes ``out_dir/<name>.fmu`` (default name ``<model>_fmi2`` / ``<model>_fmi3``) and
    returns its absolute path. The model identifier (the shared library's name) is ``model``.
    ``start_values`` maps parameter names to the values the FMU starts from instead of the
    template's, e.g. ``{"capacity_Ah": 20.0, "series_cells": 12}`` (each within the parameter's
    declared min/max; an Enumeration's a whole number).
    Compiled objects and FMUs are cached in ``cache_dir`` (default :func:`default_cache_dir`);
    every write is atomic, so parallel builds (threads or processes) are safe.
    ``model_dir``: take ``<model>.c`` and its templates from there instead of ``src/`` (a test's own
    model, e.g. a hostile one; no fault variants), built on the same ``instance.c`` and adapters.
    Raises :class:`FmuBuildError` naming what is wrong (every bad start value at once).
    """
    base, fault = _parse_model(model) if model_dir is None else (model, None)
    models = SOURCE_DIR if model_dir is None else Path(model_dir)
    if fmi_version not in FMI_VERSIONS:
        raise FmuBuildError(f"FMI version {fmi_version!r} is not supported; use one of {', '.join(FMI_VERSIONS)}")
    major = fmi_version[0]
    file_name = f"{name if name is not None else f'{model}_fmi{major}'}.fmu"
    if Path(file_name).name != file_name or file_name.startswith("."):
        raise FmuBuildError(f"FMU name {name!r} must be a plain file name without a directory")

    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    template = models / f"{base}.fmi{major}.xml"
    adapter = SOURCE_DIR / f"fmi{major}_adapter.c"
    model_source = models / f"{base}.c"
    local_headers = [SOURCE_DIR / h for h in _LOCAL_HEADERS]
    fmi_headers = [_header_dir() / h for h in _FMI_HEADERS[fmi_version]]
    instance_source = SOURCE_DIR / "instance.c"
    every_input = [template, adapter, model_source, instance_source, *local_headers, *fmi_headers]
    _require_files(every_input)
    starts = _checked_start_values(template, fmi_version, start_values or {})

    digest = _digest(
        [model, str(fault), fmi_version, _platform(fmi_version), *_compiler(), *_CFLAGS,
         *(f"{start.name}={start.value!r}" for start in starts)],
        [*every_input, Path(__file__)],
    )  # fmt: skip
    cached = cache / f"{model}-fmi{major}-{digest[:20]}.fmu"
    if not cached.is_file():
        objects = [
            _object(adapter, [*local_headers, *fmi_headers], [], cache),
            _object(instance_source, local_headers, [FAULTS[fault]] if fault else [], cache),
            _object(model_source, local_headers, [], cache),
        ]
        token = "{" + str(uuid.UUID(hex=digest[:32])) + "}"
        with tempfile.TemporaryDirectory(prefix="fastlims-fmu-") as work:
            library = _link(Path(work), model, token, objects, starts)
            description = _model_description(template, model, fault, fmi_version, token, starts)
            _write_atomically(cached, _package(description, library, fmi_version))

    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    target = out / file_name
    _write_atomically(target, cached.read_bytes())
    return target


@dataclass(frozen=True)
class _Start:
    """One start value chosen at build time: the variable's name, value reference and value."""

    name: str
    vr: int
    value: float


def _template_variables(root: ET.Element, fmi_version: str) -> dict[str, tuple[ET.Element, ET.Element]]:
    """name -> (the variable's element, the element holding its type attributes) of a template."""
    variables = root.find("ModelVariables")
    found: dict[str, tuple[ET.Element, ET.Element]] = {}
    for element in variables if variables is not None else []:
        if fmi_version == "2.0":
            typed = next(iter(element), None)
            if typed is not None:
                found[element.get("name", "")] = (element, typed)
        else:
            found[element.get("name", "")] = (element, element)
    return found


def _checked_start_values(template: Path, fmi_version: str, values: Mapping[str, float]) -> list[_Start]:
    """The requested start values, checked against the template's declarations (sorted by name)."""
    if not values:
        return []
    root = ET.parse(template).getroot()  # noqa: S314 - our own template from the package
    declared = _template_variables(root, fmi_version)
    problems: list[str] = []
    starts: list[_Start] = []
    for name, value in sorted(values.items()):
        found = declared.get(name)
        if found is None:
            parameters = sorted(n for n, (e, _) in declared.items() if e.get("causality") == "parameter")
            close = difflib.get_close_matches(name, parameters, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"parameters: {', '.join(parameters)}"
            problems.append(f"start value for {name!r}: {template.stem.split('.')[0]} has no such variable; {hint}")
            continue
        element, typed = found
        if element.get("causality") != "parameter":
            problems.append(f"start value for {name!r}: only parameters take a start value at build time, "
                            f"it is {element.get('causality')!r}")  # fmt: skip
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"start value for {name!r} must be a finite number, got {value!r}")
            continue
        kind = typed.tag if fmi_version == "2.0" else element.tag
        if kind == "Enumeration" and value != int(value):
            problems.append(f"start value for {name!r} must be a whole number (an Enumeration), got {value!r}")
            continue
        low, high = typed.get("min"), typed.get("max")
        if low is not None and value < float(low) or high is not None and value > float(high):
            problems.append(f"start value for {name!r} is {value!r}, outside its declared range {low}..{high}")
            continue
        starts.append(_Start(name, int(element.get("valueReference", "0")), float(value)))
    if problems:
        raise FmuBuildError("; ".join(problems))
    return starts


def _base_models() -> list[str]:
    return sorted(
        path.stem
        for path in SOURCE_DIR.glob("*.c")
        if (SOURCE_DIR / f"{path.stem}.fmi2.xml").is_file() and (SOURCE_DIR / f"{path.stem}.fmi3.xml").is_file()
    )


def _parse_model(model: str) -> tuple[str, str | None]:
    bases = _base_models()
    if model in bases:
        return model, None
    for fault in FAULTS:
        suffix = f"_{fault}"
        if model.endswith(suffix) and model[: -len(suffix)] in bases:
            return model[: -len(suffix)], fault
    raise FmuBuildError(f"unknown FMU model {model!r}; available: {', '.join(available_models())}")


def _header_dir() -> Path:
    return Path(fmpy.__file__).parent / "c-code"


def _require_files(paths: Iterable[Path]) -> None:
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FmuBuildError(f"FMU sources are missing: {', '.join(missing)} (is the package installed completely?)")


@functools.cache
def _compiler() -> tuple[str, str]:
    """Path and version line of gcc (looked up once per process)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise FmuBuildError("gcc is not on PATH; the test FMUs are compiled from C sources (apt-get install gcc)")
    # gcc from PATH with arguments built here, never from user input (hence the S603 waivers)
    version = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=False).stdout  # noqa: S603
    return gcc, version.splitlines()[0] if version else "unknown"


def _digest(parts: Iterable[str], files: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() + b"\0")
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _platform(fmi_version: str) -> str:
    return str(fmpy.platform if fmi_version == "2.0" else fmpy.platform_tuple)


def _run_gcc(arguments: list[str], what: str) -> None:
    command = [_compiler()[0], *arguments]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)  # noqa: S603
    if result.returncode != 0:
        raise FmuBuildError(
            f"gcc failed to {what}, exit code {result.returncode}:\n{' '.join(command)}\n{result.stderr.strip()}"
        )


def _object(source: Path, headers: list[Path], defines: list[str], cache: Path) -> Path:
    """The object file of ``source`` compiled with ``defines``, from the cache or compiled now."""
    digest = _digest([*_compiler(), *_CFLAGS, *defines], [source, *headers])
    target = cache / "objects" / f"{source.stem}-{digest[:20]}.o"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".o", dir=target.parent)
        os.close(handle)
        try:
            _run_gcc(
                [*_CFLAGS, f"-I{_header_dir()}", f"-I{SOURCE_DIR}", *(f"-D{d}" for d in defines),
                 "-c", str(source), "-o", temporary],
                f"compile {source.name}",
            )  # fmt: skip
            os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)
    return target


def _link(work: Path, model: str, token: str, objects: list[Path], starts: list[_Start]) -> Path:
    token_source = work / "token.c"
    # Hexadecimal floating literals: the binary starts from exactly the doubles of the description.
    table = ", ".join(f"{{{start.vr}u, {start.value.hex()}}} /* {start.name} */" for start in starts) or "{0u, 0.0}"
    hidden = '__attribute__((visibility("hidden")))'
    token_source.write_text(
        "/* Generated by fastlims.peers.fmus: the token written into this build's model description,\n"
        " * and the start values chosen at build time (instance.h). */\n"
        '#include "instance.h"\n'
        f'{hidden} const char FMU_INSTANTIATION_TOKEN[] = "{token}";\n'
        f"{hidden} const BuiltStartValue FMU_START_VALUES[] = {{{table}}};\n"
        f"{hidden} const size_t FMU_START_VALUE_COUNT = {len(starts)};\n"
    )
    library = work / f"{model}{fmpy.sharedLibraryExtension}"
    _run_gcc(
        [*_CFLAGS, f"-I{SOURCE_DIR}", "-shared", str(token_source), *map(str, objects), "-o", str(library), "-lm"],
        f"link the {model} FMU",
    )
    return library


def _model_description(
    template: Path, model: str, fault: str | None, fmi_version: str, token: str, starts: list[_Start]
) -> bytes:
    tree = ET.parse(template)  # noqa: S314 - our own template from the package, not untrusted input
    root = tree.getroot()
    declared = _template_variables(root, fmi_version)
    for start in starts:
        _, typed = declared[start.name]
        typed.set("start", repr(int(start.value)) if typed.tag == "Enumeration" else repr(start.value))
    root.set("guid" if fmi_version == "2.0" else "instantiationToken", token)
    root.set("modelName", model)
    co_simulation = root.find("CoSimulation")
    variables = root.find("ModelVariables")
    if co_simulation is None or variables is None:
        raise FmuBuildError(f"{template} has no CoSimulation or ModelVariables element")
    co_simulation.set("modelIdentifier", model)
    if fault is not None:
        root.set("description", f"{root.get('description', '')} DELIBERATELY FAULTY: {_FAULT_DESCRIPTIONS[fault]}.")
        attributes = {
            "name": "fault_time_s",
            "valueReference": str(FAULT_TIME_VR),
            "causality": "parameter",
            "variability": "fixed",
            "initial": "exact",
            "description": f"Time of the deliberate fault: the FMU {_FAULT_DESCRIPTIONS[fault]}",
        }
        limits = {"unit": "s", "start": repr(FAULT_TIME_START_S), "min": "0", "max": "1e12"}
        # Appended last, so the FMI 2 ModelStructure indices of the other variables stay valid.
        if fmi_version == "2.0":
            variable = ET.SubElement(variables, "ScalarVariable", attributes)
            ET.SubElement(variable, "Real", limits)
        else:
            ET.SubElement(variables, "Float64", {**attributes, **limits})
    ET.indent(tree, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode() + b"\n"


def _package(description: bytes, library: Path, fmi_version: str) -> bytes:
    with tempfile.SpooledTemporaryFile() as buffer:
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as fmu:
            _add(fmu, "modelDescription.xml", description, 0o644)
            _add(fmu, f"binaries/{_platform(fmi_version)}/{library.name}", library.read_bytes(), 0o755)
        buffer.seek(0)
        return buffer.read()


def _add(fmu: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100000 | mode) << 16
    fmu.writestr(info, data)


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

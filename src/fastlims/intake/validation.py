"""Checks on an upload set before anything is moved: pure functions that read the files and
return every problem found (never only the first, never an exception for bad input).

An FMU is checked for: zip integrity (central directory, every entry's CRC); limits against zip
bombs (entry count, total uncompressed size, compression ratio) checked on the declared sizes
before anything is decompressed; unsafe entry names (``..``, absolute, drive letters, back
slashes, links); a ``modelDescription.xml`` that parses, declares no DTD, is FMI 2.0 or 3.0 and
supports co-simulation; a binary for this platform, named after the model identifier, that is an
ELF/Mach-O/PE file for this machine; and FMPy's own validation.

``inter_connection.json`` is checked by :mod:`.interconnection` (its JSON Schema, references,
directions, types, inputs driven once; re-exported here); :func:`validate_upload_set` checks a
whole set with both.
"""

from __future__ import annotations

import posixpath
import re
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastlims.intake.interconnection import check_interconnection, compatible
from fastlims.intake.interface import FmuInterface, FmuVariable, Problem
from fastlims.intake.layout import FMU_SUFFIX, INTERCONNECTION

__all__ = [
    "FmuInterface",
    "FmuVariable",
    "Platform",
    "Problem",
    "ZipLimits",
    "check_fmu",
    "check_interconnection",
    "compatible",
    "summary",
    "validate_upload_set",
]

MODEL_DESCRIPTION = "modelDescription.xml"


@dataclass(frozen=True)
class ZipLimits:
    """Bounds an FMU must stay within; checked on the sizes the archive declares, before any
    decompression (a lying header then fails the CRC check, which reads in bounded chunks)."""

    max_entries: int = 10_000
    max_uncompressed_bytes: int = 4 * 1024**3
    max_ratio: float = 200.0
    # Entries smaller than this may compress better than max_ratio (padding, zeros in XML).
    ratio_min_bytes: int = 1024 * 1024
    max_model_description_bytes: int = 64 * 1024**2


@dataclass(frozen=True)
class Platform:
    """Where the virtual benches load binaries: FMI 2 and FMI 3 folder names and the machine."""

    fmi2_folder: str
    fmi3_folder: str
    extension: str
    elf_machine: int | None  # e_machine of this host for ELF binaries (None: not checked)

    @classmethod
    def this_machine(cls) -> Platform:
        import platform as std_platform

        import fmpy

        machine = {"x86_64": 62, "amd64": 62, "aarch64": 183, "arm64": 183}.get(std_platform.machine().lower())
        return cls(fmpy.platform, fmpy.platform_tuple, fmpy.sharedLibraryExtension, machine)


# --- FMU ---------------------------------------------------------------------------------------


def check_fmu(
    name: str, path: Path, *, limits: ZipLimits | None = None, platform: Platform | None = None
) -> tuple[list[Problem], FmuInterface | None]:
    """All problems of one FMU file, and its interface when the model description could be read."""
    limits = limits or ZipLimits()
    try:
        return _check_fmu(name, path, limits, platform or Platform.this_machine())
    except Exception as exc:  # noqa: BLE001 - a pure check reports, it never raises on bad input
        return [Problem(name, None, f"could not be checked: {type(exc).__name__}: {exc}", "unreadable")], None


def _check_fmu(
    name: str, path: Path, limits: ZipLimits, platform: Platform
) -> tuple[list[Problem], FmuInterface | None]:
    problems: list[Problem] = []
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as stream:
            starts_like_a_zip = stream.read(4) == b"PK\x03\x04"
        if starts_like_a_zip:
            message = "is a damaged or truncated zip archive: its central directory is missing"
            return [Problem(name, None, message, "zip-corrupt")], None
        return [Problem(name, None, "is not a zip archive (an FMU is a zip file)", "not-a-zip")], None
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return [Problem(name, None, f"is a damaged zip archive: {exc}", "zip-corrupt")], None
    with archive:
        entries = archive.infolist()
        problems += _check_limits(name, entries, limits)
        problems += _check_entry_names(name, entries)
        if any(p.code in ("zip-entries", "zip-size", "zip-ratio") for p in problems):
            # Do not decompress anything that breaks the limits: that is what a bomb wants.
            return problems, None
        problems += _check_integrity(name, archive, entries)
        if any(p.code == "zip-corrupt" for p in problems):
            return problems, None
        description_problems, interface, fmi_version = _check_model_description(name, archive, limits)
        problems += description_problems
        if interface is not None:
            problems += _check_binary(name, archive, interface, platform)
        if fmi_version in ("2.0", "3.0") or (fmi_version or "").startswith("3."):
            problems += _fmpy_validation(name, path, already=problems)
    return problems, interface


def _check_limits(name: str, entries: list[zipfile.ZipInfo], limits: ZipLimits) -> list[Problem]:
    problems: list[Problem] = []
    if len(entries) > limits.max_entries:
        problems.append(
            Problem(
                name,
                None,
                f"has {len(entries)} entries, more than the limit of {limits.max_entries}",
                "zip-entries",
            )
        )
    total = sum(e.file_size for e in entries)
    if total > limits.max_uncompressed_bytes:
        problems.append(
            Problem(
                name,
                None,
                f"would unpack to {total} bytes, more than the limit of {limits.max_uncompressed_bytes}",
                "zip-size",
            )
        )
    for entry in entries:
        if entry.file_size < limits.ratio_min_bytes:
            continue
        ratio = entry.file_size / max(entry.compress_size, 1)
        if ratio > limits.max_ratio:
            problems.append(
                Problem(
                    name,
                    None,
                    f"entry {entry.filename!r} compresses {ratio:.0f}:1 ({entry.file_size} bytes from"
                    f" {entry.compress_size}), more than the limit of {limits.max_ratio:.0f}:1"
                    " (a zip bomb?)",
                    "zip-ratio",
                )
            )
    return problems


_DRIVE = re.compile(r"^[A-Za-z]:")


def _check_entry_names(name: str, entries: list[zipfile.ZipInfo]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for entry in entries:
        raw = entry.orig_filename
        parts = raw.replace("\\", "/").split("/")
        if raw.startswith(("/", "\\")) or _DRIVE.match(raw):
            problems.append(Problem(name, None, f"entry {raw!r} has an absolute path", "zip-path"))
        elif ".." in parts:
            problems.append(Problem(name, None, f"entry {raw!r} points outside the archive ('..')", "zip-path"))
        elif "\\" in raw:
            problems.append(Problem(name, None, f"entry {raw!r} uses back slashes; zip paths use '/'", "zip-path"))
        if "\x00" in raw:
            problems.append(Problem(name, None, f"entry {raw!r} contains a NUL character", "zip-path"))
        mode = entry.external_attr >> 16
        if entry.create_system == 3 and stat.S_ISLNK(mode):
            problems.append(Problem(name, None, f"entry {raw!r} is a symbolic link", "zip-path"))
        if entry.filename in seen:
            problems.append(Problem(name, None, f"entry {raw!r} appears twice", "zip-path"))
        seen.add(entry.filename)
    return problems


def _check_integrity(name: str, archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo]) -> list[Problem]:
    problems: list[Problem] = []
    for entry in entries:
        if entry.is_dir():
            continue
        try:
            with archive.open(entry) as stream:
                while stream.read(1024 * 1024):
                    pass
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
            problems.append(Problem(name, None, f"entry {entry.filename!r} is damaged: {exc}", "zip-corrupt"))
        except Exception as exc:  # noqa: BLE001 - zlib.error and friends
            problems.append(Problem(name, None, f"entry {entry.filename!r} is damaged: {exc}", "zip-corrupt"))
    return problems


def _check_model_description(
    name: str, archive: zipfile.ZipFile, limits: ZipLimits
) -> tuple[list[Problem], FmuInterface | None, str | None]:
    from lxml import etree

    try:
        entry = archive.getinfo(MODEL_DESCRIPTION)
    except KeyError:
        return [Problem(name, None, f"has no {MODEL_DESCRIPTION} at its root", "md-missing")], None, None
    if entry.file_size > limits.max_model_description_bytes:
        return (
            [
                Problem(
                    name,
                    None,
                    f"{MODEL_DESCRIPTION} is larger than {limits.max_model_description_bytes} bytes",
                    "md-invalid",
                )
            ],
            None,
            None,
        )
    data = archive.read(entry)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return [Problem(name, None, f"{MODEL_DESCRIPTION} does not parse: {exc}", "md-invalid")], None, None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None or b"<!ENTITY" in data:
        return (
            [
                Problem(
                    name,
                    None,
                    f"{MODEL_DESCRIPTION} declares a DTD or entities, which FMI does not allow",
                    "md-invalid",
                )
            ],
            None,
            None,
        )
    if root.tag != "fmiModelDescription":
        return (
            [
                Problem(
                    name,
                    None,
                    f"{MODEL_DESCRIPTION} has root element <{root.tag}>, expected <fmiModelDescription>",
                    "md-invalid",
                )
            ],
            None,
            None,
        )
    version = root.get("fmiVersion")
    if version is None:
        return [Problem(name, None, f"{MODEL_DESCRIPTION} has no fmiVersion", "fmi-version")], None, None
    if not (version == "2.0" or version.startswith("3.")):
        return (
            [Problem(name, None, f"is FMI {version}; FastLIMS runs FMI 2.0 and 3.0 FMUs", "fmi-version")],
            None,
            version,
        )
    problems: list[Problem] = []
    cosimulation = root.find("CoSimulation")
    if cosimulation is None:
        kinds = [k for k in ("ModelExchange", "ScheduledExecution") if root.find(k) is not None]
        problems.append(
            Problem(
                name,
                None,
                f"does not support co-simulation (it offers {', '.join(kinds) or 'no interface type'});"
                " the virtual benches need a CoSimulation FMU",
                "no-cosimulation",
            )
        )
        return problems, None, version
    identifier = cosimulation.get("modelIdentifier") or ""
    if not identifier:
        problems.append(Problem(name, None, "CoSimulation has no modelIdentifier", "md-invalid"))
        return problems, None, version
    interface = FmuInterface(fmi_version=version, model_identifier=identifier)
    for variable in _variables(root, version):
        interface.variables.setdefault(variable.name, variable)
    return problems, interface, version


_FMI3_TYPES = {
    "Float32",
    "Float64",
    "Int8",
    "UInt8",
    "Int16",
    "UInt16",
    "Int32",
    "UInt32",
    "Int64",
    "UInt64",
    "Boolean",
    "String",
    "Binary",
    "Enumeration",
    "Clock",
}
_FMI2_TYPES = {"Real", "Integer", "Boolean", "String", "Enumeration"}


def _declared_units(root: object, version: str) -> dict[str, str]:
    """Unit of each type definition that gives one (a variable without its own unit inherits it)."""
    units: dict[str, str] = {}
    definitions = root.find("TypeDefinitions")  # type: ignore[attr-defined]
    if definitions is None:
        return units
    for element in definitions:
        if not isinstance(element.tag, str):
            continue
        # FMI 2: <SimpleType name><Real unit/></SimpleType>; FMI 3: <Float64Type name unit/>.
        holder = next((c for c in element if isinstance(c.tag, str)), None) if version == "2.0" else element
        name, unit = element.get("name"), holder.get("unit") if holder is not None else None
        if name and unit:
            units[name] = unit
    return units


def _variables(root: object, version: str) -> list[FmuVariable]:
    found: list[FmuVariable] = []
    model_variables = root.find("ModelVariables")  # type: ignore[attr-defined]
    if model_variables is None:
        return found
    declared = _declared_units(root, version)
    for element in model_variables:
        if not isinstance(element.tag, str):
            continue  # comments
        if version == "2.0":
            if element.tag != "ScalarVariable":
                continue
            typed = next((c for c in element if isinstance(c.tag, str) and c.tag in _FMI2_TYPES), None)
            kind = typed.tag if typed is not None else ""
            default_variability = "continuous"
        else:
            if element.tag not in _FMI3_TYPES:
                continue
            typed, kind = element, element.tag
            default_variability = "continuous" if kind in ("Float32", "Float64") else "discrete"
        name = element.get("name")
        if not name:
            continue
        unit = (typed.get("unit") if typed is not None else None) or ""
        if not unit and typed is not None:
            unit = declared.get(typed.get("declaredType") or "", "")
        found.append(
            FmuVariable(
                name=name,
                causality=element.get("causality", "local"),
                type=kind,
                unit=unit,
                variability=element.get("variability", default_variability),
            )
        )
    return found


_ELF_MACHINES = {62: "x86-64", 183: "AArch64", 3: "x86", 40: "ARM"}


def _check_binary(name: str, archive: zipfile.ZipFile, interface: FmuInterface, platform: Platform) -> list[Problem]:
    folder = platform.fmi2_folder if interface.fmi_version == "2.0" else platform.fmi3_folder
    expected = f"binaries/{folder}/{interface.model_identifier}{platform.extension}"
    names = set(archive.namelist())
    if expected not in names:
        present = sorted({n.split("/")[1] for n in names if n.startswith("binaries/") and n.count("/") >= 2})
        other = f"; it has binaries for: {', '.join(present)}" if present else "; it has no binaries"
        return [
            Problem(
                name,
                None,
                f"has no binary for this platform: expected {expected}{other}",
                "no-binary",
            )
        ]
    if platform.extension != ".so" or platform.elf_machine is None:
        return []
    with archive.open(expected) as stream:
        header = stream.read(20)
    if header[:4] != b"\x7fELF":
        return [Problem(name, None, f"{expected} is not an ELF shared library", "no-binary")]
    if header[4] != 2:
        return [Problem(name, None, f"{expected} is a 32-bit library; this platform needs 64-bit", "no-binary")]
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    if machine != platform.elf_machine:
        built_for = _ELF_MACHINES.get(machine, f"machine {machine}")
        here = _ELF_MACHINES.get(platform.elf_machine, str(platform.elf_machine))
        return [Problem(name, None, f"{expected} is built for {built_for}, not for {here}", "no-binary")]
    return []


_QUOTED_VARIABLE = re.compile(r'variable (?:name )?"([^"]+)"', re.IGNORECASE)


def _fmpy_validation(name: str, path: Path, *, already: list[Problem]) -> list[Problem]:
    from fmpy.validation import validate_fmu

    try:
        messages = validate_fmu(str(path))
    except Exception as exc:  # noqa: BLE001 - FMPy raises on some damaged inputs
        messages = [f"{type(exc).__name__}: {exc}"]
    problems = []
    known = {p.message for p in already}
    for message in messages:
        text = str(message).strip()
        if not text or text in known:
            continue
        match = _QUOTED_VARIABLE.search(text)
        problems.append(Problem(name, match.group(1) if match else None, f"FMPy validation: {text}", "fmpy"))
    return problems


# --- the set --------------------------------------------------------------------------------------


def fmu_name(file_name: str) -> str:
    """An FMU's name in ``FMU_name/Port`` references: its file name without ``.fmu``."""
    return file_name[: -len(FMU_SUFFIX)] if file_name.lower().endswith(FMU_SUFFIX) else file_name


def validate_upload_set(
    files: Mapping[str, Path], *, limits: ZipLimits | None = None, platform: Platform | None = None
) -> list[Problem]:
    """Every problem of a complete upload set. ``files`` maps each file's name in the set (the
    plain name: ``battery_cell.fmu``, ``inter_connection.json``) to a local path to read."""
    problems: list[Problem] = []
    fmus: dict[str, FmuInterface | None] = {}
    interconnections = [n for n in files if posixpath.basename(n) == INTERCONNECTION]
    for file_name, path in sorted(files.items()):
        if file_name.lower().endswith(FMU_SUFFIX):
            found, interface = check_fmu(file_name, path, limits=limits, platform=platform)
            problems += found
            fmus[fmu_name(file_name)] = interface
    if not fmus:
        problems.append(Problem("(upload set)", None, "contains no .fmu file", "incomplete"))
    if not interconnections:
        problems.append(Problem("(upload set)", None, f"contains no {INTERCONNECTION}", "incomplete"))
    for file_name in interconnections:
        problems += check_interconnection(file_name, files[file_name], fmus)
    return problems


def summary(problems: list[Problem], *, limit: int = 2000) -> str:
    """One line for a request's failure reason: how many problems, then each (cut at ``limit``)."""
    head = f"model upload rejected ({len(problems)} problem{'s' if len(problems) != 1 else ''}): "
    text = head + "; ".join(str(p) for p in problems)
    return (
        text
        if len(text) <= limit
        else text[: limit - 90]
        + " … (every problem: reason.json in quarantine, <test_UUID>.rejected.json in the partner's folder)"
    )

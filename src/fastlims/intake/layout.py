"""The storage layout (seed §6.1, §6.4, with the request's UUID appended as the seed planned).

Pure names, no I/O. Every key is relative to the root of the configured storage
(``FASTLIMS_STORAGE_URL``) and uses ``/`` separators::

    pool/                                   uploads from the Digital Twin, any time, any request
      <partner>/<test_UUID>/model.fmu       (an SFTP partner sees pool/<partner>/ as "/")
      <test_UUID>/inter_connection.json     (Azure SFTP, Event Grid, HTTP PUT, folder drops)
    fastest_simulation_YYYYMMDD_<test_UUID>/
      fastest-models/fmus/                  the accepted FMUs and inter_connection.json
      doe-input/  doe-output/  schedule-output/  simulation-results/
      intake.json                           what the Data Processor did (paths, files, checks)
    quarantine/<test_UUID>/<when>/          a rejected upload set, untouched, with reason.json
    quarantine/unmatched/<when>/            files that name no test request
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import date, datetime

POOL = "pool"
QUARANTINE = "quarantine"
UNMATCHED = "unmatched"
INTERCONNECTION = "inter_connection.json"
FMU_SUFFIX = ".fmu"
REASON_FILE = "reason.json"
INTAKE_FILE = "intake.json"

SIMULATION_PREFIX = "fastest_simulation_"
FMUS = "fastest-models/fmus"
DOE_INPUT = "doe-input"
DOE_OUTPUT = "doe-output"
SCHEDULE_OUTPUT = "schedule-output"
SIMULATION_RESULTS = "simulation-results"
SIMULATION_SUBFOLDERS = (FMUS, DOE_INPUT, DOE_OUTPUT, SCHEDULE_OUTPUT, SIMULATION_RESULTS)

UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WHOLE_UUID = re.compile(rf"^{UUID_PATTERN.pattern}$")
# The UUID in a file name, with one separator next to it: "cell_<uuid>.fmu", "<uuid>-cell.fmu".
_UUID_IN_NAME = re.compile(rf"(?:[_.-]?{UUID_PATTERN.pattern}[_.-]?)")


def simulation_folder(test_uuid: str, day: date | datetime) -> str:
    """``fastest_simulation_YYYYMMDD_<test_UUID>`` (the seed's name plus the UUID it planned)."""
    return f"{SIMULATION_PREFIX}{day:%Y%m%d}_{test_uuid.lower()}"


def fmus_folder(folder: str) -> str:
    return f"{folder}/{FMUS}"


def subfolder(folder: str, name: str) -> str:
    return f"{folder}/{name}"


def quarantine_folder(test_uuid: str | None, when: datetime, token: str) -> str:
    """One folder per rejected attempt, so a second rejection never overwrites the first."""
    owner = test_uuid.lower() if test_uuid else UNMATCHED
    return f"{QUARANTINE}/{owner}/{when:%Y%m%dT%H%M%S}Z-{token}"


def is_uuid(text: str) -> bool:
    return bool(_WHOLE_UUID.match(text))


def normalise_key(key: str) -> str:
    """A storage key without a leading slash, duplicate slashes or ``.`` parts; ``..`` is kept so
    callers can refuse it (see :func:`is_safe_key`)."""
    parts = [p for p in key.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def is_safe_key(key: str) -> bool:
    parts = key.split("/")
    return bool(key) and ".." not in parts and not key.startswith("/")


def in_pool(key: str) -> bool:
    return key.startswith(POOL + "/")


def plain_name(file_name: str) -> str:
    """The file name with the request's UUID (and one separator next to it) removed:
    ``cell_<uuid>.fmu`` → ``cell.fmu``; ``inter_connection-<uuid>.json`` → ``inter_connection.json``.
    Names without a UUID are returned unchanged."""
    stem, dot, suffix = file_name.rpartition(".")
    if not dot:
        stem, suffix = file_name, ""
    match = _UUID_IN_NAME.search(stem)
    if not match:
        return file_name
    left, right = stem[: match.start()], stem[match.end() :]
    joined = left + ("_" if left and right else "") + right
    return f"{joined}.{suffix}" if dot else joined


def is_model_file(file_name: str) -> bool:
    """The seed's subject filter on the name: an ``.fmu`` or ``inter_connection.json``."""
    name = plain_name(file_name)
    return (name.lower().endswith(FMU_SUFFIX) and len(name) > len(FMU_SUFFIX)) or name == INTERCONNECTION


def in_subject_filter(key: str) -> bool:
    """Only ``.fmu`` files and ``inter_connection.json`` under ``pool/`` start processing."""
    key = normalise_key(key)
    return in_pool(key) and is_safe_key(key) and is_model_file(posixpath.basename(key))


def correlate(key: str) -> str | None:
    """The test_UUID an uploaded file belongs to: the first folder under ``pool/`` that is a
    UUID (``pool/<uuid>/…`` or ``pool/<partner>/<uuid>/…``), else a UUID in the file name."""
    parts = normalise_key(key).split("/")
    if not parts or parts[0] != POOL:
        return None
    for folder in parts[1:-1]:
        if is_uuid(folder):
            return folder.lower()
    match = UUID_PATTERN.search(parts[-1])
    return match.group(0).lower() if match else None


def partner_of(key: str) -> str | None:
    """The partner whose folder a pool file lies in (``pool/<partner>/…``), or None for the lab's
    own drops (``pool/<test_UUID>/…``, or a UUID-named file directly in ``pool/``)."""
    parts = normalise_key(key).split("/")
    if len(parts) >= 3 and parts[0] == POOL and not is_uuid(parts[1]):
        return parts[1]
    return None


@dataclass(frozen=True)
class UploadSetStatus:
    """Whether a set of uploaded names is complete: the seed's rule (at least one FMU and an
    inter_connection.json), and every FMU that the interconnection names is there too, so a set
    uploaded interconnection-first is not taken before its last FMU has arrived."""

    fmus: tuple[str, ...]
    interconnections: tuple[str, ...]
    named_but_missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return bool(self.fmus) and bool(self.interconnections) and not self.named_but_missing

    @property
    def missing(self) -> list[str]:
        missing = []
        if not self.fmus:
            missing.append("at least one .fmu file")
        if not self.interconnections:
            missing.append(INTERCONNECTION)
        missing += [f"{name}{FMU_SUFFIX} (named in {INTERCONNECTION})" for name in self.named_but_missing]
        return missing


def set_status(keys: list[str], named_fmus: set[str] | None = None) -> UploadSetStatus:
    """``named_fmus``: the FMU names the set's inter_connection.json refers to (when readable)."""
    names = [plain_name(posixpath.basename(k)) for k in keys]
    fmus = tuple(sorted(n for n in names if n.lower().endswith(FMU_SUFFIX)))
    present = {n[: -len(FMU_SUFFIX)] for n in fmus}
    return UploadSetStatus(
        fmus=fmus,
        interconnections=tuple(sorted(n for n in names if n == INTERCONNECTION)),
        named_but_missing=tuple(sorted((named_fmus or set()) - present)),
    )


def fmus_named_in(interconnection: bytes) -> set[str] | None:
    """The FMU names referenced by an inter_connection.json, or None when it cannot be read (the
    validation then says why)."""
    import json

    try:
        document = json.loads(interconnection.decode("utf-8-sig"))
        connections = document["FMU_signal_connections"]
        fields = ("InSignalReference", "OutSignalReference")
        references = [connection[field] for connection in connections for field in fields]
        ports = document.get("UUT_ports")
        if isinstance(ports, dict):  # a port role may name an FMU that no connection names
            references += list(ports.values())
        return {r.split("/", 1)[0] for r in references if isinstance(r, str) and "/" in r}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None

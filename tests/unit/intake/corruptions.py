"""Every way an upload can be wrong that the validation must catch, each with the reason it must give.

A ``Corruption`` turns a valid FMU (its archive entries) into damaged bytes; an
``InterconnectionFault`` is a wrong inter_connection.json for the valid battery_cell + cycler set.
"""

from __future__ import annotations

import io
import json
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import fmpy

from fastlims.intake.validation import ZipLimits
from tests.unit.intake.fmu_factory import zip_bytes

Entries = dict[str, bytes]
LIBRARY = f"binaries/{fmpy.platform}/battery_cell{fmpy.sharedLibraryExtension}"


@dataclass(frozen=True)
class Corruption:
    name: str
    damage: Callable[[Entries], bytes]
    code: str
    fragment: str  # must appear in the problem's message
    limits: ZipLimits | None = None
    variable: str | None = None


def _md(entries: Entries, old: str, new: str) -> bytes:
    text = entries["modelDescription.xml"].decode()
    assert old in text, old
    return zip_bytes({**entries, "modelDescription.xml": text.replace(old, new, 1).encode()})


def _bad_crc(entries: Entries) -> bytes:
    data = bytearray(zip_bytes(entries, stored=frozenset({LIBRARY})))
    library = entries[LIBRARY]
    start = bytes(data).index(library[:64])  # the stored (uncompressed) library inside the archive
    data[start + len(library) // 2] ^= 0xFF
    return bytes(data)


def _symlink_entry(entries: Entries) -> bytes:
    buffer = io.BytesIO(zip_bytes(entries))
    with zipfile.ZipFile(buffer, "a") as archive:
        info = zipfile.ZipInfo("resources/link", date_time=(2026, 1, 1, 0, 0, 0))
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _raw_entry(entries: Entries, name: str, data: bytes) -> bytes:
    buffer = io.BytesIO(zip_bytes(entries))
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def _wrong_machine(entries: Entries) -> bytes:
    library = bytearray(entries[LIBRARY])
    library[18:20] = (183).to_bytes(2, "little")  # AArch64
    return zip_bytes({**entries, LIBRARY: bytes(library)})


def _windows_only(entries: Entries) -> bytes:
    kept = {k: v for k, v in entries.items() if not k.startswith("binaries/")}
    kept["binaries/win64/battery_cell.dll"] = b"MZ" + bytes(200)
    return zip_bytes(kept)


FMU_CORRUPTIONS = [
    Corruption("not a zip", lambda e: b"this is not an FMU at all " * 20, "not-a-zip", "is not a zip archive"),
    Corruption("truncated", lambda e: zip_bytes(e)[: len(zip_bytes(e)) // 2], "zip-corrupt", "truncated"),
    Corruption("bad CRC", _bad_crc, "zip-corrupt", "damaged"),
    Corruption(
        "too many entries",
        lambda e: zip_bytes({**e, **{f"resources/{i}.txt": b"x" for i in range(30)}}),
        "zip-entries",
        "more than the limit of 20",
        limits=ZipLimits(max_entries=20),
    ),
    Corruption(
        "too large unpacked",
        lambda e: zip_bytes({**e, "resources/table.bin": bytes(range(256)) * 8192}),
        "zip-size",
        "would unpack to",
        limits=ZipLimits(max_uncompressed_bytes=1_500_000),
    ),
    Corruption(
        "compression ratio (zip bomb)",
        lambda e: zip_bytes({**e, "resources/zeros.bin": bytes(8 * 1024 * 1024)}),
        "zip-ratio",
        "a zip bomb?",
    ),
    Corruption("path traversal", lambda e: _raw_entry(e, "../../evil.so", b"x"), "zip-path", "outside the archive"),
    Corruption("absolute path", lambda e: _raw_entry(e, "/etc/cron.d/evil", b"x"), "zip-path", "absolute path"),
    Corruption("symlink entry", _symlink_entry, "zip-path", "symbolic link"),
    Corruption(
        "no modelDescription.xml",
        lambda e: zip_bytes({k: v for k, v in e.items() if k != "modelDescription.xml"}),
        "md-missing",
        "has no modelDescription.xml",
    ),
    Corruption(
        "modelDescription.xml does not parse",
        lambda e: zip_bytes({**e, "modelDescription.xml": b'<fmiModelDescription fmiVersion="2.0"><Co'}),
        "md-invalid",
        "does not parse",
    ),
    Corruption(
        "DTD with entities",
        lambda e: zip_bytes(
            {
                **e,
                "modelDescription.xml": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
                + e["modelDescription.xml"].split(b"?>", 1)[1],
            }
        ),
        "md-invalid",
        "DTD",
    ),
    Corruption("FMI 1.0", lambda e: _md(e, 'fmiVersion="2.0"', 'fmiVersion="1.0"'), "fmi-version", "FMI 1.0"),
    Corruption(
        "model exchange only",
        lambda e: _md(e, "<CoSimulation ", "<ModelExchange "),
        "no-cosimulation",
        "does not support co-simulation",
    ),
    Corruption("no binary for this platform", _windows_only, "no-binary", "it has binaries for: win64"),
    Corruption("binary for another machine", _wrong_machine, "no-binary", "built for AArch64"),
    Corruption(
        "FMPy validation (input without start)",
        lambda e: _md(
            e,
            'causality="input" variability="continuous"><Real start="0.0"/>',
            'causality="input" variability="continuous"><Real/>',
        ),
        "fmpy",
        "has no start value",
        variable="I",
    ),
]


@dataclass(frozen=True)
class InterconnectionFault:
    name: str
    document: bytes
    code: str
    fragment: str
    variable: str | None = None


def _connections(*pairs: tuple[str, str]) -> bytes:
    return json.dumps(
        {"FMU_signal_connections": [{"InSignalReference": i, "OutSignalReference": o} for i, o in pairs]}
    ).encode()


INTERCONNECTION_FAULTS = [
    InterconnectionFault("not JSON", b"{FMU_signal_connections: [", "json-invalid", "is not valid JSON"),
    InterconnectionFault(
        "wrong shape", json.dumps({"connections": []}).encode(), "schema", "FMU_signal_connections: Field required"
    ),
    InterconnectionFault(
        "reference without a port",
        json.dumps(
            {"FMU_signal_connections": [{"InSignalReference": "battery_cell", "OutSignalReference": "cycler/I"}]}
        ).encode(),
        "schema",
        "must look like 'FMU_name/Port'",
    ),
    InterconnectionFault(
        "unknown variable",
        _connections(("battery_cell/Current", "cycler/I")),
        "unknown-variable",
        "FMU 'battery_cell' has no variable 'Current'",
        "battery_cell/Current",
    ),
    InterconnectionFault(
        "input to input",
        _connections(("battery_cell/I", "cycler/V")),
        "direction",
        "is an input variable; a connection must start at an output",
        "cycler/V",
    ),
    InterconnectionFault(
        "output to output",
        _connections(("battery_cell/V", "cycler/I")),
        "direction",
        "is an output variable; a connection must end at an input",
        "battery_cell/V",
    ),
    InterconnectionFault(
        "incompatible types",
        _connections(("battery_cell/I", "cycler/done")),
        "type",
        "'cycler/done' (Boolean) to 'battery_cell/I' (Real): incompatible types",
        "battery_cell/I",
    ),
    InterconnectionFault(
        "input driven twice",
        _connections(("battery_cell/I", "cycler/I"), ("battery_cell/I", "cycler/I")),
        "driven-twice",
        "is driven 2 times",
        "battery_cell/I",
    ),
]

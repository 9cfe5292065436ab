"""What crosses from the simulation child to its parent: frames of a fixed format, never pickle
(the child runs a partner's native code, so whatever it sends is hostile input for the parent).

A frame is a 4-byte little-endian header length, a UTF-8 JSON header (an object with ``kind``),
then raw little-endian float64 data that the header sizes exactly. Kinds:

- ``sandbox``: the confinement that holds (``report``), before any FMU is loaded;
- ``batch``: recorded rows: ``seq``, ``first_row``, ``rows``, ``names`` (signals) and ``units``;
  the data is ``time`` then each signal, ``rows`` values each;
- ``result``: the :class:`~.recording.RunResult` without its columns (those came as batches; a run
  that sent none carries its columns as a batch would);
- ``invalid`` (``problems``: an invalid system or spec), ``exception`` (``traceback``),
  ``sandbox_failed`` (``reason``).

:func:`decode` checks everything the parent relies on and raises :class:`ChannelError` naming what
is wrong; the sizes are bounded (:data:`MAX_FRAME`, :data:`MAX_HEADER`).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import numpy as np

from fastlims.benches.cosim.recording import Batch, RunResult

MAX_HEADER = 1 << 20
MAX_FRAME = 256 << 20
MAX_TEXT = 20_000
_LENGTH = struct.Struct("<I")
_FLOAT = np.dtype("<f8")
KINDS = ("sandbox", "batch", "result", "invalid", "exception", "sandbox_failed")
STATUSES = ("completed", "failed", "cancelled")


class ChannelError(ValueError):
    """A frame from the child that does not follow the format (the run fails with this reason)."""


def encode(kind: str, header: Mapping[str, Any], data: np.ndarray | None = None) -> bytes:
    head = json.dumps({"kind": kind, **header}, allow_nan=True, default=_plain).encode()
    body = b"" if data is None else np.ascontiguousarray(data, dtype=_FLOAT).tobytes()
    return _LENGTH.pack(len(head)) + head + body


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def decode(frame: bytes) -> tuple[str, dict[str, Any], memoryview]:
    """(kind, header, data) of a frame, or :class:`ChannelError`."""
    if len(frame) < _LENGTH.size:
        raise ChannelError("a frame shorter than its length field")
    (size,) = _LENGTH.unpack_from(frame)
    if size > MAX_HEADER or _LENGTH.size + size > len(frame):
        raise ChannelError(f"a frame header of {size} bytes (at most {MAX_HEADER}, within the frame)")
    try:
        header = json.loads(frame[_LENGTH.size : _LENGTH.size + size])
    except (UnicodeDecodeError, ValueError) as exc:
        raise ChannelError(f"a frame header that is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("kind") not in KINDS:
        raise ChannelError(f"a frame of unknown kind {header.get('kind') if isinstance(header, dict) else header!r}")
    return header.pop("kind"), header, memoryview(frame)[_LENGTH.size + size :]


# --- batches --------------------------------------------------------------------------------------


def encode_batch(batch: Batch) -> bytes:
    names = list(batch.signals)
    data = np.empty((1 + len(names), batch.rows), dtype=_FLOAT)
    data[0] = batch.time
    for j, name in enumerate(names):
        data[j + 1] = batch.signals[name]
    header = {"seq": batch.seq, "first_row": batch.first_row, "rows": batch.rows, "names": names,
              "units": dict(batch.units)}  # fmt: skip
    return encode("batch", header, data)


def _int(header: Mapping[str, Any], key: str) -> int:
    value = header.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ChannelError(f"{key!r} must be a non-negative whole number, got {value!r}")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ChannelError(f"{what} must be text, got {type(value).__name__}")
    return value[:MAX_TEXT]


def _names(header: Mapping[str, Any]) -> list[str]:
    names = header.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) and 0 < len(n) <= 1000 for n in names):
        raise ChannelError("'names' must be a list of signal names")
    if len(set(names)) != len(names) or "time" in names:
        raise ChannelError("'names' must be distinct signal names other than 'time'")
    return names


def _units(header: Mapping[str, Any]) -> dict[str, str]:
    units = header.get("units") or {}
    if not isinstance(units, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in units.items()):
        raise ChannelError("'units' must map names to text")
    return {k[:1000]: v[:100] for k, v in units.items()}


def _block(data: memoryview, rows: int, width: int) -> np.ndarray:
    if len(data) != rows * width * _FLOAT.itemsize:
        raise ChannelError(f"{len(data)} bytes of data for {rows} rows of {width} values")
    return np.frombuffer(data, dtype=_FLOAT).reshape(width, rows)


def decode_batch(header: Mapping[str, Any], data: memoryview) -> Batch:
    rows = _int(header, "rows")
    names = _names(header)
    block = _block(data, rows, 1 + len(names))
    return Batch(
        seq=_int(header, "seq"),
        first_row=_int(header, "first_row"),
        time=block[0],
        signals={name: block[j + 1] for j, name in enumerate(names)},
        units=_units(header),
    )


# --- the result -----------------------------------------------------------------------------------

_NUMBERS = ("stopped_at", "wall_time_s", "step_size", "setup_time_s", "cpu_time_s")
_OPTIONAL_NUMBERS = ("master_overhead", "fmu_time_s")


def encode_result(result: RunResult) -> bytes:
    header = {f.name: getattr(result, f.name) for f in fields(RunResult) if f.name != "columns"}
    names = [n for n in result.columns if n != "time"]
    data = None
    if result.columns and "time" in result.columns:
        data = np.vstack([np.asarray(result.columns["time"], dtype=_FLOAT),
                          *(np.asarray(result.columns[n], dtype=_FLOAT) for n in names)])  # fmt: skip
    header["names"], header["rows"] = names, (0 if data is None else data.shape[1])
    return encode("result", header, data)


def _number(header: Mapping[str, Any], key: str, optional: bool = False) -> float | None:
    value = header.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ChannelError(f"{key!r} must be a number, got {value!r}")
    return float(value)


def decode_result(header: Mapping[str, Any], data: memoryview) -> RunResult:
    status = header.get("status")
    if status not in STATUSES:
        raise ChannelError(f"'status' must be one of {', '.join(STATUSES)}, got {status!r}")
    rows, names = _int(header, "rows"), _names(header)
    columns: dict[str, np.ndarray] = {}
    if rows or len(data):
        block = _block(data, rows, 1 + len(names))
        columns = {"time": block[0], **{name: block[j + 1] for j, name in enumerate(names)}}
    numbers = {key: _number(header, key) for key in _NUMBERS}
    optional = {key: _number(header, key, optional=True) for key in _OPTIONAL_NUMBERS}
    parameters = header.get("parameters") or {}
    fmus = header.get("fmus") or {}
    notes, log = header.get("notes") or [], header.get("fmu_log") or []
    if not isinstance(parameters, dict) or not isinstance(fmus, dict) or not isinstance(notes, list) \
            or not isinstance(log, list):  # fmt: skip
        raise ChannelError("'parameters' and 'fmus' must be objects, 'notes' and 'fmu_log' lists")
    return RunResult(
        status=status,
        reason=_text(header.get("reason", ""), "'reason'"),
        end_cause=_text(header.get("end_cause", ""), "'end_cause'")[:100],
        columns=columns,
        units=_units(header),
        steps=_int(header, "steps"),
        algorithm=_text(header.get("algorithm", ""), "'algorithm'")[:100],
        parameters={str(k)[:1000]: v for k, v in parameters.items() if isinstance(v, int | float | bool)},
        fmus={str(k)[:1000]: v for k, v in fmus.items() if isinstance(v, dict)},
        notes=[_text(n, "a note") for n in notes[:1000]],
        fmu_log=[_text(line, "an FMU log line") for line in log[:10_000]],
        batches=_int(header, "batches"),
        stopped_at=numbers["stopped_at"] if numbers["stopped_at"] is not None else math.nan,
        wall_time_s=numbers["wall_time_s"] or 0.0,
        step_size=numbers["step_size"] or 0.0,
        setup_time_s=numbers["setup_time_s"] or 0.0,
        cpu_time_s=numbers["cpu_time_s"] or 0.0,
        master_overhead=optional["master_overhead"],
        fmu_time_s=optional["fmu_time_s"],
    )

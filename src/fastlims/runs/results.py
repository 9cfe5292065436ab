"""Results of a run, whichever bench ran it: the full-resolution Parquet file, its CSV download,
and the summary that goes to ``TestMetricsJson``.

One Parquet file per run (``simulation-results/<run_id>/…``): a ``time`` column and one float64
column per signal (``FMU.variable``), each field carrying its unit; the schema metadata holds the
run id, the parameters, the units, the FMUs and the run's outcome as JSON under ``fastlims.*``
keys, so the file explains itself without the database. Floats survive exactly (Parquet stores
the doubles; the CSV writes the shortest text that reads back to the same double).
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

#: A run's files in its results folder (``simulation-results/<run_id>/``), each written whole.
RESULTS_FILE = "results.parquet"
SUMMARY_FILE = "summary.json"

FORMAT = "fastlims.simulation-results/1"
SUMMARY_FORMAT = "fastlims.run-summary/1"
_KEY = "fastlims."
CSV_BATCH_ROWS = 65_536
ROW_GROUP_ROWS = 65_536

Source = Path | str | bytes | BinaryIO


class Batch(Protocol):
    """A batch of samples as a bench hands it over (the co-simulation's
    :class:`~fastlims.benches.cosim.recording.Batch` is one): ``time`` and one array per signal."""

    @property
    def time(self) -> np.ndarray: ...

    @property
    def signals(self) -> Mapping[str, np.ndarray]: ...

    @property
    def units(self) -> Mapping[str, str]: ...

    @property
    def rows(self) -> int: ...


class RunResult(Protocol):
    """How a run went, as its results file records it (the co-simulation's
    :class:`~fastlims.benches.cosim.recording.RunResult` is one)."""

    @property
    def status(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def end_cause(self) -> str: ...

    @property
    def stopped_at(self) -> float: ...

    @property
    def steps(self) -> int: ...

    @property
    def step_size(self) -> float: ...

    @property
    def algorithm(self) -> str: ...

    @property
    def wall_time_s(self) -> float: ...

    @property
    def notes(self) -> Sequence[str]: ...

    @property
    def columns(self) -> Mapping[str, np.ndarray]: ...

    @property
    def units(self) -> Mapping[str, str]: ...

    @property
    def parameters(self) -> Mapping[str, Any]: ...

    @property
    def fmus(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class ResultsFile:
    """A results file read back: columns (``time`` first), units, and the ``fastlims.*`` metadata."""

    columns: dict[str, np.ndarray]
    units: dict[str, str]
    metadata: dict[str, Any]

    @property
    def run_id(self) -> str | None:
        return self.metadata.get("run_id")

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.metadata.get("parameters") or {})


def _table(columns: Mapping[str, np.ndarray], units: Mapping[str, str], metadata: Mapping[str, Any]) -> pa.Table:
    if "time" not in columns:
        raise ValueError("results need a 'time' column")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"columns differ in length: {lengths}")
    names = ["time", *(name for name in columns if name != "time")]
    fields = [pa.field(name, pa.float64(), metadata={"unit": units.get(name, "")}) for name in names]
    schema_metadata = {f"{_KEY}{key}": json.dumps(value, default=_jsonable) for key, value in metadata.items()}
    schema = pa.schema(fields, metadata=schema_metadata)
    arrays = [pa.array(np.asarray(columns[name], dtype=np.float64)) for name in names]
    return pa.Table.from_arrays(arrays, schema=schema)


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def results_metadata(
    *,
    run_id: str,
    units: Mapping[str, str],
    parameters: Mapping[str, Any] | None = None,
    fmus: Mapping[str, Any] | Sequence[str] | None = None,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``fastlims.*`` metadata of a results file (values are JSON)."""
    return {
        "format": FORMAT,
        "run_id": run_id,
        "parameters": dict(parameters or {}),
        "units": dict(units),
        "fmus": dict(fmus) if isinstance(fmus, Mapping) else list(fmus or []),
        "run": dict(run or {}),
    }


def write_parquet(
    target: Path | str | BinaryIO,
    columns: Mapping[str, np.ndarray],
    units: Mapping[str, str],
    *,
    run_id: str,
    parameters: Mapping[str, Any] | None = None,
    fmus: Mapping[str, Any] | Sequence[str] | None = None,
    run: Mapping[str, Any] | None = None,
) -> None:
    """Write one run's results as Parquet (zstd). A path is written atomically (temporary file,
    then rename), so a reader never sees half a file; a file object is written as is."""
    table = _table(
        columns, units, results_metadata(run_id=run_id, units=units, parameters=parameters, fmus=fmus, run=run)
    )
    if isinstance(target, str | Path):
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(handle)
        try:
            pq.write_table(table, temporary, compression="zstd")
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)
    else:
        pq.write_table(table, target, compression="zstd")


class ResultsWriter:
    """A run's results written as they arrive (``add`` each batch), so that no process holds a
    whole run: rows are buffered up to :data:`ROW_GROUP_ROWS`, then written as a row group to a
    local file; :meth:`close` adds the run's outcome to the file's metadata. The columns and units
    are the first batch's (later batches must match: :mod:`fastlims.benches.cosim` checks)."""

    def __init__(self, path: Path, *, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self.rows = 0

    def _open(self, names: Sequence[str], units: Mapping[str, str]) -> None:
        fields = [pa.field(name, pa.float64(), metadata={"unit": units.get(name, "")}) for name in names]
        metadata = results_metadata(run_id=self.run_id, units=units)
        for late in ("run", "fmus", "parameters"):  # known at the end: the file's own metadata
            metadata.pop(late)
        encoded = {f"{_KEY}{key}": json.dumps(value, default=_jsonable) for key, value in metadata.items()}
        self._schema = pa.schema(fields, metadata=encoded)
        self._writer = pq.ParquetWriter(str(self.path), self._schema, compression="zstd")

    def add(self, batch: Batch) -> None:
        if self._writer is None:
            self._open(["time", *batch.signals], {"time": "s", **batch.units})
        assert self._schema is not None
        arrays = [pa.array(batch.time), *(pa.array(batch.signals[n]) for n in self._schema.names[1:])]
        self._pending.append(pa.RecordBatch.from_arrays(arrays, schema=self._schema))
        self._pending_rows += batch.rows
        self.rows += batch.rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending and self._writer is not None:
            self._writer.write_table(pa.Table.from_batches(self._pending))
        self._pending, self._pending_rows = [], 0

    def close(self, result: RunResult) -> None:
        """Finish the file with ``result``'s outcome (a run without rows: its own columns, if any)."""
        if self._writer is None:  # no batch came (the child died or was stopped first): the columns it has
            columns = result.columns if "time" in result.columns else {"time": np.empty(0)}
            write_parquet(self.path, columns, result.units, run_id=self.run_id, parameters=result.parameters,
                          fmus=result.fmus, run=run_metadata(result))  # fmt: skip
            return
        self._flush()
        extra = {"run": run_metadata(result), "fmus": dict(result.fmus), "parameters": dict(result.parameters)}
        self._writer.add_key_value_metadata({f"{_KEY}{k}": json.dumps(v, default=_jsonable) for k, v in extra.items()})
        self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.path.unlink(missing_ok=True)


def run_metadata(result: RunResult) -> dict[str, Any]:
    """What a results file records about the run that made it."""
    return {
        "status": result.status,
        "reason": result.reason,
        "end_cause": result.end_cause,
        "stopped_at_s": result.stopped_at,
        "steps": result.steps,
        "step_size_s": result.step_size,
        "algorithm": result.algorithm,
        "wall_time_s": round(result.wall_time_s, 6),
        "notes": list(result.notes),
    }


def write_run(target: Path | str | BinaryIO, result: RunResult, *, run_id: str) -> None:
    """:func:`write_parquet` for a :class:`~fastlims.benches.cosim.RunResult`."""
    write_parquet(
        target, result.columns, result.units, run_id=run_id, parameters=result.parameters, fmus=result.fmus,
        run=run_metadata(result),
    )  # fmt: skip


def parquet_bytes(result: RunResult, *, run_id: str) -> bytes:
    """The Parquet file of a run as bytes (for object storage)."""
    buffer = io.BytesIO()
    write_run(buffer, result, run_id=run_id)
    return buffer.getvalue()


def _open(source: Source) -> pq.ParquetFile:
    if isinstance(source, bytes):
        return pq.ParquetFile(pa.BufferReader(source))
    return pq.ParquetFile(source if not isinstance(source, Path) else str(source))


def _metadata(schema: pa.Schema, extra: Mapping[bytes, bytes] | None = None) -> dict[str, Any]:
    """The ``fastlims.*`` metadata: the schema's, and the file's own (what a streamed file learnt at
    its end: the run's outcome)."""
    found: dict[str, Any] = {}
    for key, value in {**(schema.metadata or {}), **(extra or {})}.items():
        name = key.decode()
        if name.startswith(_KEY):
            found[name[len(_KEY) :]] = json.loads(value)
    return found


def _units(schema: pa.Schema) -> dict[str, str]:
    return {f.name: (f.metadata or {}).get(b"unit", b"").decode() for f in schema}


def read_parquet(source: Source, *, columns: Sequence[str] | None = None) -> ResultsFile:
    """Read a results file back (a path, bytes or a file object). ``columns``: only these (those
    the file has), so a plot of a long run does not decode every signal."""
    parquet = _open(source)
    wanted = None if columns is None else [name for name in columns if name in parquet.schema_arrow.names]
    table = parquet.read(columns=wanted)
    read = {name: table.column(name).to_numpy() for name in table.column_names}
    return ResultsFile(read, _units(table.schema), _metadata(table.schema, parquet.metadata.metadata))


def iter_csv(source: Source, *, batch_rows: int = CSV_BATCH_ROWS) -> Iterator[bytes]:
    """The results as CSV, in pieces (for a streaming download): a header ``name [unit]``, then one
    line per row. Reads the Parquet file a batch at a time: memory stays bounded."""
    parquet = _open(source)
    schema = parquet.schema_arrow
    units = _units(schema)
    header = [f"{name} [{units[name]}]" if units.get(name) else name for name in schema.names]
    first = True
    for batch in parquet.iter_batches(batch_size=batch_rows):
        renamed = pa.RecordBatch.from_arrays(batch.columns, names=header)
        sink = io.BytesIO()
        pa_csv.write_csv(renamed, sink, write_options=pa_csv.WriteOptions(include_header=first))
        first = False
        yield sink.getvalue()
    if first:  # no rows: the header alone
        sink = io.BytesIO()
        empty = pa.RecordBatch.from_arrays([pa.array([], pa.float64()) for _ in header], names=header)
        pa_csv.write_csv(empty, sink)
        yield sink.getvalue()


def to_csv(source: Source, target: Path | str | BinaryIO) -> None:
    """Convert a results file to CSV (see :func:`iter_csv`) into a path or a binary file object."""
    if isinstance(target, str | Path):
        with open(target, "wb") as out:
            for piece in iter_csv(source):
                out.write(piece)
    else:
        for piece in iter_csv(source):
            target.write(piece)


# --- the summary -------------------------------------------------------------------------------


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def find_cells(columns: Mapping[str, np.ndarray], units: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Battery cells among the signals: per FMU, its terminal voltage and current columns.

    An FMU with variables ``V`` and ``I`` is a cell (as the reference ``battery_cell``); otherwise
    one with exactly one column in ``V`` and one in ``A``. Returns FMU → (voltage, current).
    """
    by_fmu: dict[str, dict[str, str]] = {}
    for name in columns:
        if name == "time" or "." not in name:
            continue
        fmu, _, variable = name.partition(".")
        by_fmu.setdefault(fmu, {})[variable] = name
    cells: dict[str, tuple[str, str]] = {}
    for fmu, variables in by_fmu.items():
        if "V" in variables and "I" in variables:
            cells[fmu] = (variables["V"], variables["I"])
            continue
        volts = [n for n in variables.values() if units.get(n) == "V"]
        amps = [n for n in variables.values() if units.get(n) == "A"]
        if len(volts) == 1 and len(amps) == 1:
            cells[fmu] = (volts[0], amps[0])
    return cells


def summarize(
    columns: Mapping[str, np.ndarray],
    units: Mapping[str, str],
    *,
    cells: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The summary of one run, JSON-ready (non-finite numbers become None).

    ``signals``: per column except time, its unit, min, max and final value. ``cells``: per
    battery cell (``cells`` maps a name to its (voltage, current) columns; found with
    :func:`find_cells` when not given) the charge throughput ∫|I|dt/3600 (Ah), the energy
    throughput ∫|V·I|dt/3600 (Wh), and the net charge and energy (same sign as the current).
    The integrals hold each sample until the next, as the master holds inputs over a step: exact
    for the charge of a full-resolution run.
    """
    time = np.asarray(columns.get("time", np.empty(0)), dtype=float)
    signals = {name: _signal(values, units.get(name, "")) for name, values in columns.items() if name != "time"}
    found = find_cells(columns, units) if cells is None else dict(cells)
    cell_summaries = {
        cell: _cell(time, columns[voltage], columns[current], voltage, current)
        for cell, (voltage, current) in found.items()
    }
    return _summary(time, signals, cell_summaries)


def _signal(values: Any, unit: str) -> dict[str, Any]:
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    return {
        "unit": unit,
        "min": _number(finite.min()) if finite.size else None,
        "max": _number(finite.max()) if finite.size else None,
        "final": _number(array[-1]) if array.size else None,
    }


def _cell(
    time: np.ndarray, voltage_values: Any, current_values: Any, voltage_name: str, current_name: str
) -> dict[str, Any]:
    held = np.diff(time) if time.size > 1 else np.empty(0)
    current = np.asarray(current_values, dtype=float)[:-1]
    voltage = np.asarray(voltage_values, dtype=float)[:-1]
    power = voltage * current
    return {
        "voltage": voltage_name,
        "current": current_name,
        "charge_throughput_Ah": _number(float(np.sum(np.abs(current) * held)) / 3600.0),
        "energy_throughput_Wh": _number(float(np.sum(np.abs(power) * held)) / 3600.0),
        "net_charge_Ah": _number(float(np.sum(current * held)) / 3600.0),
        "net_energy_Wh": _number(float(np.sum(power * held)) / 3600.0),
    }


def _summary(time: np.ndarray, signals: dict[str, Any], cells: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": SUMMARY_FORMAT,
        "samples": int(time.size),
        "start_s": _number(time[0]) if time.size else None,
        "end_s": _number(time[-1]) if time.size else None,
        "signals": signals,
        "cells": cells,
    }


def summarize_file(source: Source) -> dict[str, Any]:
    """:func:`summarize` of a results file, reading it a few columns at a time (never the whole run)."""
    parquet = _open(source)
    units = _units(parquet.schema_arrow)
    names = list(parquet.schema_arrow.names)

    def column(name: str) -> np.ndarray:
        return np.asarray(parquet.read(columns=[name]).column(name).to_numpy(), dtype=float)

    time = column("time") if "time" in names else np.empty(0)
    signals = {name: _signal(column(name), units.get(name, "")) for name in names if name != "time"}
    found = find_cells({name: np.empty(0) for name in names}, units)
    cells = {cell: _cell(time, column(v), column(i), v, i) for cell, (v, i) in found.items()}
    return _summary(time, signals, cells)


def summarize_run(result: RunResult) -> dict[str, Any]:
    """:func:`summarize` of a run, with its outcome (``status``, ``reason``, ``end_cause``, ...)."""
    return {**summarize(result.columns, result.units), "run": run_metadata(result)}

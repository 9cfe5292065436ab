"""The measured samples of a physical run as they arrive: one row per metrics batch, keyed by the
run and the ``record_index`` of the batch's first sample, so a batch the broker delivers again
(QoS 1 after a reconnect, a LIMS restart before its acknowledgement) is stored once.

The gateway acknowledges a batch to the broker only after the transaction that stored it commits:
together with the persistent session this is at-least-once delivery, and the key makes it
exactly-once storage. When the run ends, :func:`assemble` joins the batches in record order into
the run's columns (Battery Data Format names), reporting any gap instead of hiding it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import Float, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fastlims.db.base import Base, UTCDateTime, insert_new
from fastlims.timeutil import utcnow

TIME_COLUMN = "Test Time / s"


class RunMetricBatch(Base):
    """One metrics batch of a run: ``FirstRecord`` .. ``FirstRecord + Count - 1``."""

    __tablename__ = "RunMetricBatches"
    __table_args__ = (UniqueConstraint("RunId", "FirstRecord"),)

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column("RunId", String(128), index=True)
    bench: Mapped[str] = mapped_column("Bench", String(100))
    first_record: Mapped[int] = mapped_column("FirstRecord", Integer)
    count: Mapped[int] = mapped_column("Count", Integer)
    last_time_s: Mapped[float] = mapped_column("LastTimeS", Float)
    columns_json: Mapped[str] = mapped_column("ColumnsJson", Text)
    received_at: Mapped[datetime] = mapped_column("ReceivedAt", UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class Batch:
    """A validated batch: the time column and the other columns, all of ``count`` values."""

    run_id: str
    bench: str
    first_record: int
    time_s: Sequence[float]
    columns: Mapping[str, Sequence[float]]
    units: Mapping[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.time_s)


def store(session: Session, batches: Sequence[Batch]) -> int:
    """Insert the batches not stored yet (the others are redeliveries); returns how many were new."""
    if not batches:
        return 0
    rows = [
        {
            "RunId": b.run_id,
            "Bench": b.bench,
            "FirstRecord": b.first_record,
            "Count": b.count,
            "LastTimeS": float(b.time_s[-1]) if b.count else 0.0,
            "ColumnsJson": json.dumps(
                {"time": list(b.time_s), "columns": {k: list(v) for k, v in b.columns.items()}, "units": dict(b.units)},
                allow_nan=False,
                separators=(",", ":"),
            ),
            "ReceivedAt": utcnow(),
        }
        for b in batches
    ]
    new = insert_new(RunMetricBatch.__table__, ("RunId", "FirstRecord"), session.get_bind().dialect.name)
    result = session.execute(new, rows)
    return int(result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows))


@dataclass
class Assembled:
    """A run's samples in record order; ``gaps`` names each missing record range."""

    columns: dict[str, np.ndarray]
    units: dict[str, str]
    records: int
    gaps: list[tuple[int, int]]
    duplicates: int


def assemble(session: Session, run_id: str) -> Assembled:
    """Join the run's stored batches in record order. Overlapping batches (a bench that resent a
    batch cut differently) keep the first copy of each record."""
    stored = session.scalars(
        select(RunMetricBatch).where(RunMetricBatch.run_id == run_id).order_by(RunMetricBatch.first_record)
    ).all()
    parts: dict[str, list[np.ndarray]] = {TIME_COLUMN: []}
    units: dict[str, str] = {TIME_COLUMN: "s"}
    gaps: list[tuple[int, int]] = []
    expected, duplicates = 0, 0
    names: list[str] = []
    for row in stored:
        document = json.loads(row.columns_json)
        skip = max(0, expected - row.first_record)
        if skip >= row.count:
            duplicates += row.count
            continue
        duplicates += skip
        if row.first_record > expected:
            gaps.append((expected, row.first_record - 1))
        for name in document["columns"]:
            if name not in parts:
                names.append(name)
                parts[name] = [np.full(sum(len(p) for p in parts[TIME_COLUMN]), np.nan)]
        parts[TIME_COLUMN].append(np.asarray(document["time"][skip:], dtype=float))
        for name in names:
            values = document["columns"].get(name)
            parts[name].append(
                np.asarray(values[skip:], dtype=float) if values is not None else np.full(row.count - skip, np.nan)
            )
        units.update(document.get("units") or {})
        expected = row.first_record + row.count
    columns = {name: (np.concatenate(chunks) if chunks else np.zeros(0)) for name, chunks in parts.items()}
    return Assembled(columns, units, expected, gaps, duplicates)


def received(session: Session, run_id: str) -> tuple[int, float | None]:
    """How many records of the run are stored, and the test time of the last one."""
    last = session.scalars(
        select(RunMetricBatch)
        .where(RunMetricBatch.run_id == run_id)
        .order_by(RunMetricBatch.first_record.desc())
        .limit(1)
    ).first()
    if last is None:
        return 0, None
    return last.first_record + last.count, last.last_time_s

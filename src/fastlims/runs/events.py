"""What a bench said about a run, in order: each run event once (keyed by the message id, so a
redelivered event is not recorded twice). The run's page and the live view read it; the run's
state itself is :class:`~fastlims.runs.models.ScheduledRun`'s."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from fastlims.db.base import Base, UTCDateTime, insert_new
from fastlims.timeutil import utcnow


class RunEventRecord(Base):
    __tablename__ = "RunEvents"
    __table_args__ = (UniqueConstraint("RunId", "MessageId"),)

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column("RunId", String(128), index=True)
    bench: Mapped[str] = mapped_column("Bench", String(100))
    message_id: Mapped[str] = mapped_column("MessageId", String(100))
    event: Mapped[str] = mapped_column("Event", String(32))
    test_time_s: Mapped[float | None] = mapped_column("TestTimeS", Float, nullable=True)
    details_json: Mapped[str] = mapped_column("DetailsJson", Text, default="{}")
    received_at: Mapped[datetime] = mapped_column("ReceivedAt", UTCDateTime, default=utcnow)


def record(
    session: Session, *, run_id: str, bench: str, message_id: str, event: str, test_time_s: float | None,
    details: dict[str, Any],
) -> bool:  # fmt: skip
    """Record the event unless it was recorded already; True when it is new."""
    statement = insert_new(RunEventRecord.__table__, ("RunId", "MessageId"), session.get_bind().dialect.name)
    result = session.execute(
        statement,
        [
            {
                "RunId": run_id,
                "Bench": bench,
                "MessageId": message_id[:100],
                "Event": event,
                "TestTimeS": test_time_s,
                "DetailsJson": json.dumps(details, allow_nan=False, default=str),
                "ReceivedAt": utcnow(),
            }
        ],
    )
    return bool(result.rowcount)


def of_run(session: Session, run_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(RunEventRecord).where(RunEventRecord.run_id == run_id).order_by(RunEventRecord.id)
    ).all()
    return [
        {"event": r.event, "test_time_s": r.test_time_s, "at": r.received_at.isoformat(), **json.loads(r.details_json)}
        for r in rows
    ]

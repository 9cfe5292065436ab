"""What each bench last said about itself (its retained ``state`` message): online or offline,
idle or running which run, and the capabilities it announced. The gateway checks a run against
them before it sends ``load``; the bench board shows them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fastlims.db.base import Base, UTCDateTime
from fastlims.timeutil import utcnow


class BenchLiveState(Base):
    __tablename__ = "BenchStates"

    bench: Mapped[str] = mapped_column("Bench", String(100), primary_key=True)
    state: Mapped[str] = mapped_column("State", String(16))
    run_id: Mapped[str | None] = mapped_column("RunId", String(128), nullable=True)
    since: Mapped[datetime] = mapped_column("Since", UTCDateTime, default=utcnow)
    capabilities_json: Mapped[str | None] = mapped_column("CapabilitiesJson", Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column("UpdatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def capabilities(self) -> dict[str, Any] | None:
        return json.loads(self.capabilities_json) if self.capabilities_json else None

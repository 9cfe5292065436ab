"""Tables of the intake: the Digital Twin partners allowed to upload over SFTP, and every
uploaded file version seen (which makes a repeated upload event start processing once)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fastlims.db.base import Base, UTCDateTime
from fastlims.timeutil import utcnow


class DtPartner(Base):
    """A Digital Twin partner's SFTP account: public keys only, chrooted to ``pool/<Name>/``."""

    __tablename__ = "DtPartners"

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    name: Mapped[str] = mapped_column("Name", String(64), unique=True)
    # OpenSSH authorized_keys lines, one per line (public keys: not secret, never logged anyway).
    public_keys: Mapped[str] = mapped_column("PublicKeys", Text)
    quota_bytes: Mapped[int | None] = mapped_column("QuotaBytes", BigInteger, nullable=True)
    is_active: Mapped[bool] = mapped_column("IsActive", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("UpdatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)


class UploadState(enum.StrEnum):
    waiting = "waiting"  # part of a set that is not complete yet
    processing = "processing"  # claimed by a Data Processor run
    accepted = "accepted"  # moved to the simulation folder
    quarantined = "quarantined"  # moved to quarantine/ with a reason


class IntakeUpload(Base):
    """One version (path + ETag) of one uploaded file and what became of it."""

    __tablename__ = "IntakeUploads"

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    upload_key: Mapped[str] = mapped_column("UploadKey", String(64), unique=True)
    path: Mapped[str] = mapped_column("Path", String(1000), index=True)
    version: Mapped[str] = mapped_column("Version", String(200))
    size: Mapped[int] = mapped_column("Size", BigInteger)
    test_uuid: Mapped[str | None] = mapped_column("TestUUID", String(36), nullable=True, index=True)
    source: Mapped[str] = mapped_column("Source", String(16))
    partner: Mapped[str | None] = mapped_column("Partner", String(64), nullable=True)
    outcome: Mapped[str] = mapped_column("Outcome", String(16), default=UploadState.waiting.value)
    detail: Mapped[str | None] = mapped_column("Detail", Text, nullable=True)
    moved_to: Mapped[str | None] = mapped_column("MovedTo", String(1000), nullable=True)
    received_at: Mapped[datetime] = mapped_column("ReceivedAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("UpdatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)

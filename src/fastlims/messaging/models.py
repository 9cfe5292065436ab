"""Tables for messaging: the transactional outbox, processed inbound ids, and MQTT identities.

The outbox row is written in the same database transaction as the change it announces, so a
request is never stored without its message, and never announced without being stored.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fastlims.db.base import Base, UTCDateTime, enum_column
from fastlims.timeutil import utcnow


class OutboxMessage(Base):
    __tablename__ = "OutboxMessages"

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column("MessageId", String(36), unique=True)
    topic: Mapped[str] = mapped_column("Topic", String(400))
    payload: Mapped[str] = mapped_column("Payload", Text)
    qos: Mapped[int] = mapped_column("Qos", Integer, default=1)
    retain: Mapped[bool] = mapped_column("Retain", Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column("SentAt", UTCDateTime, nullable=True, index=True)
    attempts: Mapped[int] = mapped_column("Attempts", Integer, default=0)
    last_error: Mapped[str | None] = mapped_column("LastError", Text, nullable=True)


class ProcessedMessage(Base):
    """Inbound message ids already handled: a redelivered QoS 1 message is handled once."""

    __tablename__ = "ProcessedMessages"

    message_id: Mapped[str] = mapped_column("MessageId", String(100), primary_key=True)
    topic: Mapped[str] = mapped_column("Topic", String(400))
    received_at: Mapped[datetime] = mapped_column("ReceivedAt", UTCDateTime, default=utcnow)


class MqttRole(enum.StrEnum):
    lims = "lims"
    partner = "partner"
    bench = "bench"
    monitor = "monitor"  # reads the benches' state, run events and metrics; publishes nothing


class MqttUser(Base):
    """An MQTT identity for the embedded broker; its topic ACL follows from the role."""

    __tablename__ = "MqttUsers"

    id: Mapped[int] = mapped_column("Id", Integer, primary_key=True)
    username: Mapped[str] = mapped_column("Username", String(64), unique=True)
    role: Mapped[MqttRole] = mapped_column("Role", enum_column(MqttRole))
    password_hash: Mapped[str] = mapped_column("PasswordHash", String(200))
    is_active: Mapped[bool] = mapped_column("IsActive", Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column("CreatedAt", UTCDateTime, default=utcnow)

"""Declarative base shared by every capability's tables.

Table and column names follow the seed's SQL schema (PascalCase, e.g. ``TestRequests.UUTIDId``)
so partners' SQL keeps working; Python attributes are snake_case.
"""

from __future__ import annotations

import enum
import functools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Enum, MetaData, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names: Alembic can drop them on every backend (SQLite batch mode too).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def enum_column(enum_cls: type[enum.Enum]) -> Enum:
    """A Python enum stored as its value in a VARCHAR(16): portable across SQLite and PostgreSQL."""
    return Enum(enum_cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (SQLite has no zones, the seed used datetime2) and returns aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime: give it a time zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


@functools.cache
def insert_new(table: Table, unique: tuple[str, ...], dialect: str) -> Any:
    """``INSERT … ON CONFLICT (unique) DO NOTHING`` on SQLite or PostgreSQL: a row delivered again
    (an MQTT redelivery) is stored once. Built once per table and dialect (the bench gateway
    stores hundreds of rows a second)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing(index_elements=list(unique))

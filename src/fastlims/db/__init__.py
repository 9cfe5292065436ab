"""Relational storage: engine, sessions, declarative base and Alembic migrations."""

from fastlims.db.base import Base, UTCDateTime
from fastlims.db.engine import Database

__all__ = ["Base", "Database", "UTCDateTime"]

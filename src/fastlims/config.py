"""One settings object for the whole system, read from ``FASTLIMS_*`` environment variables.

Only :mod:`fastlims.bootstrap` decides which adapter runs from these values; everything else
receives what it needs as arguments.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to ``FASTLIMS_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="FASTLIMS_", extra="ignore")

    data_dir: Path = Field(default=Path("./fastlims-data"), description="Where embedded services keep state")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file fastlims.db in the data dir"
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    timezone: str = Field(
        default="UTC", description="The lab's IANA time zone for showing and entering times"
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Signs session cookies; default: a random key kept in the data dir"
    )
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    secure_cookies: bool = Field(default=False, description="Set when served over HTTPS")
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"FASTLIMS_TIMEZONE={value!r} is not a known IANA time zone") from exc
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'fastlims.db').resolve()}"

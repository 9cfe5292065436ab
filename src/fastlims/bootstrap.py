"""Composition root: the only place that turns Settings into running adapters.

Tests call :func:`build` with their own Settings (a temporary SQLite file, or the PostgreSQL
server the test script starts), exactly as ``fastlims up`` does.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from fastlims.catalog.models import UUT
from fastlims.catalog.transfer import ImportReport, load_seed
from fastlims.config import Settings
from fastlims.db import migrate
from fastlims.db.engine import Database
from fastlims.messaging.topics import Topics

log = logging.getLogger(__name__)


@dataclass
class System:
    """Everything a request handler or command needs, built once per process."""

    settings: Settings
    database: Database
    zone: ZoneInfo
    secret_key: str
    metrics_registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    topics: Topics = field(default_factory=Topics)
    # BackgroundService instances (see fastlims.runtime), started in this order by `fastlims up`.
    services: list[Any] = field(default_factory=list)
    messaging: Any = None
    web_metrics: Any = None  # created once by the web app, however often an app is built

    def close(self) -> None:
        self.database.dispose()


def _secret_key(settings: Settings) -> str:
    """Use FASTLIMS_SECRET_KEY, or a random key kept (0600) in the data dir so sessions survive
    restarts without a secret ever being written to the repository or the logs."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    temporary = path.with_suffix(".tmp")
    temporary.touch(mode=0o600)
    temporary.write_text(key)
    temporary.replace(path)
    return key


def build(settings: Settings | None = None) -> System:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    system = System(
        settings=settings,
        database=database,
        zone=settings.zone,
        secret_key=_secret_key(settings),
        topics=Topics(settings.mqtt_topic_prefix),
    )
    _messaging(system)
    from fastlims.intake.service import _intake_services  # storage, SFTP, upload events

    system.services.extend(_intake_services(settings, database))
    from fastlims.pipeline.service import _pipeline_services  # durable workflow: validate → DoE → schedule → dispatch

    system.services.extend(_pipeline_services(system))
    return system


def _messaging(system: System) -> None:
    """The embedded broker unless FASTLIMS_MQTT_URL names an external one; then the LIMS's client."""
    from fastlims.messaging.broker import BrokerPolicy, EmbeddedBroker
    from fastlims.messaging.client import BrokerAddress, MqttClient
    from fastlims.messaging.metrics import MessagingMetrics
    from fastlims.messaging.service import AckPolicy, MessagingService

    settings = system.settings
    metrics = MessagingMetrics(system.metrics_registry)
    if settings.mqtt_url is None:
        broker = EmbeddedBroker(
            BrokerPolicy(system.database, system.topics, metrics), settings.mqtt_host, settings.mqtt_port
        )
        username, password = broker.add_internal_identity()
        address = BrokerAddress(settings.mqtt_host, settings.mqtt_port)
        system.services.append(broker)
    else:
        address = BrokerAddress.from_url(
            settings.mqtt_url, settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file
        )
        username = settings.mqtt_username
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    client = MqttClient(
        address,
        client_id=settings.mqtt_client_id,
        username=username,
        password=password,
        reconnect_max_s=settings.mqtt_reconnect_max_s,
    )
    system.messaging = MessagingService(
        system.database,
        client,
        system.topics,
        metrics,
        AckPolicy(settings.dt_ack_timeout_s, settings.dt_request_retries),
        poll_s=settings.outbox_poll_s,
    )
    system.services.append(system.messaging)


def prepare_database(system: System, *, seed_catalog: bool = True) -> ImportReport | None:
    """Run migrations to head; on an empty catalog load the shipped seed catalog."""
    migrate.upgrade(system.database.url)
    if not seed_catalog:
        return None
    with system.database.transaction() as session:
        if session.scalar(select(UUT.id).limit(1)) is not None:
            return None
        report = load_seed(session)
    log.info("seed catalog loaded", extra={"summary": report.summary()})
    return report


def data_path(settings: Settings, *parts: str) -> Path:
    return settings.data_dir.joinpath(*parts)

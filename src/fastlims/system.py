"""The running system: every part :func:`fastlims.bootstrap.build` makes, as a typed field.

What one part needs from another is a field set by ``build`` (``system.intake``,
``system.pipeline.engine``), never a search of ``services``. This module only declares the
shape; it sits above the capabilities (it names their classes) and below the web app, which
takes a ``System``. Choosing and wiring the parts is :mod:`fastlims.bootstrap`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry

from fastlims.benches.worker import BenchWorker
from fastlims.config import Settings
from fastlims.db.engine import Database
from fastlims.intake.service import Intake, IntakeService
from fastlims.messaging.broker import EmbeddedBroker
from fastlims.messaging.service import MessagingService
from fastlims.messaging.topics import Topics
from fastlims.pipeline.service import PipelineService
from fastlims.users.throttle import LoginThrottle


@runtime_checkable
class BackgroundService(Protocol):
    """Something ``fastlims up`` (or ``fastlims worker``) runs beside the web server."""

    name: str

    async def start(self) -> None:
        """Return once the service is ready (listening, subscribed, ...)."""

    async def stop(self) -> None:
        """Stop promptly; must be safe to call after a failed or partial start."""


@dataclass
class System:
    """Everything a request handler or command needs, built once per process.

    ``messaging`` is None in a ``fastlims worker`` (it publishes through its own connection, if
    any); ``broker`` is the embedded MQTT broker unless ``FASTLIMS_MQTT_URL`` names an external
    one; ``intake_service`` (SFTP server, pool watcher) runs in ``fastlims up`` only;
    ``bench_worker`` is None when ``FASTLIMS_VIRTUAL_BENCH_ENABLED=false``. ``services`` lists the
    background services in the order ``fastlims up`` starts them (stopped in reverse).
    """

    settings: Settings
    database: Database
    zone: ZoneInfo
    secret_key: str
    topics: Topics
    intake: Intake
    pipeline: PipelineService
    messaging: MessagingService | None = None
    broker: EmbeddedBroker | None = None
    intake_service: IntakeService | None = None
    bench_worker: BenchWorker | None = None
    metrics_registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    services: list[BackgroundService] = field(default_factory=list)
    web_metrics: Any = None  # created once by the web app, however often an app is built
    login_throttle: LoginThrottle | None = None  # the web login's, also made once by the web app

    def close(self) -> None:
        self.database.dispose()

"""Composition root: the only place that turns Settings into running adapters.

:func:`build` makes every part with the capabilities' public constructors and wires them: the
intake's model-ready hook to the pipeline engine, the virtual bench's context to the engine that
binds it, the LIMS's MQTT client to the bench worker. It returns a :class:`~fastlims.system.System`
whose typed fields are those parts. Tests call it with their own Settings (a temporary SQLite
file, or the PostgreSQL server the test script starts), exactly as ``fastlims up`` does;
the CLI calls :func:`build_from_environment`.

What ``role`` builds:

- ``up`` (``fastlims up``): the embedded broker (unless ``FASTLIMS_MQTT_URL``), the LIMS's MQTT
  messaging, the intake's SFTP server and pool watcher, the pipeline, the virtual bench worker;
- ``worker`` (``fastlims worker``): the pipeline and the virtual bench worker only;
- ``cli`` (every other command): the same parts as ``up``, never started; the pipeline engine is
  the command line's own (its executor id ends in ``-cli``), for the ``workflows`` commands.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any, Literal

from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from sqlalchemy import MetaData, select

from fastlims.benches import registry as bench_registry
from fastlims.benches import virtual  # also registers the virtual run's workflow with DBOS
from fastlims.benches.gateway import models as gateway_models
from fastlims.benches.gateway import workflow as gateway_workflow
from fastlims.benches.gateway.ingest import BenchGateway
from fastlims.benches.gateway.workflow import GatewayContext
from fastlims.benches.virtual import BenchContext
from fastlims.benches.worker import BenchWorker
from fastlims.catalog import models as catalog_models
from fastlims.catalog.models import UUT
from fastlims.catalog.transfer import ImportReport, load_seed
from fastlims.config import Settings
from fastlims.db import locks, migrate
from fastlims.db.base import Base
from fastlims.db.engine import Database
from fastlims.intake import models as intake_models
from fastlims.intake.service import Intake, IntakeService
from fastlims.messaging import models as messaging_models
from fastlims.messaging.broker import BrokerLimits, BrokerPolicy, EmbeddedBroker
from fastlims.messaging.client import BrokerAddress, MqttClient, paho_client
from fastlims.messaging.guard import ThrottlePolicy, client_id_for, lims_client_suffix
from fastlims.messaging.metrics import MessagingMetrics
from fastlims.messaging.service import AckPolicy, MessagingService
from fastlims.messaging.topics import Topics
from fastlims.pipeline import models as pipeline_models
from fastlims.pipeline.context import QueuedRun
from fastlims.pipeline.engine import ClientDispatcher, PipelineEngine
from fastlims.pipeline.service import PipelineService
from fastlims.requests import models as request_models
from fastlims.requests import service as requests_service
from fastlims.requests.handshake import DigitalTwinHandshake
from fastlims.runs import events as run_events
from fastlims.runs import models as runs_models
from fastlims.runs import samples as run_samples
from fastlims.system import BackgroundService, System
from fastlims.users import models as user_models

__all__ = ["ConfigurationError", "Role", "System", "build", "build_from_environment", "metadata", "prepare_database"]

log = logging.getLogger(__name__)

Role = Literal["up", "worker", "cli"]

# Every capability's tables, imported here so that one MetaData knows them all (Alembic's env,
# the migration tests): the model registry belongs to the layer that may import every capability.
_MODEL_MODULES = (
    bench_registry,
    gateway_models,
    catalog_models,
    intake_models,
    locks,
    messaging_models,
    pipeline_models,
    request_models,
    run_events,
    run_samples,
    runs_models,
    user_models,
)


def metadata() -> MetaData:
    """The tables of every capability (what the migrations create)."""
    assert _MODEL_MODULES  # imported for their tables
    return Base.metadata


class ConfigurationError(ValueError):
    """The environment's FASTLIMS_* settings are invalid; the message names the variable."""


def build_from_environment(*, role: Role = "cli", **overrides: Any) -> System:
    """:func:`build` with the Settings of the environment (``FASTLIMS_*``, ``.env``), each of
    ``overrides`` replacing one setting (``fastlims worker --executor-id``)."""
    try:
        settings = Settings()
    except ValidationError as exc:  # pydantic's message names the variable
        raise ConfigurationError(f"configuration error: {exc}") from None
    if overrides:
        settings = settings.model_copy(update=overrides)
    return build(settings, role=role)


def build(settings: Settings | None = None, *, role: Role = "up") -> System:
    settings = settings or Settings()
    # Created private (0700): it holds the secret key, the SQLite files, the host key and uploads.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    database = Database(settings.resolved_database_url)
    topics = Topics(settings.mqtt_topic_prefix)
    metrics_registry = CollectorRegistry()
    intake = Intake(settings, database)

    broker: EmbeddedBroker | None = None
    messaging: MessagingService | None = None
    gateway_connection: Callable[[], Any] | None = None
    if role != "worker":
        broker, messaging, gateway_connection = _messaging(settings, database, topics, metrics_registry)

    bench_context = None
    if settings.virtual_bench_enabled:
        bench_context = BenchContext(
            settings=settings,
            database=database,
            intake=intake,
            topics=topics,
            slots=threading.BoundedSemaphore(virtual.concurrency(settings)),
        )
    # The physical run workflow (the gateway's conversation with a bench) moves a run to another
    # bench through the engine's dispatcher, which exists only once the engine does.
    engines: list[PipelineEngine] = []

    def requeue(*, queue: str, key: str, order: dict[str, Any], workflow: str, delay_s: float) -> None:
        ClientDispatcher(engines[0]).enqueue([QueuedRun(queue, key, order, delay_s, workflow)])

    gateway_context = GatewayContext(settings, database, intake.storage, topics, requeue)
    # The engine binds the run workflows' contexts with its own when it launches DBOS.
    bindings = [gateway_workflow.CONTEXT.bound_to(gateway_context)]
    if bench_context is not None:
        bindings.append(virtual.CONTEXT.bound_to(bench_context))
    benches = functools.partial(
        bench_registry.schedulable, default_virtual=settings.pipeline_virtual_benches, zone=settings.timezone
    )
    engine = PipelineEngine(settings, database, intake, benches=benches, role=role, bindings=bindings)
    engines.append(engine)
    intake.on_model_ready(engine.on_model_ready)
    pipeline = PipelineService(engine, enabled=role == "worker" or settings.pipeline_enabled)
    bench_worker = None
    if bench_context is not None:
        bench_worker = BenchWorker(
            bench_context,
            engine,
            client_id=_lims_client_id(settings, f"bench-{engine.identity.executor_id}"),
            messaging_client=None if messaging is None else messaging.client,
        )
        if role != "cli":  # the sandbox probe runs while the other services start (the worker waits for it)
            from fastlims.benches import sandboxing

            sandboxing.detect_in_background(settings)
    intake_service = None if role == "worker" else IntakeService(intake)

    # The gateway hears the benches where the LIMS has its MQTT connection; it hands what a run's
    # workflow waits for to DBOS, so it starts after the pipeline.
    gateway = None
    if gateway_connection is not None:
        gateway = BenchGateway(
            database, topics, connect=gateway_connection, notify=gateway_workflow.notify,
            partner_of=lambda session, uuid: requests_service.get_by_uuid(session=session, test_uuid=uuid).dt_partner,
        )  # fmt: skip
    services: list[BackgroundService] = []
    for service in (broker, messaging, intake_service, pipeline, bench_worker, gateway):
        if service is not None:
            services.append(service)
    return System(
        settings=settings,
        database=database,
        zone=settings.zone,
        secret_key=_secret_key(settings),
        topics=topics,
        intake=intake,
        pipeline=pipeline,
        messaging=messaging,
        broker=broker,
        intake_service=intake_service,
        bench_worker=bench_worker,
        metrics_registry=metrics_registry,
        services=services,
    )


def _messaging(
    settings: Settings, database: Database, topics: Topics, metrics_registry: CollectorRegistry
) -> tuple[EmbeddedBroker | None, MessagingService, Callable[[], Any]]:
    """The embedded broker unless FASTLIMS_MQTT_URL names an external one; then the LIMS's client."""
    metrics = MessagingMetrics(metrics_registry)
    broker: EmbeddedBroker | None = None
    if settings.mqtt_url is None:
        limits = BrokerLimits(
            max_packet_bytes=settings.mqtt_max_packet_bytes,
            connect_timeout_s=settings.mqtt_connect_timeout_s,
            throttle=ThrottlePolicy(settings.mqtt_auth_max_failures, settings.mqtt_auth_lock_s),
            revocation_poll_s=settings.mqtt_revocation_poll_s,
        )
        broker = EmbeddedBroker(BrokerPolicy(database, topics, metrics, limits), settings.mqtt_host, settings.mqtt_port)
        username, password = broker.add_internal_identity()
        address = BrokerAddress(settings.mqtt_host, settings.mqtt_port)
    else:
        address = BrokerAddress.from_url(
            settings.mqtt_url, settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file
        )
        username = settings.mqtt_username
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    client = MqttClient(
        address,
        client_id=client_id_for(username or "fastlims", _lims_client_suffix(settings)),
        username=username,
        password=password,
        reconnect_max_s=settings.mqtt_reconnect_max_s,
    )
    messaging = MessagingService(
        database,
        client,
        topics,
        metrics,
        AckPolicy(settings.dt_ack_timeout_s, settings.dt_request_retries),
        DigitalTwinHandshake(),
        poll_s=settings.outbox_poll_s,
    )
    # Under the identity it connects with: on the embedded broker that is the LIMS's internal
    # identity, not FASTLIMS_MQTT_USERNAME (the broker refuses a client id of another user's).
    gateway_id = client_id_for(username or "fastlims", f"{_lims_client_suffix(settings)}-gateway")

    def gateway_connection() -> Any:
        return paho_client(
            address, client_id=gateway_id, username=username, password=password,
            reconnect_max_s=settings.mqtt_reconnect_max_s,
        )  # fmt: skip

    return broker, messaging, gateway_connection


def _lims_client_suffix(settings: Settings) -> str:
    """FASTLIMS_MQTT_CLIENT_ID, or a suffix derived from the secret key: stable across restarts,
    unguessable without the key (nobody can aim a CONNECT at the LIMS's session)."""
    return settings.mqtt_client_id or lims_client_suffix(_secret_key(settings))


def _lims_client_id(settings: Settings, role: str) -> str:
    """A worker's own connection with the LIMS's identity on an external broker."""
    return client_id_for(settings.mqtt_username or "fastlims", f"{_lims_client_suffix(settings)}-{role}")


def _secret_key(settings: Settings) -> str:
    """Use FASTLIMS_SECRET_KEY, or a random key kept (0600) in the data dir so sessions survive
    restarts without a secret ever being written to the repository or the logs."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    temporary = path.with_suffix(".tmp")
    temporary.touch(mode=0o600)
    temporary.write_text(key)
    temporary.replace(path)
    return key


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

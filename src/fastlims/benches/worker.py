"""The virtual bench worker of a process: takes the virtual runs off the ``bench-<name>`` queues
(the runs themselves are :mod:`.virtual`'s durable workflow) and gives them a way to publish
live messages.

The composition root builds one :class:`BenchWorker` when ``FASTLIMS_VIRTUAL_BENCH_ENABLED``; it is
a ``BackgroundService`` started after the pipeline, whose engine launches DBOS (and binds the
run's :class:`~.virtual.BenchContext` with the pipeline's own). In a process whose pipeline does
not run (``FASTLIMS_PIPELINE_ENABLED=false``) it stays idle.

Live messages go through a publisher: in ``fastlims up`` the LIMS's own MQTT client (from the DBOS
step's thread into its asyncio loop, :class:`LoopPublisher`); in ``fastlims worker`` a dedicated
paho client (:class:`PahoPublisher`) when ``FASTLIMS_MQTT_URL`` names an external broker (a worker
cannot log in to another process's embedded broker), else none: the run still completes and its
results are stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from concurrent.futures import Future
from typing import Any, Protocol

from fastlims.benches import registry
from fastlims.benches.virtual import BenchContext, Publisher, concurrency
from fastlims.config import Settings
from fastlims.db.engine import Database
from fastlims.runs import queues

log = logging.getLogger(__name__)


# --- live messages --------------------------------------------------------------------------------


class LoopPublisher:
    """Publishes through an :class:`~fastlims.messaging.client.MqttClient` owned by an asyncio
    loop in another thread (the LIMS's connection in ``fastlims up``)."""

    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.client, self.loop = client, loop
        self._pending: list[Future[Any]] = []
        self._lock = threading.Lock()

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        async def send() -> Any:
            return await self.client.publish(topic, payload, qos)  # returns the PUBACK future

        try:  # waiting for the hand-over (not the PUBACK) keeps batches in order
            acked = asyncio.run_coroutine_threadsafe(send(), self.loop).result(timeout=10)
        except Exception:  # noqa: BLE001 - live metrics are best effort; the Parquet file is the record
            log.warning("could not publish", extra={"topic": topic}, exc_info=True)
            return
        with self._lock:
            self._pending.append(asyncio.run_coroutine_threadsafe(asyncio.wait_for(_wrap(acked), 30), self.loop))

    def flush(self, timeout_s: float) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        deadline = time.monotonic() + timeout_s
        for future in pending:
            with contextlib.suppress(Exception):
                future.result(timeout=max(0.0, deadline - time.monotonic()))


async def _wrap(future: Any) -> Any:
    return await future


class PahoPublisher:
    """A dedicated connection for a worker process (clean session, its own client id)."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from fastlims.messaging.client import BrokerAddress

        assert settings.mqtt_url is not None
        address = BrokerAddress.from_url(
            settings.mqtt_url, settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file
        )
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        if settings.mqtt_username is not None:
            password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
            self._client.username_pw_set(settings.mqtt_username, password)
        if address.tls:
            import ssl

            context = ssl.create_default_context(cafile=str(address.ca_file) if address.ca_file else None)
            if address.cert_file:
                context.load_cert_chain(str(address.cert_file), str(address.key_file) if address.key_file else None)
            self._client.tls_set_context(context)
        self._client.max_inflight_messages_set(200)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(1, settings.mqtt_reconnect_max_s)
        self._infos: list[Any] = []
        self._lock = threading.Lock()
        self._client.connect_async(address.host, address.port, keepalive=30)
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        info = self._client.publish(topic, payload, qos=qos)
        with self._lock:
            self._infos.append(info)

    def flush(self, timeout_s: float) -> None:
        with self._lock:
            infos, self._infos = self._infos, []
        deadline = time.monotonic() + timeout_s
        for info in infos:
            with contextlib.suppress(Exception):
                info.wait_for_publish(timeout=max(0.01, deadline - time.monotonic()))

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


# --- the worker -----------------------------------------------------------------------------------


class QueueHost(Protocol):
    """The engine whose DBOS the worker takes its queues from (``PipelineEngine``)."""

    launched: bool

    def ensure_bench_queue(self, queue: str) -> None:
        """Register a virtual bench's queue (one run at a time) unless done already."""


def bench_queues(database: Database, settings: Settings) -> list[str]:
    """The queues of every virtual bench a schedule may use (the registry's, else the defaults)."""
    with database.transaction() as session:
        named = [r.name for r in registry.get_all(session=session) if r.kind == registry.Kind.virtual]
    names = named or registry.default_virtual_names(settings.pipeline_virtual_benches)
    return [queues.bench_queue(name) for name in names]


def listen(engine: QueueHost, queues: list[str]) -> None:
    """Take work from ``queues`` in this launched process.

    The engine listens to the pipeline queue only (``DBOS.listen_queues`` may be called once,
    before launch); DBOS 3.4's queue manager re-reads its listening list every second, so the bench
    queues are added to that list here, and registered (one run at a time per bench) if new.
    """
    from dbos._dbos import _get_dbos_instance

    listening = _get_dbos_instance()._listening_queues  # noqa: SLF001 - see the docstring
    for queue in queues:
        engine.ensure_bench_queue(queue)
        if listening is not None and queue not in listening:
            listening.append(queue)


class BenchWorker:
    """``BackgroundService``: the virtual bench side of a launched pipeline engine (``fastlims up``
    and ``fastlims worker``). ``messaging_client`` is the LIMS's own MQTT client when this process
    has one; ``client_id`` names the dedicated connection of a worker process."""

    name = "virtual-bench-worker"

    def __init__(
        self, context: BenchContext, engine: QueueHost, *, client_id: str, messaging_client: Any = None
    ) -> None:
        self.context = context
        self.engine = engine
        self.client_id = client_id
        self.messaging_client = messaging_client
        self.owned: PahoPublisher | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def settings(self) -> Settings:
        return self.context.settings

    def attach(self, publisher: Publisher | None, owned: PahoPublisher | None = None) -> None:
        """After the engine launched: publish through ``publisher`` (closing ``owned`` on detach)
        and listen to the bench queues."""
        self.context.publisher, self.owned = publisher, owned
        listen(self.engine, bench_queues(self.context.database, self.settings))
        log.info(
            "virtual bench worker running",
            extra={"concurrency": concurrency(self.settings), "live_metrics": publisher is not None},
        )

    def detach(self) -> None:
        self.context.publisher = None
        if self.owned is not None:
            self.owned.close()
            self.owned = None

    async def start(self) -> None:
        from fastlims.benches import sandboxing

        # Before any run: where no sandbox works, refuse (unless the lab allowed unsandboxed runs).
        self.context.sandbox = await asyncio.to_thread(sandboxing.require, self.settings)
        status = sandboxing.status(self.settings)
        (log.info if status.sandboxed else log.warning)("virtual bench sandbox", extra={"sandbox": status.text})
        if not self.engine.launched:
            log.info("no virtual bench worker: the pipeline does not run in this process")
            return
        owned: PahoPublisher | None = None
        publisher: Publisher | None = None
        if self.messaging_client is not None:
            publisher = LoopPublisher(self.messaging_client, asyncio.get_running_loop())
        elif self.settings.mqtt_url:
            owned = publisher = PahoPublisher(self.settings, self.client_id)
        else:
            log.warning(
                "virtual runs in this worker publish no live metrics: set FASTLIMS_MQTT_URL to an external broker"
            )
        await asyncio.to_thread(self.attach, publisher, owned)
        self._task = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        while True:  # benches added to the registry later
            await asyncio.sleep(self.settings.pipeline_heartbeat_s)
            try:
                await asyncio.to_thread(listen, self.engine, bench_queues(self.context.database, self.settings))
            except Exception:  # noqa: BLE001 - the next beat tries again
                log.warning("could not refresh the bench queues", exc_info=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.detach()

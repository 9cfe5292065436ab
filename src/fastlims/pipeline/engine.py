"""The durable-workflow engine of one process: DBOS's lifecycle, starting workflows, liveness.

DBOS is process-global (one instance, one registry), so exactly one :class:`PipelineEngine` may
be launched per process; it owns that instance from ``launch`` to ``shutdown``. Configuration
comes from ``FASTLIMS_*`` settings only (no dbos-config.yaml):

- the system database beside the application's (:func:`.durable.system_database_url`);
- a pinned application version (:func:`.durable.application_version`), so a redeploy of the same
  version recovers pending workflows;
- a stable executor id (``FASTLIMS_PIPELINE_EXECUTOR_ID``, else host name + data-dir hash):
  DBOS recovers a process's own pending workflows when it starts again with the same id.

Work is never stranded: each process writes a heartbeat (``PipelineExecutors``) and, every
``FASTLIMS_PIPELINE_HEARTBEAT_S``, hands the pending workflows of executors silent for longer than
``FASTLIMS_PIPELINE_EXECUTOR_TIMEOUT_S`` back to their queue, where any live process takes them.
The hand-back is DBOS's own recovery operation (a compare-and-set on the workflow's executor),
so two survivors, or a survivor and the restarted owner, cannot both take a workflow. It also
starts the workflow of any ModelReady request that has none yet (a lost hook call).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from dbos import DBOS, DBOSClient, EnqueueOptions, SetWorkflowID
from sqlalchemy import select, update
from sqlalchemy.pool import NullPool

from fastlims import __version__, contexts
from fastlims.config import Settings
from fastlims.contexts import Binding
from fastlims.db.engine import Database
from fastlims.intake.processor import ModelReady
from fastlims.intake.service import Intake
from fastlims.pipeline import durable, workflow
from fastlims.pipeline.context import BenchLookup, StepContext, VirtualRun
from fastlims.pipeline.models import Executor
from fastlims.pipeline.pause import PausePoints
from fastlims.requests.models import TestRequest
from fastlims.requests.states import Status
from fastlims.runs import queues
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)


class ExecutorInUse(RuntimeError):
    """Another live process already runs workflows under this executor id."""


@dataclass(frozen=True)
class Identity:
    """Who this process is to DBOS."""

    executor_id: str
    application_version: str
    system_database_url: str


def identity(settings: Settings, database_url: str, role: str = "up") -> Identity:
    executor = settings.pipeline_executor_id or durable.default_executor_id(
        socket.gethostname(), str(settings.data_dir.resolve())
    )
    if not settings.pipeline_executor_id and role != "up":
        executor = f"{executor}-{role}"
    return Identity(
        executor_id=executor,
        application_version=durable.application_version(__version__, settings.pipeline_application_version),
        system_database_url=durable.system_database_url(database_url, settings.pipeline_system_database_url),
    )


def open_client(ident: Identity) -> DBOSClient:
    """A DBOS client on the system database (CLI, dispatch): runs no workflow code itself."""
    return DBOSClient(system_database_url=ident.system_database_url, application_name=durable.APPLICATION_NAME)


def reenqueue_orphans(client: DBOSClient, executor_ids: list[str], version: str) -> list[str]:
    """Give the pending workflows of dead ``executor_ids`` back to their queues.

    DBOS's open-source package only recovers a process's own workflows at its start-up (the
    automatic fail-over is in its commercial Conductor), so this calls the same system-database
    operation that start-up recovery uses: it moves a workflow from PENDING to ENQUEUED only while
    it is still recorded under one of ``executor_ids``, which makes it safe to repeat and safe
    against a concurrent resume by another survivor.
    """
    from dbos._utils import INTERNAL_QUEUE_NAME

    system_db = client._sys_db  # noqa: SLF001 - see the docstring
    recovered: list[str] = []
    for executor in executor_ids:
        for pending in system_db.get_pending_workflows(executor, version):
            if system_db.reenqueue_for_recovery(pending.workflow_id, [executor], INTERNAL_QUEUE_NAME):
                recovered.append(pending.workflow_id)
    return recovered


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _quiet_dbos_logging() -> None:
    """Route DBOS's log records through ours (JSON or text) instead of its own console handler."""
    dbos_logger = logging.getLogger("dbos")
    if not dbos_logger.handlers:
        dbos_logger.addHandler(logging.NullHandler())  # DBOS adds its console handler only when none is set
    dbos_logger.propagate = True


class ClientDispatcher:
    """Hands virtual runs to their bench's DBOS queue with a client, the run's idempotency key
    as the queued workflow's id (DBOS keeps one workflow per id), all in one transaction."""

    def __init__(self, engine: PipelineEngine) -> None:
        self.engine = engine

    def enqueue_virtual(self, runs: list[VirtualRun]) -> None:
        client = self.engine.client
        for queue in sorted({run.queue for run in runs}):
            self.engine.ensure_bench_queue(queue)
        # enqueue_in_transaction wants a connection to the system database: the client's own.
        with client._sys_db.engine.begin() as connection:  # noqa: SLF001
            for run in runs:
                options = EnqueueOptions(
                    workflow_name=queues.VIRTUAL_RUN_WORKFLOW,
                    queue_name=run.queue,
                    workflow_id=run.key,
                    app_version=self.engine.identity.application_version,
                )
                if run.delay_s > 0:
                    options["delay_seconds"] = run.delay_s
                client.enqueue_in_transaction(connection, options, run.order)


class PipelineEngine:
    """Owns DBOS in this process; starts, recovers and hands out pipeline workflows."""

    _launched_engine: ClassVar[PipelineEngine | None] = None

    def __init__(
        self,
        settings: Settings,
        database: Database,
        intake: Intake,
        *,
        benches: BenchLookup,
        role: str = "up",
        bindings: Sequence[Binding] = (),
    ) -> None:
        """``benches``: the benches a schedule may use (the bench registry's, see
        :class:`~.context.BenchLookup`); ``bindings``: the contexts of the other workflows this
        process runs (the virtual bench's), bound with the pipeline's own when DBOS launches."""
        self.settings = settings
        self.database = database
        self.intake = intake
        self.benches = benches
        self.role = role
        self.bindings = tuple(bindings)
        self.identity = identity(settings, database.url, role)
        self.pause = PausePoints(settings.pipeline_test_pause, settings.pipeline_test_pause_dir)
        self._client: DBOSClient | None = None
        self._client_lock = threading.Lock()
        self._bench_queues: set[str] = set()
        self.launched = False

    # --- lifecycle

    def dbos_config(self) -> dict[str, Any]:
        return {
            "name": durable.APPLICATION_NAME,
            "system_database_url": self.identity.system_database_url,
            "application_version": self.identity.application_version,
            "executor_id": self.identity.executor_id,
            "log_level": "DEBUG" if self.settings.log_level.upper() == "DEBUG" else "WARNING",
            # SQLite has no LISTEN/NOTIFY: wait results are polled; keep that poll short.
            "notification_listener_polling_interval_sec": 0.1,
            "max_executor_threads": max(16, 4 * self.settings.pipeline_worker_concurrency),
        }

    def launch(self) -> None:
        """Start DBOS here: recover this executor's pending workflows, take queued ones."""
        if PipelineEngine._launched_engine is not None:
            raise RuntimeError("a pipeline engine already runs in this process (DBOS is process-global)")
        self.claim_executor()
        recovering = self._own_pending()
        _quiet_dbos_logging()
        DBOS(config=self.dbos_config())  # type: ignore[arg-type]
        DBOS.listen_queues([durable.PIPELINE_QUEUE])  # bench queues belong to the bench workers
        step_context = StepContext(
            settings=self.settings,
            database=self.database,
            intake=self.intake,
            benches=self.benches,
            dispatcher=ClientDispatcher(self),
            pause=self.pause,
        )
        # Before DBOS.launch: it may resume a recovered workflow at once, which needs its context.
        contexts.bind([workflow.CONTEXT.bound_to(step_context), *self.bindings])
        try:
            DBOS.launch()
            DBOS.register_queue(
                durable.PIPELINE_QUEUE,
                worker_concurrency=self.settings.pipeline_worker_concurrency,
                polling_interval_sec=self.settings.pipeline_queue_poll_s,
                on_conflict="always_update",
            )
        except BaseException:
            DBOS.destroy()
            contexts.unbind()
            raise
        PipelineEngine._launched_engine = self
        self.launched = True
        log.info(
            "pipeline engine launched",
            extra={
                "executor_id": self.identity.executor_id,
                "application_version": self.identity.application_version,
                "system_database": _redacted(self.identity.system_database_url),
                "recovering": recovering,
            },
        )

    def _own_pending(self) -> int | None:
        """How many of this executor's workflows DBOS will recover (None before the first launch)."""
        from sqlalchemy.engine import make_url

        url = make_url(self.identity.system_database_url)
        if url.get_backend_name() == "sqlite" and not os.path.exists(url.database or ""):
            return None
        if url.get_backend_name() == "postgresql":  # probe quietly: DBOS logs a failed connection as an error
            from sqlalchemy import create_engine

            probe = create_engine(url.set(drivername="postgresql+psycopg"), poolclass=NullPool)
            try:
                with probe.connect():
                    pass
            except Exception:  # noqa: BLE001 - no system database yet: DBOS creates it at launch
                return None
            finally:
                probe.dispose()
        try:
            pending = self.client.list_workflows(
                status="PENDING",
                executor_id=self.identity.executor_id,
                app_version=self.identity.application_version,
                load_input=False,
                load_output=False,
            )
        except Exception:  # noqa: BLE001 - informational: a new system database has no tables yet
            return None
        return len(pending)

    def shutdown(self) -> None:
        self.pause.release_all()
        if self.launched:
            DBOS.destroy()
            contexts.unbind()
            PipelineEngine._launched_engine = None
            self.launched = False
            try:
                with self.database.transaction() as session:
                    session.execute(
                        update(Executor)
                        .where(Executor.executor_id == self.identity.executor_id, Executor.pid == os.getpid())
                        .values(stopped_at=utcnow())
                    )
            except Exception:  # noqa: BLE001 - informational only; the heartbeat's age decides liveness
                log.warning("could not record the executor's stop", exc_info=True)
        with self._client_lock:
            if self._client is not None:
                self._client.destroy()
                self._client = None

    @property
    def client(self) -> DBOSClient:
        with self._client_lock:
            if self._client is None:
                self._client = open_client(self.identity)
            return self._client

    def ensure_bench_queue(self, queue: str) -> None:
        """Register a virtual bench's queue (one run at a time) unless its worker already did."""
        if queue in self._bench_queues:
            return
        self.client.register_queue(queue, worker_concurrency=1, global_concurrency=1, on_conflict="never_update")
        self._bench_queues.add(queue)

    # --- starting workflows

    def start(self, test_uuid: str) -> str:
        """Start (or find) the request's workflow; the same request twice gives one workflow."""
        if not self.launched:
            raise RuntimeError("the pipeline engine is not launched in this process")
        workflow_id = durable.workflow_id(test_uuid)
        with SetWorkflowID(workflow_id):
            DBOS.enqueue_workflow(durable.PIPELINE_QUEUE, workflow.request_pipeline, test_uuid)
        with self.database.transaction() as session:
            session.execute(
                update(TestRequest)
                .where(TestRequest.test_uuid == test_uuid, TestRequest.workflow_id.is_(None))
                .values(workflow_id=workflow_id)
                .execution_options(synchronize_session=False)
            )
        return workflow_id

    def on_model_ready(self, notice: ModelReady) -> None:
        """The intake's hook (after its commit, in its thread). Without a launched engine in
        this process the periodic sweep of a running one starts the workflow instead."""
        if self.launched:
            self.start(notice.test_uuid)

    def start_waiting(self, limit: int = 200) -> list[str]:
        """Start the workflows of ModelReady requests that have none (the hook was lost)."""
        with self.database.transaction() as session:
            waiting = list(
                session.scalars(
                    select(TestRequest.test_uuid)
                    .where(TestRequest.status == int(Status.ModelReady), TestRequest.workflow_id.is_(None))
                    .order_by(TestRequest.id)
                    .limit(limit)
                )
            )
        return [self.start(test_uuid) for test_uuid in waiting]

    # --- liveness

    def claim_executor(self) -> None:
        """Record this process under its executor id; refuse when a live process holds it."""
        host, pid, now = socket.gethostname(), os.getpid(), utcnow()
        timeout = timedelta(seconds=self.settings.pipeline_executor_timeout_s)
        with self.database.transaction() as session:
            row = session.get(Executor, self.identity.executor_id)
            held = row is not None and row.stopped_at is None and now - row.heartbeat_at < timeout
            if held and row is not None and row.pid != pid and (row.hostname != host or _pid_alive(row.pid)):
                raise ExecutorInUse(
                    f"executor id {self.identity.executor_id!r} is in use by process {row.pid} on {row.hostname}"
                    f" (heartbeat {(now - row.heartbeat_at).total_seconds():.0f} s ago): give each process its"
                    " own FASTLIMS_PIPELINE_EXECUTOR_ID (or fastlims worker --executor-id)"
                )
            if row is None:
                row = Executor(executor_id=self.identity.executor_id)
                session.add(row)
            row.hostname, row.pid, row.role = host, pid, self.role
            row.application_version = self.identity.application_version
            row.started_at = row.heartbeat_at = now
            row.stopped_at = None

    def heartbeat(self) -> None:
        with self.database.transaction() as session:
            session.execute(
                update(Executor)
                .where(Executor.executor_id == self.identity.executor_id)
                .values(heartbeat_at=utcnow(), stopped_at=None, pid=os.getpid())
            )

    def live_executors(self) -> set[str]:
        horizon = utcnow() - timedelta(seconds=self.settings.pipeline_executor_timeout_s)
        with self.database.transaction() as session:
            live = set(
                session.scalars(
                    select(Executor.executor_id).where(Executor.heartbeat_at >= horizon, Executor.stopped_at.is_(None))
                )
            )
        return live | {self.identity.executor_id}

    def recover_orphans(self) -> list[str]:
        """Hand the pending workflows of executors that are gone back to their queues."""
        live = self.live_executors()
        quiet_ms = self.settings.pipeline_executor_timeout_s * 1000
        now_ms = utcnow().timestamp() * 1000
        pending = self.client.list_workflows(
            status="PENDING", app_version=self.identity.application_version, load_input=False, load_output=False
        )
        dead = sorted(
            {
                wf.executor_id
                for wf in pending
                if wf.executor_id
                and wf.executor_id not in live
                and now_ms - float(wf.updated_at or wf.created_at or 0) >= quiet_ms
            }
        )
        if not dead:
            return []
        recovered = reenqueue_orphans(self.client, dead, self.identity.application_version)
        if recovered:
            log.warning(
                "resumed the workflows of executors that are gone",
                extra={"executors": dead, "workflows": len(recovered), "by": self.identity.executor_id},
            )
        return recovered

    def tick(self) -> dict[str, int]:
        """One heartbeat: record liveness, recover orphans, start waiting requests."""
        self.heartbeat()
        recovered = self.recover_orphans()
        started = self.start_waiting()
        return {"recovered": len(recovered), "started": len(started)}


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a log line must not fail
        return "(unparsable URL)"


def workflow_summary(status: Any) -> dict[str, Any]:
    """A DBOS WorkflowStatus as plain JSON (CLI, API)."""
    output = status.output if isinstance(status.output, dict) else None
    return {
        "workflow_id": status.workflow_id,
        "status": status.status,
        "name": status.name,
        "queue": status.queue_name,
        "executor_id": status.executor_id,
        "application_version": status.app_version,
        "created_at_ms": status.created_at,
        "updated_at_ms": status.updated_at,
        "outcome": output.get("outcome") if output else None,
        "error": str(status.error) if status.error else None,
        "output": json.loads(json.dumps(output, default=str)) if output else None,
    }

"""Pure names and addresses of the durable-workflow engine: the DBOS system database URL, the
pinned application version, this process's executor id, workflow ids and idempotency keys. The
queue and workflow names under which dispatch hands runs to the benches are
:mod:`fastlims.runs.queues` (the benches use them too, and import nothing of the pipeline).

No I/O: everything is derived from the settings' values, so a test or the CLI can compute the
same names as the running process.
"""

from __future__ import annotations

import hashlib
import re

from sqlalchemy.engine import make_url

#: Bumped whenever the workflow's sequence of steps changes incompatibly: a pending workflow
#: recorded under one sequence must not be replayed by code with another. A redeploy that keeps
#: the package version and this tag recovers every pending workflow.
WORKFLOW_SCHEMA = "wf2"  # wf2: physical runs (the gateway), twin runs in the run workflows

#: The DBOS application name (DBOS scopes queues and recovery by it).
APPLICATION_NAME = "fastlims"

#: The queue every pipeline workflow runs from; any process that launched the engine takes work.
PIPELINE_QUEUE = "pipeline"

#: The workflow name of the per-request pipeline.
PIPELINE_WORKFLOW = "fastlims.pipeline.request"

_WORKFLOW_PREFIX = "pipeline-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def workflow_id(test_uuid: str) -> str:
    """The pipeline workflow of a request: one per request, so an event delivered twice starts it once."""
    return f"{_WORKFLOW_PREFIX}{test_uuid.lower()}"


def request_uuid_of(workflow: str) -> str | None:
    """The request's UUID in a pipeline workflow id, or None for another workflow."""
    if workflow.startswith(_WORKFLOW_PREFIX):
        return workflow[len(_WORKFLOW_PREFIX) :]
    return None


def global_run_id(test_uuid: str, design_run_id: str) -> str:
    """A run id unique across requests (``<test_UUID>.run-001``); valid as an MQTT topic level."""
    return f"{test_uuid.lower()}.{design_run_id}"


def idempotency_key(workflow: str, run_id: str) -> str:
    """What the bench queue and physical benches de-duplicate a dispatched run on."""
    return f"{workflow}:{run_id}"


def application_version(package_version: str, pinned: str | None = None) -> str:
    """The version workflows are recorded under: the setting when given, else the package version
    and :data:`WORKFLOW_SCHEMA` (not DBOS's default hash of the code, which changes on any edit
    and would strand every pending workflow after a redeploy)."""
    if pinned:
        return pinned
    return f"{package_version}+{WORKFLOW_SCHEMA}"


def default_executor_id(hostname: str, data_dir: str) -> str:
    """Stable across restarts of the same installation, different between machines and data dirs:
    DBOS recovers a process's pending workflows on start-up only for the same executor id."""
    digest = hashlib.sha256(data_dir.encode("utf-8")).hexdigest()[:8]
    host = _UNSAFE.sub("-", hostname).strip("-")[:40] or "host"
    return f"{host}-{digest}"


def system_database_url(application_url: str, configured: str | None = None) -> str:
    """Where DBOS keeps workflow state, beside the application's database.

    SQLite ``…/name.db`` → ``sqlite:///…/name.dbos.sqlite`` (a sibling file, so the data dir holds
    both); PostgreSQL ``…/name`` → the same server and credentials, database ``name_dbos``
    (DBOS creates it when missing). An in-memory SQLite database cannot hold durable state.
    """
    if configured:
        return configured
    url = make_url(application_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            raise ValueError(
                "an in-memory SQLite database cannot keep durable workflows: use a database file or set"
                " FASTLIMS_PIPELINE_SYSTEM_DATABASE_URL"
            )
        stem = database[: -len(".db")] if database.endswith(".db") else database
        return f"sqlite:///{stem}.dbos.sqlite"
    if backend == "postgresql":
        name = url.database or "postgres"
        return url.set(drivername="postgresql", database=f"{name}_dbos").render_as_string(hide_password=False)
    raise ValueError(
        f"durable workflows need SQLite or PostgreSQL, not {backend!r}: set FASTLIMS_PIPELINE_SYSTEM_DATABASE_URL"
    )

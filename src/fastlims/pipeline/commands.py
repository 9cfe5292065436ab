"""``fastlims workflows list | show | resume | cancel | recover``.

The ``workflows`` commands talk to DBOS's system database through a client (they run no
workflow code), so they work while ``fastlims up`` and the workers run, from any machine that
reaches the database. ``show``, ``resume`` and ``cancel`` take a workflow id, a test_UUID or a
request number.

``fastlims.cli`` adds the group to the ``fastlims`` command and passes, as the click context's
object, how to build the system (the command line's own pipeline engine is ``system.pipeline.engine``);
this module never imports the CLI or the composition root.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import click

from fastlims.db.engine import Database
from fastlims.pipeline.engine import PipelineEngine
from fastlims.pipeline.service import PipelineService

STATUSES = ("PENDING", "ENQUEUED", "DELAYED", "SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


class CommandSystem(Protocol):
    """What these commands use of the system ``fastlims.cli`` builds (a ``bootstrap.System``)."""

    database: Database
    pipeline: PipelineService


def _system() -> CommandSystem:
    build: Callable[[], CommandSystem] | None = click.get_current_context().obj
    if build is None:
        raise click.UsageError("run the workflows commands through the fastlims command")
    return build()


def _engine(system: CommandSystem) -> PipelineEngine:
    return system.pipeline.engine


def _client(engine: PipelineEngine) -> Any:
    from sqlalchemy.engine import make_url

    url = make_url(engine.identity.system_database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        raise click.ClickException(
            f"no workflow has run yet: {url.database} does not exist (it is created by fastlims up or fastlims worker)"
        )
    try:
        return engine.client
    except Exception as exc:  # noqa: BLE001 - named for the operator
        raise click.ClickException(f"cannot open the workflow database: {exc}") from None


def _when(epoch_ms: int | None) -> str:
    if not epoch_ms:
        return "-"
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _resolve(system: CommandSystem, reference: str) -> str:
    """A workflow id from a workflow id, a test_UUID or a request number."""
    from fastlims.intake import layout
    from fastlims.pipeline import durable
    from fastlims.requests import service as requests

    if layout.is_uuid(reference):
        return durable.workflow_id(reference)
    if reference.upper().startswith("TR-"):
        with system.database.transaction() as session:
            try:
                request = requests.get(session=session, request_number=reference.upper())
            except requests.NotFound as exc:
                raise click.ClickException(str(exc)) from None
            return request.workflow_id or durable.workflow_id(request.test_uuid)
    return reference


@click.group()
def workflows() -> None:
    """Durable pipeline workflows (one per test request)."""


@workflows.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only these (repeatable).")
@click.option("--limit", default=50, show_default=True)
@click.option("--all", "everything", is_flag=True, help="Also bench runs and other workflows, not only pipelines.")
def workflows_list(statuses: tuple[str, ...], limit: int, everything: bool) -> None:
    """Newest first: id, status, executor, version, last update, outcome."""
    from fastlims.pipeline import durable
    from fastlims.pipeline.engine import workflow_summary

    engine = _engine(_system())
    rows = _client(engine).list_workflows(
        status=list(statuses) or None,
        name=None if everything else durable.PIPELINE_WORKFLOW,
        limit=limit,
        sort_desc=True,
        load_input=False,
    )
    if not rows:
        click.echo("no workflows" + (f" with status {', '.join(statuses)}" if statuses else ""))
    for row in rows:
        item = workflow_summary(row)
        outcome = item["outcome"] or (item["error"] or "")[:80]
        click.echo(
            f"{item['workflow_id']}\t{item['status']}\t{item['executor_id'] or '-'}\t{item['application_version']}"
            f"\t{_when(item['updated_at_ms'])}\t{outcome}"
        )
    engine.shutdown()


@workflows.command("show")
@click.argument("reference")
def workflows_show(reference: str) -> None:
    """The workflow's status, result and steps (REFERENCE: workflow id, test_UUID or request number)."""
    from fastlims.pipeline.engine import workflow_summary

    system = _system()
    engine = _engine(system)
    client = _client(engine)
    workflow_id = _resolve(system, reference)
    found = client.list_workflows(workflow_ids=[workflow_id])
    if not found:
        raise click.ClickException(f"no workflow {workflow_id!r}")
    summary = workflow_summary(found[0])
    steps = [
        {
            "step": step["function_id"],
            "name": step["function_name"],
            "output": step["output"],
            "error": str(step["error"]) if step["error"] is not None else None,
        }
        for step in client.list_workflow_steps(workflow_id)
    ]
    click.echo(json.dumps({**summary, "steps": steps}, indent=2, default=str))
    engine.shutdown()


@workflows.command("resume")
@click.argument("reference")
@click.option("--force", is_flag=True, help="Even when the process running it is alive (it may then run twice).")
def workflows_resume(reference: str, force: bool) -> None:
    """Run a stopped workflow again from its last completed step (cancelled, failed after a fix,
    or left by a process that is gone)."""
    system = _system()
    engine = _engine(system)
    client = _client(engine)
    workflow_id = _resolve(system, reference)
    found = client.list_workflows(workflow_ids=[workflow_id], load_input=False, load_output=False)
    if not found:
        raise click.ClickException(f"no workflow {workflow_id!r}")
    status = found[0]
    if status.status == "SUCCESS":
        raise click.ClickException(f"{workflow_id} already finished (SUCCESS): nothing to resume")
    if status.status == "PENDING" and status.executor_id in engine.live_executors() and not force:
        raise click.ClickException(
            f"{workflow_id} is running on live executor {status.executor_id}; use --force to resume it anyway"
        )
    client.resume_workflow(workflow_id)
    click.echo(f"{workflow_id} resumed (was {status.status}); a running fastlims process picks it up")
    engine.shutdown()


@workflows.command("cancel")
@click.argument("reference")
@click.option("--keep-request", is_flag=True, help="Only stop the workflow; leave the request's status alone.")
def workflows_cancel(reference: str, keep_request: bool) -> None:
    """Stop a workflow at its next step; the request is cancelled too unless it is already Running."""
    from fastlims.pipeline import durable
    from fastlims.requests import service as requests
    from fastlims.requests.states import CANCELLABLE, Status

    system = _system()
    engine = _engine(system)
    client = _client(engine)
    workflow_id = _resolve(system, reference)
    found = client.list_workflows(workflow_ids=[workflow_id], load_input=False, load_output=False)
    if not found:
        raise click.ClickException(f"no workflow {workflow_id!r}")
    if found[0].status in ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"):
        raise click.ClickException(f"{workflow_id} already ended ({found[0].status}): nothing to cancel")
    client.cancel_workflow(workflow_id)
    click.echo(f"{workflow_id} cancelled")
    test_uuid = durable.request_uuid_of(workflow_id)
    if test_uuid and not keep_request:
        with system.database.transaction() as session:
            try:
                request = requests.get_by_uuid(session=session, test_uuid=test_uuid)
            except requests.NotFound:
                request = None
            if request is not None and Status(request.status) in CANCELLABLE:
                requests.change_status(
                    session=session,
                    request=request,
                    target=Status.Cancelled,
                    actor="cli",
                    reason=f"workflow {workflow_id} cancelled by an operator",
                    expected=Status(request.status),
                )
                click.echo(f"request {request.request_number} cancelled")
            elif request is not None:
                click.echo(f"request {request.request_number} stays {Status(request.status).name}")
    engine.shutdown()


@workflows.command("recover")
def workflows_recover() -> None:
    """Hand the pending workflows of processes that are gone (no heartbeat) back to the queue
    now, instead of at the next heartbeat of a running process."""
    engine = _engine(_system())
    _client(engine)
    recovered = engine.recover_orphans()
    click.echo(f"{len(recovered)} workflow(s) handed back: " + (", ".join(recovered) or "none"))
    engine.shutdown()

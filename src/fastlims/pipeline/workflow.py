"""The Simulation Orchestrator (seed §6.1) as one DBOS workflow per request.

``request_pipeline(test_uuid)`` runs the steps in order, each a DBOS step: the Data Processor,
the DoE runner, the Schedule runner and Dispatch (:mod:`.steps`). DBOS records each step's
result (the small metadata dict) in its system database; after a crash the workflow is replayed,
finished steps return their recorded result and the interrupted one runs again.

Failures: a transient error (storage, database, broker) is retried by DBOS with doubling waits
(``FASTLIMS_PIPELINE_STEP_ATTEMPTS`` from ``FASTLIMS_PIPELINE_RETRY_INTERVAL_S``); when a round
of attempts is used up the workflow sleeps durably (``FASTLIMS_PIPELINE_RETRY_PAUSE_S``) and
tries again, until ``FASTLIMS_PIPELINE_GIVE_UP_S``. A permanent error (invalid input, infeasible
schedule, an unexpected exception) ends the request Failed with the step and the reason.

The step functions need the process's database and storage; DBOS is process-global, so they
find one :class:`~.context.StepContext` in :data:`CONTEXT`, bound by the engine when it launches
(with the virtual bench's, see :mod:`fastlims.contexts`).
"""

from __future__ import annotations

import logging
from typing import Any

from dbos import DBOS
from dbos._error import DBOSMaxStepRetriesExceeded

from fastlims.contexts import Slot
from fastlims.pipeline.context import Metadata, StepContext, check_metadata
from fastlims.pipeline.durable import PIPELINE_WORKFLOW
from fastlims.pipeline.errors import PermanentError, Stopped, is_transient
from fastlims.pipeline.steps import STEPS, fail

log = logging.getLogger(__name__)

CONTEXT: Slot[StepContext] = Slot("pipeline engine")


def context() -> StepContext:
    return CONTEXT.get()


def _call_step(name: str, meta: Metadata) -> Metadata:
    """Run one step; an unexpected exception that retrying cannot cure becomes permanent."""
    try:
        return check_metadata(name, STEPS[name](context(), meta))
    except (PermanentError, Stopped):
        raise
    except Exception as exc:
        if is_transient(exc):
            log.warning("transient error in a pipeline step", extra={"step": name, "error": repr(exc)[:500]})
            raise
        log.exception("pipeline step failed", extra={"step": name, "test_uuid": meta.get("test_uuid")})
        raise PermanentError(name, f"{type(exc).__name__}: {exc}") from None


def _call_fail(meta: Metadata, step: str, reason: str) -> Metadata:
    return fail(context(), meta, step, reason)


def _durably(name: str, function: Any, *args: Any) -> Any:
    """``DBOS.run_step`` with retries; rounds of attempts separated by durable sleeps."""
    settings = context().settings
    options: Any = {
        "name": f"pipeline.{name}",
        "retries_allowed": True,
        "max_attempts": settings.pipeline_step_attempts,
        "interval_seconds": settings.pipeline_retry_interval_s,
        "backoff_rate": 2.0,
        "should_retry": is_transient,
    }
    round_s = sum(settings.pipeline_retry_interval_s * 2**k for k in range(settings.pipeline_step_attempts - 1))
    waited = 0.0
    while True:
        try:
            return DBOS.run_step(options, function, *args)
        except DBOSMaxStepRetriesExceeded as exc:
            last = exc.errors[-1] if exc.errors else exc
            waited += round_s + settings.pipeline_retry_pause_s
            if waited >= settings.pipeline_give_up_s:
                raise PermanentError(
                    name, f"still failing after about {waited:.0f} s of retries: {type(last).__name__}: {last}"
                ) from None
            log.warning(
                "pipeline step keeps failing; pausing before the next round",
                extra={"step": name, "error": repr(last)[:500], "pause_s": settings.pipeline_retry_pause_s},
            )
            DBOS.sleep(settings.pipeline_retry_pause_s)


@DBOS.workflow(name=PIPELINE_WORKFLOW)
def request_pipeline(test_uuid: str) -> dict[str, Any]:
    """Validate → DoE → schedule → dispatch for one request; returns the final metadata with
    ``outcome``: ``dispatched``, ``failed`` (with ``failed_step`` and ``reason``) or ``stopped``."""
    meta: Metadata = {"workflow_id": DBOS.workflow_id, "test_uuid": test_uuid}
    try:
        for name in STEPS:
            meta = _durably(name, _call_step, name, meta)
    except PermanentError as exc:
        return dict(_durably("fail", _call_fail, meta, exc.step, exc.reason))
    except Stopped as exc:
        log.info("pipeline stopped", extra={"test_uuid": test_uuid, "reason": str(exc)})
        return {**meta, "outcome": "stopped", "reason": str(exc)}
    return {**meta, "outcome": "dispatched"}

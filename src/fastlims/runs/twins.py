"""Hybrid runs: a physical run's twin and the comparison of the two.

When a physical run of a request with Digital Twin models starts, the bench gateway books its twin
(:func:`add_twin`): the same procedure with the same factors, run on the request's FMUs by a
virtual bench (its row names the physical run in ``TwinOf``). The twin counts as a run of the
request, but a prediction is not a measurement: the request completes only when a non-twin run
completed, and a failed twin is named in the request's reason without failing it
(:func:`fastlims.runs.service._decide_request`).

Whichever of the two ends second computes the comparison once (:func:`compare_after_end`, called
by both benches right after :func:`~fastlims.runs.service.run_ended`, in its transaction and under
its per-request lock): the residual (:mod:`.comparison`) is stored on the physical run's row
(``ComparisonJson``) and beside its results (``comparison.json``), published through the outbox on
``benches/{bench}/runs/{run_id}/comparison`` and the partner's copy, and, when the RMS voltage
error exceeds ``FASTLIMS_TWIN_RESIDUAL_ALERT_V``, written in the request's audit trail as an alert.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fastlims.intake import files, layout
from fastlims.intake.storage import BlobStorage
from fastlims.messaging import outbox
from fastlims.messaging.schemas import RunComparison, StepResidualMessage, seed_time
from fastlims.messaging.topics import check_id
from fastlims.requests import service as requests
from fastlims.runs import comparison
from fastlims.runs.lifecycle import RunState
from fastlims.runs.models import Channel, ScheduledRun
from fastlims.runs.results import RESULTS_FILE, read_parquet
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)

TWIN_SUFFIX = ".twin"
COMPARISON_FILE = "comparison.json"
ACTOR = "twin-comparison"
_COLUMNS = (comparison.TIME, comparison.VOLTAGE, comparison.TEMPERATURE, comparison.STEP_COUNT, comparison.STEP_ID)


def twin_run_id(run_id: str) -> str:
    """The twin's run id (``<run_id>.twin``), checked as an MQTT topic level (≤ 128 characters)."""
    return check_id("twin run_id", f"{run_id}{TWIN_SUFFIX}")


def add_twin(session: Session, *, run_id: str, bench: str, now: datetime) -> ScheduledRun:
    """The physical run's twin row on virtual bench ``bench``, dispatched now (the twin is compute:
    it runs as soon as the bench's queue reaches it); the existing one when it was added already
    (a step that runs again after a crash adds nothing)."""
    twin_id = twin_run_id(run_id)
    existing = session.scalar(select(ScheduledRun).where(ScheduledRun.run_id == twin_id))
    if existing is not None:
        return existing
    physical = session.scalar(select(ScheduledRun).where(ScheduledRun.run_id == run_id))
    if physical is None:
        raise LookupError(f"no scheduled run has run_id {run_id!r}")
    if physical.twin_of is not None:
        raise ValueError(f"run {run_id!r} is itself a twin (of {physical.twin_of!r})")
    length = max(physical.end_at - physical.test_start_at, physical.end_at - physical.start_at)
    row = ScheduledRun(
        run_id=twin_id,
        request_id=physical.request_id,
        test_uuid=physical.test_uuid,
        workflow_id=physical.workflow_id,
        design_run_id=f"{physical.design_run_id}{TWIN_SUFFIX}"[:32],
        bench=bench,
        bench_kind="virtual",
        start_at=now,
        end_at=now + length,
        test_start_at=now,
        parameters_json=physical.parameters_json,
        values_json=physical.values_json,
        procedure_key=physical.procedure_key,
        idempotency_key=f"{physical.workflow_id}:{twin_id}",
        channel=Channel.queue.value,
        state=RunState.dispatched.value,
        dispatched_at=now,
        twin_of=physical.run_id,
    )
    session.add(row)
    session.flush()
    return row


def _pair(session: Session, run_id: str) -> tuple[ScheduledRun, ScheduledRun] | None:
    """(physical, twin) of a run that is either; None when the run has no twin."""
    row = session.scalar(select(ScheduledRun).where(ScheduledRun.run_id == run_id))
    if row is None:
        return None
    if row.twin_of is not None:
        physical = session.scalar(select(ScheduledRun).where(ScheduledRun.run_id == row.twin_of))
        return (physical, row) if physical is not None else None
    twin = session.scalar(select(ScheduledRun).where(ScheduledRun.twin_of == row.run_id))
    return (row, twin) if twin is not None else None


def _series(storage: BlobStorage, key: str, which: str) -> comparison.Series:
    try:
        data = storage.get(key)
    except FileNotFoundError:
        raise comparison.ComparisonError(f"the {which} run has no results file ({key})") from None
    return comparison.series_from(read_parquet(data, columns=list(_COLUMNS)).columns, which)


def compare_after_end(
    session: Session, *, storage: BlobStorage, run_id: str, threshold_v: float, actor: str = ACTOR
) -> RunComparison | None:
    """Once both the physical run and its twin completed, compare them (once) and store, publish
    and, past the threshold, audit the result; None when there is nothing (new) to compare.

    Two runs that cannot be compared (no sample in a common time span, a missing column) keep the
    reason in ``ComparisonJson`` (``problem``) and publish nothing."""
    pair = _pair(session, run_id)
    if pair is None:
        return None
    physical, twin = pair
    if physical.comparison_json is not None:
        return None  # computed when the other run ended (or by an earlier run of this step)
    if physical.state != RunState.completed.value or twin.state != RunState.completed.value:
        return None
    request = requests.get_by_uuid(session=session, test_uuid=physical.test_uuid)
    results = f"{request.simulation_folder}/{layout.SIMULATION_RESULTS}"
    try:
        measured = _series(storage, f"{results}/{physical.run_id}/{RESULTS_FILE}", "measured")
        predicted = _series(storage, f"{results}/{twin.run_id}/{RESULTS_FILE}", "predicted")
        found = comparison.compare(measured, predicted)
        message = _message(physical, twin, found, threshold_v)
    except Exception as exc:  # noqa: BLE001 - a comparison that cannot be made never undoes the run's end
        problem = str(exc) if isinstance(exc, comparison.ComparisonError) else f"{type(exc).__name__}: {exc}"
        log.warning("hybrid run not compared", extra={"run_id": physical.run_id, "problem": problem})
        physical.comparison_json = json.dumps({"twin_run_id": twin.run_id, "problem": problem[:2000]})
        return None
    overall = found.overall
    alert = message.alert
    document = message.model_dump(mode="json")
    physical.comparison_json = json.dumps(document, allow_nan=False)
    files.put_json(storage, f"{results}/{physical.run_id}/{COMPARISON_FILE}", document)
    outbox.enqueue(session, f"benches/{physical.bench}/runs/{physical.run_id}/comparison", message, qos=1)
    if request.dt_partner:
        outbox.enqueue(session, f"partners/{request.dt_partner}/runs/{physical.run_id}/comparison", message, qos=1)
    if alert:
        requests.audit(
            session=session,
            test_uuid=physical.test_uuid,
            actor=actor,
            field=f"run {physical.run_id} twin residual",
            to_value=f"{overall.rms_voltage_error_V:.4f} V RMS",
            reason=alert_text(document),
        )
    log.info(
        "hybrid run compared",
        extra={"run_id": physical.run_id, "rms_V": overall.rms_voltage_error_V, "alert": alert},
    )
    return message


def _message(
    physical: ScheduledRun, twin: ScheduledRun, found: comparison.Comparison, threshold_v: float
) -> RunComparison:
    overall = found.overall
    return RunComparison(
        run_id=physical.run_id,
        twin_run_id=twin.run_id,
        test_UUID=physical.test_uuid,
        bench=physical.bench,
        twin_bench=twin.bench,
        at=seed_time(utcnow()),
        samples=overall.samples,
        uncovered_samples=found.uncovered,
        rms_voltage_error_V=overall.rms_voltage_error_V,
        max_voltage_error_V=overall.max_voltage_error_V,
        mean_voltage_error_V=overall.mean_voltage_error_V,
        temperature_samples=overall.temperature_samples,
        rms_temperature_error_K=overall.rms_temperature_error_K,
        max_temperature_error_K=overall.max_temperature_error_K,
        threshold_V=threshold_v,
        alert=comparison.exceeds(found, threshold_v),
        steps=[StepResidualMessage.model_validate(_finite(step.as_dict())) for step in found.steps],
    )


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """NaN (a step without a compared sample) as None: JSON has no NaN."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in values.items()}


def alert_text(document: dict[str, Any]) -> str:
    """The alert in words, with the numbers (the audit entry, the request page)."""
    temperature = document.get("rms_temperature_error_K")
    said = f", RMS temperature error {temperature:.2f} K" if temperature is not None else ""
    return (
        f"the Digital Twin model no longer matches the real cell: run {document['run_id']} measured vs its twin "
        f"{document['twin_run_id']}: RMS voltage error {document['rms_voltage_error_V']:.4f} V "
        f"(max {document['max_voltage_error_V']:.4f} V){said} over {document['samples']} samples exceeds "
        f"{document['threshold_V']:g} V (FASTLIMS_TWIN_RESIDUAL_ALERT_V)"
    )

"""The upload handler and the Data Processor on SQLite and PostgreSQL: correlation, completion in
any order, exactly-once processing, the ModelReady outcome and quarantine."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from fastlims.bootstrap import System
from fastlims.intake.events import UploadEvent
from fastlims.intake.processor import ModelReady
from fastlims.intake.service import Intake
from fastlims.messaging.models import OutboxMessage
from fastlims.requests.states import Status
from tests.integration.intake.helpers import (
    ModelFiles,
    new_request,
    quarantined,
    request_row,
    upload,
    upload_set,
)


def test_a_valid_set_reaches_model_ready_and_moves_into_the_simulation_folder(
    system: System, intake: Intake, fmi2_set: ModelFiles
) -> None:
    request = new_request(system)
    notices: list[ModelReady] = []
    intake.on_model_ready(notices.append)

    outcomes = upload_set(intake, f"pool/{request.test_uuid}/", fmi2_set.files())

    assert [o.outcome for o in outcomes] == ["waiting", "waiting", "accepted"]
    assert outcomes[0].missing == ["inter_connection.json"]
    row = request_row(system, request.test_uuid)
    assert row["status"] == "ModelReady"
    assert row["fmu_ready_at"] is not None
    folder = row["simulation_folder"]
    assert folder.startswith("fastest_simulation_") and folder.endswith("_" + request.test_uuid)
    assert row["fmu_blob_path"] == f"{folder}/fastest-models/fmus/"
    stored = {f.key for f in intake.storage.list(folder)}
    assert {f"{folder}/fastest-models/fmus/{name}" for name in fmi2_set.files()} <= stored
    assert f"{folder}/intake.json" in stored
    for sub in ("doe-input", "doe-output", "schedule-output", "simulation-results"):
        assert (intake.storage.local_root / folder / sub).is_dir()  # type: ignore[operator]
    assert intake.storage.list("pool") == []
    assert not (intake.storage.local_root / "pool" / request.test_uuid).exists()  # type: ignore[operator]
    assert [n.test_uuid for n in notices] == [request.test_uuid]
    assert notices[0].fmus == [
        f"{folder}/fastest-models/fmus/battery_cell.fmu",
        f"{folder}/fastest-models/fmus/cycler.fmu",
    ]
    assert notices[0].interconnection == f"{folder}/fastest-models/fmus/inter_connection.json"
    transition = [e for e in row["events"] if e[2] == "ModelReady"]
    assert len(transition) == 1 and transition[0][3] == "intake"
    with system.database.transaction() as session:
        topics = [m.topic for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
        payloads = [
            json.loads(m.payload)
            for m in session.scalars(select(OutboxMessage).where(OutboxMessage.topic.endswith("/status")))
        ]
    assert f"requests/{request.test_uuid}/status" in topics
    assert payloads[-1]["status"]["value"] == "ModelReady"


def test_fmi3_set_with_the_uuid_in_the_file_names_in_any_order(
    system: System, intake: Intake, fmi3_set: ModelFiles
) -> None:
    request = new_request(system)
    u = request.test_uuid
    first = upload(intake, f"pool/inter_connection_{u}.json", fmi3_set.interconnection)
    assert first.outcome == "waiting" and first.missing == ["at least one .fmu file"]
    assert upload(intake, f"pool/{u}-cycler.fmu", fmi3_set.cycler).outcome == "waiting"
    assert upload(intake, f"pool/battery_cell_{u}.fmu", fmi3_set.battery_cell).outcome == "accepted"
    row = request_row(system, u)
    assert row["status"] == "ModelReady"
    names = {f.key.rsplit("/", 1)[1] for f in intake.storage.list(row["fmu_blob_path"])}
    assert names == {"battery_cell.fmu", "cycler.fmu", "inter_connection.json"}


def test_an_upload_before_the_dt_ack_counts_as_acceptance(system: System, intake: Intake, fmi2_set: ModelFiles) -> None:
    request = new_request(system, Status.Submitted)
    assert upload_set(intake, f"pool/{request.test_uuid}/", fmi2_set.files())[-1].outcome == "accepted"
    row = request_row(system, request.test_uuid)
    moves = [(e[1], e[2]) for e in row["events"] if e[0] == "status"]
    assert moves == [("Submitted", "ModelRequested"), ("ModelRequested", "ModelReady")]
    assert row["dt_accepted_at"] is not None


def test_the_same_event_twice_processes_once(system: System, intake: Intake, fmi2_set: ModelFiles) -> None:
    request = new_request(system)
    prefix = f"pool/{request.test_uuid}/"
    for name in ("battery_cell.fmu", "cycler.fmu"):
        upload(intake, prefix + name, fmi2_set.files()[name])
    intake.storage.put(prefix + "inter_connection.json", fmi2_set.interconnection)
    event = UploadEvent(path=prefix + "inter_connection.json", source="eventgrid", event_id="e-1")
    # Two deliveries at once (Event Grid retrying while the folder watcher also fires), then a late one.
    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(intake.handler.handle_sync, [event] * 4))
    late = intake.handler.handle_sync(event)
    assert sorted(o.outcome for o in outcomes).count("accepted") == 1
    assert late.outcome == "duplicate"
    ready = [e for e in request_row(system, request.test_uuid)["events"] if e[2] == "ModelReady"]
    assert len(ready) == 1
    # A repeated event for a file of a set that is still waiting changes nothing either.
    other = new_request(system)
    first = upload(intake, f"pool/{other.test_uuid}/cycler.fmu", fmi2_set.cycler)
    again = intake.handler.handle_sync(UploadEvent(path=f"pool/{other.test_uuid}/cycler.fmu", source="watcher"))
    assert (first.outcome, again.outcome) == ("waiting", "waiting")


def test_a_set_for_a_request_not_waiting_goes_to_quarantine_and_the_request_is_unchanged(
    system: System, intake: Intake, fmi2_set: ModelFiles
) -> None:
    cancelled = new_request(system, Status.Cancelled)
    outcome = upload(intake, f"pool/{cancelled.test_uuid}/cycler.fmu", fmi2_set.cycler)
    assert outcome.outcome == "quarantined"
    assert request_row(system, cancelled.test_uuid)["status"] == "Cancelled"
    [(folder, reason)] = quarantined(intake, cancelled.test_uuid)
    assert "is Cancelled; it is not waiting for models" in reason["reason"]
    assert intake.storage.exists(f"{folder}/cycler.fmu")
    assert reason["files"][0]["from"] == f"pool/{cancelled.test_uuid}/cycler.fmu"

    ready = new_request(system, Status.ModelReady)
    upload(intake, f"pool/{ready.test_uuid}/cycler.fmu", fmi2_set.cycler)
    assert "is ModelReady" in quarantined(intake, ready.test_uuid)[0][1]["reason"]
    assert request_row(system, ready.test_uuid)["status"] == "ModelReady"


def test_files_matching_no_request_are_quarantined_with_a_reason(
    system: System, intake: Intake, fmi2_set: ModelFiles
) -> None:
    unknown = "0b9a4c39-1d2e-4f3a-8b5c-6d7e8f901234"
    assert upload(intake, f"pool/{unknown}/cycler.fmu", fmi2_set.cycler).outcome == "quarantined"
    assert "no test request has test_UUID" in quarantined(intake, unknown)[0][1]["reason"]
    assert upload(intake, "pool/cycler.fmu", fmi2_set.cycler).outcome == "quarantined"
    [(folder, reason)] = quarantined(intake, None)
    assert folder.startswith("quarantine/unmatched/")
    assert "names no test request" in reason["reason"]
    assert intake.storage.list("pool") == []


def test_files_outside_the_subject_filter_are_ignored_and_left_alone(system: System, intake: Intake) -> None:
    request = new_request(system)
    for key in (f"pool/{request.test_uuid}/notes.txt", f"elsewhere/{request.test_uuid}/cycler.fmu"):
        assert upload(intake, key, b"x").outcome == "ignored"
        assert intake.storage.exists(key)
    assert request_row(system, request.test_uuid)["status"] == "ModelRequested"


def test_an_invalid_set_fails_the_request_with_every_reason_and_is_quarantined(
    system: System, intake: Intake, factory_set: ModelFiles, client: TestClient
) -> None:
    request = new_request(system)
    wrong = json.dumps(
        {
            "FMU_signal_connections": [
                {"InSignalReference": "battery_cell/I", "OutSignalReference": "cycler/done"},
                {"InSignalReference": "battery_cell/I", "OutSignalReference": "cycler/I"},
                {"InSignalReference": "battery_cell/nothing", "OutSignalReference": "cycler/I"},
                {"InSignalReference": "battery_cell/V", "OutSignalReference": "cycler/I"},
            ]
        }
    ).encode()
    files = {"battery_cell.fmu": factory_set.battery_cell, "cycler.fmu": b"not a zip", "inter_connection.json": wrong}
    outcome = upload_set(intake, f"pool/{request.test_uuid}/", files)[-1]
    assert outcome.outcome == "quarantined" and outcome.status == "Failed"
    codes = sorted(p.code for p in outcome.problems)
    # The cycler is unreadable, so references into it are not checked further; its own problem says why.
    assert codes == ["direction", "driven-twice", "not-a-zip", "unknown-variable"]
    row = request_row(system, request.test_uuid)
    assert row["status"] == "Failed"
    assert "cycler.fmu: is not a zip archive" in row["failure_reason"]
    assert "has no variable 'nothing'" in row["failure_reason"] and "driven 2 times" in row["failure_reason"]
    [(folder, reason)] = quarantined(intake, request.test_uuid)
    assert folder.startswith(f"quarantine/{request.test_uuid}/")
    assert {f["to"].rsplit("/", 1)[1] for f in reason["files"]} == set(files)
    assert all(intake.storage.exists(f["to"]) for f in reason["files"])
    assert {p["code"] for p in reason["problems"]} == set(codes)
    assert intake.storage.list("pool") == []
    # Visible in the API, on the page and on MQTT (the status message in the outbox).
    answer = client.get(f"/api/v1/test-requests/{request.request_number}", headers=request.requester.headers).json()
    assert answer["status"] == "Failed" and "not a zip archive" in answer["failure_reason"]
    with system.database.transaction() as session:
        message = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.topic == f"requests/{request.test_uuid}/status")
            .order_by(OutboxMessage.id.desc())
        ).first()
    assert message is not None
    payload = json.loads(message.payload)
    assert payload["status"]["value"] == "Failed" and "not a zip archive" in payload["reason"]


def test_a_set_waits_for_every_fmu_its_interconnection_names_then_times_out(
    system: System, intake: Intake, factory_set: ModelFiles
) -> None:
    request = new_request(system)
    prefix = f"pool/{request.test_uuid}/"
    naming_a_motor = json.dumps(
        {
            "FMU_signal_connections": [
                {"InSignalReference": "battery_cell/I", "OutSignalReference": "cycler/I"},
                {"InSignalReference": "motor/I_in", "OutSignalReference": "battery_cell/V"},
            ]
        }
    ).encode()
    upload(intake, prefix + "inter_connection.json", naming_a_motor)
    outcome = upload(intake, prefix + "cycler.fmu", factory_set.cycler)
    assert outcome.outcome == "waiting"
    assert outcome.missing == [
        "battery_cell.fmu (named in inter_connection.json)",
        "motor.fmu (named in inter_connection.json)",
    ]
    assert upload(intake, prefix + "battery_cell.fmu", factory_set.battery_cell).missing == [
        "motor.fmu (named in inter_connection.json)"
    ]
    assert intake.handler.sweep_stale_sets() == []  # not stale yet
    intake.processor.set_timeout = timedelta(0)
    [swept] = intake.handler.sweep_stale_sets()
    assert swept.outcome == "quarantined" and [p.code for p in swept.problems] == ["unknown-fmu"]
    assert request_row(system, request.test_uuid)["status"] == "Failed"

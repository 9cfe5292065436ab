"""The upload set against the request's procedure, with real uploads of the reference FMUs on SQLite
and PostgreSQL: a set that cannot run the request's test is quarantined with its reason and the
request fails while it waits for models (at ModelRequested), never once it runs."""

from __future__ import annotations

import json
from typing import Any

from fastlims.bootstrap import System
from fastlims.intake.service import Intake
from fastlims.peers.digital_twin import interconnection as reference_interconnection
from tests.integration.intake.helpers import ModelFiles, new_request, quarantined, request_row, upload_set


def waiting_request(system: System, variables: dict[str, Any] | None = None) -> str:
    """A ModelRequested request (its procedure chosen at submit); returns its test_UUID."""
    return new_request(system, variables=variables).test_uuid


def with_interconnection(models: ModelFiles, document: dict[str, Any]) -> dict[str, bytes]:
    return {**models.files(), "inter_connection.json": json.dumps(document).encode()}


def failed_at_model_requested(system: System, test_uuid: str) -> str:
    row = request_row(system, test_uuid)
    assert row["status"] == "Failed"
    (failure,) = [e for e in row["events"] if e[2] == "Failed"]
    assert failure[1] == "ModelRequested" and failure[3] == "intake"
    return str(row["failure_reason"])


def test_a_set_without_the_roles_the_procedure_needs_is_quarantined_and_the_request_fails_waiting(
    system: System, intake: Intake, fmi2_set: ModelFiles
) -> None:
    test_uuid = waiting_request(system)  # the test name's default procedure
    plain = {"FMU_signal_connections": reference_interconnection("battery_cell", "cycler")["FMU_signal_connections"]}
    outcomes = upload_set(intake, f"pool/{test_uuid}/", with_interconnection(fmi2_set, plain))

    assert outcomes[-1].outcome == "quarantined"
    reason = failed_at_model_requested(system, test_uuid)
    assert (
        "inter_connection.json: declares no UUT_ports, and the request's procedure needs the roles current," in reason
    )
    ((_, document),) = quarantined(intake, test_uuid)
    assert [p["code"] for p in document["problems"]] == ["port-role"]
    assert document["request_status"] == "Failed"
    assert intake.storage.list("pool") == []


def test_a_temperature_termination_needs_the_temperature_role(
    system: System, intake: Intake, fmi2_set: ModelFiles
) -> None:
    lines = ["Charge at 0.5C until 4.2 V or 45 degC", "Rest for 10 minutes"]
    test_uuid = waiting_request(system, {"test_procedures": lines})
    document = reference_interconnection("battery_cell", "cycler")
    del document["UUT_ports"]["temperature"]
    outcomes = upload_set(intake, f"pool/{test_uuid}/", with_interconnection(fmi2_set, document))

    assert outcomes[-1].outcome == "quarantined"
    assert [p.message for p in outcomes[-1].problems] == [
        "UUT_ports has no 'temperature' role, and the request's procedure needs it: steps[0] (Charge at 0.5C until"
        " 4.2 V or until 45 degC) ends on the UUT's temperature; map it to an FMU port (see"
        " docs/partners-upload.md, 'UUT ports', and docs/procedures.md)"
    ]
    assert "UUT_ports has no 'temperature' role" in failed_at_model_requested(system, test_uuid)


def test_an_fmu_port_profile_must_not_drive_a_role_port(system: System, intake: Intake, fmi2_set: ModelFiles) -> None:
    profile = {"Name": "cycler/current_setpoint", "unit": "A", "values": [{"timestamp": 0, "value": 1.0}]}
    test_uuid = waiting_request(system, {"custom_profile": profile})
    outcomes = upload_set(intake, f"pool/{test_uuid}/", fmi2_set.files())

    assert outcomes[-1].outcome == "quarantined"
    (problem,) = outcomes[-1].problems
    assert problem.code == "port-driven" and problem.variable == "cycler/current_setpoint"
    assert problem.message.startswith(
        "the request's custom_profile drives cycler/current_setpoint, which is UUT_ports.current"
    )
    failed_at_model_requested(system, test_uuid)


def test_the_reference_set_fits_a_procedure_with_every_role(
    system: System, intake: Intake, fmi2_set: ModelFiles
) -> None:
    lines = ["Set ambient to 40 degC and rest for 1 hour", "Discharge at 1C until 2.5 V or 55 degC"]
    test_uuid = waiting_request(system, {"test_procedures": lines})
    outcomes = upload_set(intake, f"pool/{test_uuid}/", fmi2_set.files())
    assert outcomes[-1].outcome == "accepted", outcomes[-1]
    assert request_row(system, test_uuid)["status"] == "ModelReady"

"""Every damaged upload, through the real handler and storage: the request fails with that
damage's own reason, and every file of the set ends in quarantine/<test_UUID>/ with reason.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastlims.bootstrap import System
from fastlims.intake.service import Intake
from tests.integration.intake.helpers import ModelFiles, new_request, quarantined, request_row, upload_set
from tests.unit.intake.corruptions import FMU_CORRUPTIONS, INTERCONNECTION_FAULTS, Corruption, InterconnectionFault
from tests.unit.intake.fmu_factory import BATTERY_CELL, fmu_entries


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return fmu_entries(BATTERY_CELL, 2, tmp_path_factory.mktemp("entries"))


def _assert_failed_and_quarantined(
    system: System, intake: Intake, test_uuid: str, files: dict[str, bytes], code: str, fragment: str
) -> None:
    outcome = upload_set(intake, f"pool/{test_uuid}/", files)[-1]
    assert outcome.outcome == "quarantined", outcome
    row = request_row(system, test_uuid)
    assert row["status"] == "Failed"
    assert fragment in row["failure_reason"]
    [(folder, reason)] = quarantined(intake, test_uuid)
    assert code in {p["code"] for p in reason["problems"]}
    assert any(fragment in p["message"] for p in reason["problems"])
    assert sorted(Path(f["to"]).name for f in reason["files"]) == sorted(files)
    for name, data in files.items():
        assert intake.storage.get(f"{folder}/{name}") == data  # untouched, nothing deleted
    assert intake.storage.list("pool") == []


@pytest.mark.parametrize("corruption", FMU_CORRUPTIONS, ids=lambda c: c.name)
def test_damaged_fmu_fails_the_request_and_is_quarantined(
    corruption: Corruption, system: System, intake: Intake, factory_set: ModelFiles, entries: dict[str, bytes]
) -> None:
    if corruption.limits is not None:
        intake.processor.limits = corruption.limits
    request = new_request(system)
    files = {**factory_set.files(), "battery_cell.fmu": corruption.damage(entries)}
    _assert_failed_and_quarantined(system, intake, request.test_uuid, files, corruption.code, corruption.fragment)


@pytest.mark.parametrize("fault", INTERCONNECTION_FAULTS, ids=lambda f: f.name)
def test_wrong_interconnection_fails_the_request_and_is_quarantined(
    fault: InterconnectionFault, system: System, intake: Intake, factory_set: ModelFiles
) -> None:
    request = new_request(system)
    files = {**factory_set.files(), "inter_connection.json": fault.document}
    _assert_failed_and_quarantined(system, intake, request.test_uuid, files, fault.code, fault.fragment)


def test_wrong_uut_ports_fail_the_request_at_model_requested(
    system: System, intake: Intake, fmi2_set: ModelFiles
) -> None:
    """The reference FMUs with a role on the cell's current input, which the cycler already drives:
    the set is quarantined at upload, the request Failed from ModelRequested (not later, at Running)."""
    request = new_request(system)
    document = json.loads(fmi2_set.interconnection)
    document["UUT_ports"]["current"] = "battery_cell/I"
    files = {**fmi2_set.files(), "inter_connection.json": json.dumps(document).encode()}
    fragment = "UUT_ports.current 'battery_cell/I' is already driven by a connection"
    _assert_failed_and_quarantined(system, intake, request.test_uuid, files, "port-driven", fragment)
    row = request_row(system, request.test_uuid)
    assert [(e[1], e[2]) for e in row["events"] if e[2] == "Failed"] == [("ModelRequested", "Failed")]
    [(_, reason)] = quarantined(intake, request.test_uuid)
    assert [p["variable"] for p in reason["problems"]] == ["battery_cell/I"]

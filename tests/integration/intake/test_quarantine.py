"""Every damaged upload, through the real handler and storage: the request fails with that
damage's own reason, and every file of the set ends in quarantine/<test_UUID>/ with reason.json."""

from __future__ import annotations

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

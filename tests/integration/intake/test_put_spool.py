"""An HTTP model upload is spooled in the LIMS's private data folder, never the system's /tmp
(shared with every user of the machine), and the spool is emptied afterwards."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fastlims.bootstrap import System
from tests.integration.intake.helpers import ModelFiles, add_uploader, new_request


@pytest.mark.parametrize("backend", ["sqlite"])
def test_put_spools_in_the_data_folder(
    system: System, client: TestClient, fmi2_set: ModelFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = system.intake.storage
    spooled: list[Path] = []
    real_put = storage.put

    def watching_put(key: str, data: object) -> object:  # the real put, noting where the body was spooled
        if isinstance(data, Path):
            spooled.append(data)
        return real_put(key, data)  # type: ignore[arg-type]

    monkeypatch.setattr(storage, "put", watching_put)
    request = new_request(system)
    answer = client.put(
        f"/api/v1/requests/{request.test_uuid}/models/cycler.fmu", content=fmi2_set.cycler,
        headers=add_uploader(system, "acme").headers,
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    spool = system.settings.data_dir / "http-spool"
    assert len(spooled) == 1 and spooled[0].is_relative_to(spool), spooled
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert list(spool.iterdir()) == []  # removed after the upload

"""PUT /api/v1/requests/{test_UUID}/models/{filename}: uploads for partners without SFTP."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from fastlims.bootstrap import System
from fastlims.requests.states import Status
from tests.conftest import Actor
from tests.integration.intake.helpers import ModelFiles, new_request, request_row


def url(test_uuid: str, name: str) -> str:
    return f"/api/v1/requests/{test_uuid}/models/{name}"


def test_the_requester_uploads_a_set_and_the_request_becomes_model_ready(
    system: System, client: TestClient, fmi2_set: ModelFiles
) -> None:
    request = new_request(system)
    answers = [
        client.put(url(request.test_uuid, name), content=data, headers=request.requester.headers)
        for name, data in fmi2_set.files().items()
    ]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert [a.json()["outcome"] for a in answers] == ["waiting", "waiting", "accepted"]
    assert answers[-1].json()["status"] == "ModelReady"
    assert request_row(system, request.test_uuid)["status"] == "ModelReady"


def test_who_may_upload(system: System, client: TestClient, manager: Actor, fmi2_set: ModelFiles) -> None:
    request = new_request(system, username="rita")
    other = new_request(system, username="otto")
    assert client.put(url(request.test_uuid, "cycler.fmu"), content=fmi2_set.cycler).status_code == 401
    denied = client.put(url(request.test_uuid, "cycler.fmu"), content=fmi2_set.cycler, headers=other.requester.headers)
    assert denied.status_code == 404 and "no test request has test_UUID" in denied.text  # as if unknown
    by_manager = client.put(url(request.test_uuid, "cycler.fmu"), content=fmi2_set.cycler, headers=manager.headers)
    assert by_manager.status_code == 201 and by_manager.json()["outcome"] == "waiting"
    assert system.intake.storage.exists(f"pool/{request.test_uuid}/cycler.fmu")


def test_refusals_store_nothing(system: System, client: TestClient, fmi2_set: ModelFiles) -> None:
    request = new_request(system)
    headers = request.requester.headers
    assert client.put(url("not-a-uuid", "cycler.fmu"), content=b"x", headers=headers).status_code == 422
    assert client.put(url(request.test_uuid, "notes.txt"), content=b"x", headers=headers).status_code == 422
    # An encoded slash makes two path segments: no route has them, so nothing reaches the handler.
    assert client.put(url(request.test_uuid, "..%2Fx.fmu"), content=b"x", headers=headers).status_code == 404
    # Traversals within one segment reach the handler, whose file name check refuses them.
    for name in ("..%5Cx.fmu", "%2E%2E", ".hidden.fmu", "x%00.fmu"):
        refused = client.put(url(request.test_uuid, name), content=b"x", headers=headers)
        assert refused.status_code == 422, (name, refused.text)
        assert "is not a model file name" in refused.json()["detail"], name
    assert client.put(url(request.test_uuid, "cycler.fmu"), content=b"", headers=headers).status_code == 422
    unknown = "0b9a4c39-1d2e-4f3a-8b5c-6d7e8f901234"
    assert client.put(url(unknown, "cycler.fmu"), content=b"x", headers=headers).status_code == 404
    cancelled = new_request(system, Status.Cancelled)
    conflict = client.put(url(cancelled.test_uuid, "cycler.fmu"), content=b"x", headers=cancelled.requester.headers)
    assert conflict.status_code == 409 and "Cancelled" in conflict.json()["detail"]
    system.settings.intake_max_file_bytes = 1000
    too_big = client.put(url(request.test_uuid, "cycler.fmu"), content=fmi2_set.cycler, headers=headers)
    assert too_big.status_code == 413  # refused on its declared Content-Length
    assert len(fmi2_set.cycler) > 1000

    def chunks() -> Iterator[bytes]:  # sent chunked, without a Content-Length: counted as it streams
        for start in range(0, len(fmi2_set.cycler), 256):
            yield fmi2_set.cycler[start : start + 256]

    streamed = client.put(url(request.test_uuid, "cycler.fmu"), content=chunks(), headers=headers)
    assert streamed.status_code == 413 and streamed.json()["detail"] == "the file is larger than 1000 bytes"
    assert system.intake.storage.list("pool") == []


def test_the_interconnection_schema_is_published(client: TestClient) -> None:
    schema = client.get("/api/schemas/inter_connection.json").json()
    assert "FMU_signal_connections" in schema["properties"]
    assert {"UUT_ports", "current_sign"} <= set(schema["properties"])
    assert schema["$defs"]["UutPorts"]["required"] == ["current", "voltage"]

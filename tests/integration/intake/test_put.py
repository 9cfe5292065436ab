"""PUT /api/v1/requests/{test_UUID}/models/{filename}: uploads for partners without SFTP."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from fastlims.bootstrap import System
from fastlims.requests.states import Status
from tests.conftest import Actor
from tests.integration.intake.helpers import ModelFiles, add_uploader, new_request, quarantined, request_row


def url(test_uuid: str, name: str) -> str:
    return f"/api/v1/requests/{test_uuid}/models/{name}"


def test_the_partners_model_uploader_uploads_a_set_and_the_request_becomes_model_ready(
    system: System, client: TestClient, fmi2_set: ModelFiles
) -> None:
    request = new_request(system)
    uploader = add_uploader(system, "acme")
    answers = [
        client.put(url(request.test_uuid, name), content=data, headers=uploader.headers)
        for name, data in fmi2_set.files().items()
    ]
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert [a.json()["outcome"] for a in answers] == ["waiting", "waiting", "accepted"]
    assert answers[-1].json()["status"] == "ModelReady"
    row = request_row(system, request.test_uuid)
    assert row["status"] == "ModelReady"
    with system.database.transaction() as session:  # the first partner to supply it serves it
        from fastlims.requests import service as requests

        assert requests.get_by_uuid(session=session, test_uuid=request.test_uuid).dt_partner == "acme"


def test_who_may_upload(system: System, client: TestClient, manager: Actor, fmi2_set: ModelFiles) -> None:
    """Only a partner's model_uploader uploads: not the request's own requester (who would choose
    the code the lab runs), not a lab manager."""
    request = new_request(system, username="rita")
    assert client.put(url(request.test_uuid, "cycler.fmu"), content=fmi2_set.cycler).status_code == 401
    for who in (request.requester, manager):
        denied = client.put(url(request.test_uuid, "cycler.fmu"), content=fmi2_set.cycler, headers=who.headers)
        assert denied.status_code == 403, who
        assert "model_uploader" in denied.json()["detail"]
    uploader = add_uploader(system, "acme")
    allowed = client.put(url(request.test_uuid, "cycler.fmu"), content=fmi2_set.cycler, headers=uploader.headers)
    assert allowed.status_code == 201 and allowed.json()["outcome"] == "waiting"
    assert system.intake.storage.exists(f"pool/acme/{request.test_uuid}/cycler.fmu")
    assert not system.intake.storage.exists(f"pool/{request.test_uuid}/cycler.fmu")


def test_a_model_uploader_cannot_read_list_submit_or_cancel_requests(
    system: System, client: TestClient, fmi2_set: ModelFiles
) -> None:
    request = new_request(system, username="rita")
    uploader = add_uploader(system, "acme")
    headers = uploader.headers
    assert client.get("/api/v1/test-requests", headers=headers).status_code == 403
    assert client.get(f"/api/v1/test-requests/{request.request_number}", headers=headers).status_code == 403
    cancel = client.post(f"/api/v1/test-requests/{request.request_number}/cancel", headers=headers)
    assert cancel.status_code == 403 and "may only upload model files" in cancel.json()["detail"]
    assert client.post("/api/v1/test-requests", json={}, headers=headers).status_code == 403
    assert request_row(system, request.test_uuid)["status"] == "ModelRequested"
    # ... nor open a page with its password.
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    login = client.post(
        "/login",
        data={"username": "acme-uploader", "password": "correct-horse-battery", "csrf_token": token},
        follow_redirects=False,
    )
    assert login.status_code == 403 and "no pages" in login.text


def test_another_partners_upload_is_quarantined_as_unauthorized_and_the_request_is_unaffected(
    system: System, client: TestClient, fmi2_set: ModelFiles
) -> None:
    request = new_request(system)
    acme, intruder = add_uploader(system, "acme"), add_uploader(system, "globex")
    first = client.put(url(request.test_uuid, "cycler.fmu"), content=fmi2_set.cycler, headers=acme.headers)
    assert first.status_code == 201  # acme supplied the first file: the request is acme's now
    for name, data in fmi2_set.files().items():
        refused = client.put(url(request.test_uuid, name), content=data, headers=intruder.headers)
        assert refused.status_code == 403, refused.text
        assert "unauthorized: partner globex is not the Digital Twin partner" in refused.json()["detail"]
    row = request_row(system, request.test_uuid)
    assert row["status"] == "ModelRequested" and row["failure_reason"] is None
    reasons = [r for _, r in quarantined(system.intake, request.test_uuid)]
    assert reasons and all(r["kind"] == "unauthorized" and "globex" in r["reason"] for r in reasons)
    assert system.intake.storage.exists(f"pool/acme/{request.test_uuid}/cycler.fmu")  # acme's file untouched
    rest = {k: v for k, v in fmi2_set.files().items() if k != "cycler.fmu"}
    done = [client.put(url(request.test_uuid, n), content=d, headers=acme.headers) for n, d in rest.items()]
    assert done[-1].json()["outcome"] == "accepted"


def test_refusals_store_nothing(system: System, client: TestClient, fmi2_set: ModelFiles) -> None:
    request = new_request(system)
    headers = add_uploader(system, "acme").headers
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
    conflict = client.put(url(cancelled.test_uuid, "cycler.fmu"), content=b"x", headers=headers)
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

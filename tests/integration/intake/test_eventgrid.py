"""The Event Grid webhook: the validation handshakes, BlobCreated for blobs uploaded to Azurite in
both schemas, the subject filter, authentication and repeated deliveries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fastlims.bootstrap import System, build
from fastlims.intake.service import Intake
from fastlims.web.app import create_app
from tests.integration.intake.azurite import Azurite, azure_settings
from tests.integration.intake.helpers import ModelFiles, new_request, request_row

KEY = "eventgrid-shared-key-for-tests"


@pytest.fixture
def azure_system(system: System, azurite: Azurite, azure_container: str) -> Iterator[System]:
    """The test system's database, with its storage in an Azurite container and the webhook on."""
    settings = system.settings.model_copy(
        update={**azure_settings(azurite, azure_container), "eventgrid_key": SecretStr(KEY)}
    )
    built = build(settings)
    yield built
    built.close()


@pytest.fixture
def webhook(azure_system: System) -> Iterator[TestClient]:
    with TestClient(create_app(azure_system)) as client:
        yield client


def blob_created(intake: Intake, key: str, *, cloud: bool = False, api: str = "PutBlob") -> dict[str, Any]:
    storage = intake.storage
    stored = storage.head(key)
    path = f"{storage.prefix}/{key}" if storage.prefix else key
    subject = f"/blobServices/default/containers/{storage.container}/blobs/{path}"
    data = {
        "api": api,
        "contentType": "application/octet-stream",
        "contentLength": stored.size if stored else 0,
        "eTag": stored.etag if stored else "0x0",
        "blobType": "BlockBlob",
        "url": f"http://127.0.0.1/devstoreaccount1/{storage.container}/{path}",
    }
    if cloud:
        return {
            "specversion": "1.0",
            "type": "Microsoft.Storage.BlobCreated",
            "source": "/subscriptions/x/resourceGroups/lims/providers/Microsoft.Storage/storageAccounts/lims",
            "id": str(uuid.uuid4()),
            "time": "2026-11-27T10:00:00Z",
            "subject": subject,
            "data": data,
        }
    return {
        "topic": "/subscriptions/x/resourceGroups/lims/providers/Microsoft.Storage/storageAccounts/lims",
        "subject": subject,
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": str(uuid.uuid4()),
        "data": data,
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": "2026-11-27T10:00:00Z",
    }


def post(client: TestClient, body: object, **auth: str) -> Any:
    params = {"code": KEY} if not auth else {}
    headers = auth.get("headers") if auth else None
    return client.post("/api/v1/events/eventgrid", json=body, params=params, headers=headers)  # type: ignore[arg-type]


def test_subscription_validation_handshakes(webhook: TestClient) -> None:
    validation = [
        {
            "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
            "topic": "/subscriptions/x",
            "subject": "",
            "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://x"},
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2026-11-27T10:00:00Z",
            "metadataVersion": "1",
            "dataVersion": "1",
        }
    ]
    answer = webhook.post(
        "/api/v1/events/eventgrid",
        json=validation,
        params={"code": KEY},
        headers={"aeg-event-type": "SubscriptionValidation"},
    )
    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    cloud = webhook.options(
        "/api/v1/events/eventgrid", params={"code": KEY}, headers={"WebHook-Request-Origin": "eventgrid.azure.net"}
    )
    assert cloud.status_code == 200 and cloud.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


def test_the_webhook_needs_the_shared_key(webhook: TestClient, system: System) -> None:
    body = [{"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "c"}}]
    assert webhook.post("/api/v1/events/eventgrid", json=body).status_code == 401
    assert webhook.post("/api/v1/events/eventgrid", json=body, params={"code": "wrong"}).status_code == 401
    assert webhook.options("/api/v1/events/eventgrid", headers={"WebHook-Request-Origin": "x"}).status_code == 401
    for headers in ({"aeg-sas-key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        assert webhook.post("/api/v1/events/eventgrid", json=body, headers=headers).status_code == 200
    with TestClient(create_app(system)) as no_key:  # FASTLIMS_EVENTGRID_KEY unset: the webhook is off
        assert no_key.post("/api/v1/events/eventgrid", json=body, params={"code": KEY}).status_code == 503
        assert no_key.post("/api/v1/events/eventgrid", json=body).status_code == 401


@pytest.mark.parametrize("cloud", [False, True], ids=["eventgrid-schema", "cloudevents"])
def test_blob_created_for_blobs_in_azurite_starts_processing(
    cloud: bool, azure_system: System, webhook: TestClient, fmi2_set: ModelFiles
) -> None:
    intake = azure_system.intake
    request = new_request(azure_system)
    outcomes = []
    for name, data in fmi2_set.files().items():
        key = f"pool/{request.test_uuid}/{name}"
        intake.storage.put(key, data)  # the Digital Twin's upload (Azure SFTP, azcopy, ...)
        answer = post(webhook, blob_created(intake, key, cloud=cloud) if cloud else [blob_created(intake, key)])
        assert answer.status_code == 200, answer.text
        outcomes += [o["outcome"] for o in answer.json()["outcomes"]]
    assert outcomes == ["waiting", "waiting", "accepted"]
    row = request_row(azure_system, request.test_uuid)
    assert row["status"] == "ModelReady"
    assert sorted(f.key.rsplit("/", 1)[1] for f in intake.storage.list(row["fmu_blob_path"])) == sorted(
        fmi2_set.files()
    )
    assert intake.storage.list("pool") == []


def test_events_outside_the_subject_filter_are_ignored(
    azure_system: System, webhook: TestClient, fmi2_set: ModelFiles
) -> None:
    intake = azure_system.intake
    request = new_request(azure_system)
    u = request.test_uuid
    for key, data in ((f"pool/{u}/readme.txt", b"hello"), (f"archive/{u}/cycler.fmu", fmi2_set.cycler)):
        intake.storage.put(key, data)
    other_container = blob_created(intake, f"pool/{u}/readme.txt")
    other_container["subject"] = other_container["subject"].replace(intake.storage.container, "someone-else")
    created_file = blob_created(intake, f"pool/{u}/readme.txt", api="CreateFile")
    deleted = {**blob_created(intake, f"pool/{u}/readme.txt"), "eventType": "Microsoft.Storage.BlobDeleted"}
    events = [
        blob_created(intake, f"pool/{u}/readme.txt"),
        blob_created(intake, f"archive/{u}/cycler.fmu"),
        other_container,
        created_file,
        deleted,
    ]
    answer = post(webhook, events)
    assert answer.status_code == 200
    assert [o["outcome"] for o in answer.json()["outcomes"]] == ["ignored"] * 5
    assert request_row(azure_system, u)["status"] == "ModelRequested"
    assert intake.storage.exists(f"pool/{u}/readme.txt") and intake.storage.exists(f"archive/{u}/cycler.fmu")


def test_a_redelivered_event_processes_once(azure_system: System, webhook: TestClient, fmi2_set: ModelFiles) -> None:
    intake = azure_system.intake
    request = new_request(azure_system)
    events = []
    for name, data in fmi2_set.files().items():
        key = f"pool/{request.test_uuid}/{name}"
        intake.storage.put(key, data)
        events.append(blob_created(intake, key))
    first = post(webhook, events).json()["outcomes"]
    again = post(webhook, events).json()["outcomes"]
    # All three blobs were there at the first event: it takes the whole set; the others find it done.
    assert [o["outcome"] for o in first] == ["accepted", "duplicate", "duplicate"]
    assert [o["outcome"] for o in again] == ["duplicate"] * 3
    ready = [e for e in request_row(azure_system, request.test_uuid)["events"] if e[2] == "ModelReady"]
    assert len(ready) == 1

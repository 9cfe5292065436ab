"""Limits on input (issue 15 item 9) and the low-risk fixes: request bodies are bounded before any
route reads them (checked on a real uvicorn server with raw sockets), Event Grid bodies too;
storage keys cannot leave the storage; the data folder and the SQLite file are private; the demo
refuses to listen beyond loopback and its accounts are disabled when the system runs without it."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fastlims.bootstrap import System, build, prepare_database
from fastlims.config import Settings
from fastlims.intake.storage import StorageError, open_storage
from fastlims.users import service as users
from tests.conftest import PASSWORD, Actor
from tests.services import free_port, wait_for

MB = 1024 * 1024


@pytest.fixture
def server(system: System) -> Iterator[int]:
    """The app on a real uvicorn server (as ``fastlims up`` serves it), on a free port."""
    from fastlims.web.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(system), host="127.0.0.1", port=port, log_config=None, access_log=False)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    wait_for(lambda: running.started, what="uvicorn to start")
    yield port
    running.should_exit = True
    thread.join(timeout=10)


def read_response(connection: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"the server closed the connection without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def test_a_20_mb_request_is_refused_without_reading_it(server: int, requester: Actor) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=10) as connection:
        head = (
            "POST /api/v1/test-requests HTTP/1.1\r\nHost: lims\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {requester.token}\r\nContent-Length: {20 * MB}\r\n\r\n"
        )
        connection.sendall(head.encode() + b'{"uut": "' + b"x" * 65536)  # 64 kB of the 20 MB
        status, headers, body = read_response(connection)  # answered without the other 19.9 MB
    assert status == 413
    assert json.loads(body)["detail"] == (
        f"the request body is larger than the limit of {10 * MB} bytes (FASTLIMS_HTTP_MAX_BODY_BYTES)"
    )


def test_a_streamed_body_is_cut_off_at_the_limit(server: int, requester: Actor) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=10) as connection:
        head = (
            "POST /api/v1/test-requests HTTP/1.1\r\nHost: lims\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {requester.token}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        connection.sendall(head.encode())
        chunk = b"x" * MB
        for _ in range(11):  # 11 MB, and the body never ends: the answer comes anyway
            connection.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        status, _, body = read_response(connection)
    assert status == 413 and "FASTLIMS_HTTP_MAX_BODY_BYTES" in json.loads(body)["detail"]


def test_bodies_under_the_limit_and_forms_still_work(server: int, requester: Actor) -> None:
    base = f"http://127.0.0.1:{server}"
    big_but_allowed = {"uut": "x" * (2 * MB)}
    answer = httpx.post(f"{base}/api/v1/test-requests", json=big_but_allowed, headers={
        "Authorization": f"Bearer {requester.token}"}, timeout=30)  # fmt: skip
    assert answer.status_code == 422  # read and validated, not refused for its size
    assert httpx.get(f"{base}/login", timeout=10).status_code == 200


def test_the_event_grid_body_is_bounded(system: System, client: TestClient) -> None:
    system.settings.eventgrid_key = SecretStr("k" * 32)
    headers = {"aeg-sas-key": "k" * 32}
    handshake = [{"eventType": "Microsoft.EventGrid.SubscriptionValidationEvent", "data": {"validationCode": "c0de"}}]
    assert client.post("/api/v1/events/eventgrid", json=handshake, headers=headers).json() == {
        "validationResponse": "c0de"
    }
    events = [{"eventType": "Other", "subject": "s" * 1000, "id": str(i)} for i in range(1100)]  # ~1.1 MB
    refused = client.post("/api/v1/events/eventgrid", content=json.dumps(events), headers=headers)
    assert refused.status_code == 413
    assert refused.json()["detail"] == (
        f"the request body is larger than the limit of {MB} bytes (FASTLIMS_EVENTGRID_MAX_BODY_BYTES)"
    )


# --- Low ------------------------------------------------------------------------------------------


def test_local_storage_keys_cannot_leave_the_root(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "storage"))
    (tmp_path / "secret.txt").write_text("not yours")
    for key in ("../secret.txt", "pool/../../secret.txt", "pool/a/../../../secret.txt"):
        with pytest.raises(StorageError, match="has a '..' part"):
            storage.local_path(key)
        with pytest.raises(StorageError), storage.materialised([key]):
            pass
    assert storage.local_path("pool/a/b.fmu") == (tmp_path / "storage" / "pool" / "a" / "b.fmu").resolve()


def test_the_data_folder_and_the_sqlite_file_are_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    system = build(Settings(data_dir=data))
    try:
        prepare_database(system, seed_catalog=False)
        with system.database.transaction() as session:
            users.create(session=session, username="rita", role="requester", password=PASSWORD)
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        files = [data / "fastlims.db", *data.glob("fastlims.db-*")]
        assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), [
            (f.name, oct(f.stat().st_mode)) for f in files
        ]
    finally:
        system.close()


# --- item 8: the demo -----------------------------------------------------------------------------


def fastlims_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "FASTLIMS_DATA_DIR": str(tmp_path / "data"), "FASTLIMS_LOG_LEVEL": "WARNING", **extra}
    env.pop("FASTLIMS_DATABASE_URL", None)
    env.pop("FASTLIMS_MQTT_URL", None)
    return env


@pytest.mark.parametrize(
    ("args", "extra", "named"),
    [
        (["--host", "0.0.0.0"], {}, "'0.0.0.0' (web, FASTLIMS_HTTP_HOST / --host)"),  # noqa: S104
        ([], {"FASTLIMS_SFTP_HOST": "0.0.0.0"}, "'0.0.0.0' (SFTP, FASTLIMS_SFTP_HOST)"),  # noqa: S104
        ([], {"FASTLIMS_MQTT_HOST": "::"}, "'::' (MQTT broker, FASTLIMS_MQTT_HOST)"),
    ],
)
def test_demo_refuses_a_non_loopback_address(
    tmp_path: Path, args: list[str], extra: dict[str, str], named: str
) -> None:
    env = fastlims_env(tmp_path, FASTLIMS_HTTP_PORT=str(free_port()), FASTLIMS_SFTP_PORT=str(free_port()),
                       FASTLIMS_MQTT_PORT=str(free_port()), **extra)  # fmt: skip
    # A timeout, not a hang, if the refusal were gone and the demo started.
    result = subprocess.run(
        [sys.executable, "-m", "fastlims.cli", "up", "--demo", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"--demo refuses to listen on {named}" in result.stderr, result.stderr


def test_starting_without_demo_disables_the_demo_accounts(tmp_path: Path) -> None:
    from fastlims.cli import DEMO_PASSWORD, DEMO_USERS
    from fastlims.demo import load_demo
    from tests.e2e.test_browser import wait_until_healthy

    port = free_port()
    env = fastlims_env(tmp_path, FASTLIMS_HTTP_PORT=str(port), FASTLIMS_SFTP_PORT=str(free_port()),
                       FASTLIMS_MQTT_PORT=str(free_port()), FASTLIMS_PIPELINE_ENABLED="false")  # fmt: skip
    system = build(Settings(data_dir=tmp_path / "data"))
    prepare_database(system)
    load_demo(system, DEMO_USERS, DEMO_PASSWORD)  # what an earlier `fastlims up --demo` left
    system.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "fastlims.cli", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            token = browser.get("/login").text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            refused = browser.post(
                "/login", data={"username": "demo-admin", "password": DEMO_PASSWORD, "csrf_token": token}
            )
            assert refused.status_code == 401
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=60)
    assert "Demo accounts disabled (started without --demo): demo-requester, demo-manager, demo-admin" in output
    system = build(Settings(data_dir=tmp_path / "data"))
    with system.database.transaction() as session:
        assert [users.get_by_username(session=session, username=n).is_active for n, _, _ in DEMO_USERS] == [False] * 3  # type: ignore[union-attr]
    system.close()

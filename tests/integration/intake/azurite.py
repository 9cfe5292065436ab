"""Azurite (Microsoft's Azure Storage emulator, from npm) for the storage and Event Grid tests:
started once per session on a free loopback port, stopped by its process id."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from fastlims.intake.storage import AZURITE_ACCOUNT, AZURITE_KEY
from tests.services import free_port

INSTALL_DIR = Path(os.environ.get("FASTLIMS_TEST_CACHE", Path.home() / ".cache" / "fastlims-test")) / "azurite"


def azurite_binary() -> str | None:
    """``azurite-blob`` as scripts/test.sh installs it (npm, outside the repository), or on PATH."""
    local = INSTALL_DIR / "node_modules" / ".bin" / "azurite-blob"
    if local.exists() and shutil.which("node"):
        return str(local)
    return shutil.which("azurite-blob")


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    def create_container(self, name: str) -> None:
        """PUT ?restype=container with a SharedKey signature (obstore does not create containers)."""
        date = formatdate(usegmt=True)
        headers = {"x-ms-date": date, "x-ms-version": "2021-08-06", "Content-Length": "0"}
        canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()) if k.startswith("x-ms-"))
        resource = f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
        to_sign = "PUT\n\n\n\n\n\n\n\n\n\n\n\n" + canonical_headers + resource
        signature = base64.b64encode(
            hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
        ).decode()
        headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{signature}"
        request = urllib.request.Request(f"{self.endpoint}/{name}?restype=container", method="PUT", headers=headers)
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback emulator
            assert answer.status == 201

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_azurite(timeout_s: float = 30.0) -> Azurite | None:
    binary = azurite_binary()
    if binary is None:
        return None
    directory = Path(tempfile.mkdtemp(prefix="fastlims-azurite-"))
    port = free_port()
    process = subprocess.Popen(
        [
            binary, "--silent", "--disableTelemetry", "--location", str(directory), "--blobHost", "127.0.0.1",
            "--blobPort", str(port), "--skipApiVersionCheck",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"Azurite exited with {process.returncode}: {error[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Azurite(process, port, directory)
        except OSError:
            time.sleep(0.05)  # polling the port with a deadline, not a fixed wait
    process.kill()
    raise RuntimeError(f"Azurite did not listen on port {port} within {timeout_s} s")


def azure_settings(azurite: Azurite, container: str) -> dict[str, object]:
    return {
        "storage_url": f"az://{container}/lab1",
        "storage_azure_account": "devstoreaccount1",
        "storage_endpoint": azurite.endpoint,
        "storage_allow_http": True,
    }

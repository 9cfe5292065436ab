"""A reference Digital Twin for demos and tests: the partner's side of the seed's paths 3–5.

It speaks the same contract a real DT partner does, through the same doors: an MQTT identity with
the partner ACL (subscribe to requests, answer with acks) and an SFTP account with key
authentication (upload the FMUs and ``inter_connection.json`` into its pool folder). Its model
registry (:mod:`.model_registry`) is the reference FMUs, an equivalent-circuit battery wired to a
cycler, with parameters chosen for the request's UUT from its ``UUT_ratings``: capacity,
series/parallel counts, voltage window, pulse current. The FMUs are built with those start values
(cached by content, so a UUT's set is compiled once), and ``inter_connection.json`` and the log say
what was chosen. A UUT the model cannot represent is refused in the ack, with the reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from fastlims.messaging.client import BrokerAddress, MqttClient
from fastlims.messaging.schemas import AckMessage, RequestMessage
from fastlims.peers.fmus import build_fmu
from fastlims.peers.model_registry import ModelChoice, ModelUnavailable, choose

log = logging.getLogger(__name__)

# The system the reference DT hands out for every request: the cycler drives the cell's current.
MODELS = {"Cell": "battery_cell", "Cycler": "cycler"}


def interconnection(cell: str = "Cell", cycler: str = "Cycler", choice: ModelChoice | None = None) -> dict[str, Any]:
    """The reference set's ``inter_connection.json`` for FMUs named ``cell`` and ``cycler``.

    A procedure drives the cycler's ``current_setpoint`` input (the cycler's default mode follows
    it) and the cycler passes that current to the cell; voltage, temperature and SOC are the
    cell's outputs; the ambient temperature is the cell's tunable parameter ``T_ambient_K``. Both
    FMUs count current positive on discharge. With a ``choice`` it also says, in members the LIMS
    keeps but does not read (``description``, ``model_parameters``), which parameters were chosen.
    """
    extra: dict[str, Any] = {}
    if choice is not None:
        extra = {"description": f"reference Digital Twin: {choice.basis}", "model_parameters": choice.as_record()}
    return {
        **extra,
        "FMU_signal_connections": [{"InSignalReference": f"{cell}/I", "OutSignalReference": f"{cycler}/current"}],
        "UUT_ports": {
            "current": f"{cycler}/current_setpoint",
            "voltage": f"{cell}/V",
            "temperature": f"{cell}/T",
            "soc": f"{cell}/SOC",
            "ambient_temperature": f"{cell}/T_ambient_K",
        },
        "current_sign": "discharge_positive",
    }


@dataclass(frozen=True)
class PartnerCredentials:
    name: str
    mqtt_password: str
    private_key: Path
    public_key: str


def ensure_credentials(folder: Path, name: str = "reference-dt") -> PartnerCredentials:
    """A key pair and an MQTT password kept (0600) in the data dir, created once."""
    folder.mkdir(parents=True, exist_ok=True)
    key_path = folder / f"{name}_ed25519"
    password_path = folder / f"{name}.mqtt-password"
    if not key_path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment=name)
        key.write_private_key(str(key_path))
        key_path.chmod(0o600)
    if not password_path.exists():
        password_path.touch(mode=0o600)
        password_path.write_text(secrets.token_urlsafe(24))
    public = asyncssh.read_private_key(str(key_path)).export_public_key().decode().strip()
    return PartnerCredentials(name, password_path.read_text().strip(), key_path, public)


class ReferenceDigitalTwin:
    """BackgroundService: answers every request with an ack and an upload over SFTP."""

    name = "reference-digital-twin"

    def __init__(
        self,
        credentials: PartnerCredentials,
        mqtt: BrokerAddress,
        sftp_host: str,
        sftp_port: int,
        topic_prefix: str = "fastest/v1",
        fmu_version: str = "2.0",
    ) -> None:
        self.credentials = credentials
        self.sftp_host = sftp_host
        self.sftp_port = sftp_port
        self.prefix = topic_prefix
        self.fmu_version = fmu_version
        self.client = MqttClient(
            mqtt,
            client_id=f"{credentials.name}/dt",  # a client id starts with its username (docs/mqtt.md)
            username=credentials.name,
            password=credentials.mqtt_password,
        )
        self._work: asyncio.Queue[bytes] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._seen: set[str] = set()
        self.handled: list[str] = []

    async def start(self) -> None:
        # A partner's own level (partners/<its MQTT user name>/): the broker lets it read nothing else.
        self.client.subscribe(f"{self.prefix}/partners/{self.credentials.name}/requests/+", self._receive, qos=1)
        await self.client.start()
        if not await self.client.wait_connected(15):
            log.warning("reference DT: broker not reachable yet; it keeps trying")
        self._task = asyncio.create_task(self._serve(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.client.stop()

    async def _receive(self, _topic: str, payload: bytes) -> None:
        await self._work.put(payload)

    async def _serve(self) -> None:
        while True:
            payload = await self._work.get()
            try:
                await self.answer(RequestMessage.model_validate_json(payload))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reference DT could not answer a request")

    async def answer(self, request: RequestMessage) -> None:
        if request.message_id in self._seen:
            return  # a re-sent request: the upload is already on its way
        self._seen.add(request.message_id)
        topic = f"{self.prefix}/partners/{self.credentials.name}/requests/{request.test_UUID}/ack"
        try:
            choice = choose(request.UUT_ratings)
        except ModelUnavailable as exc:
            refusal = AckMessage(
                message_id=f"ack-{request.message_id}", test_UUID=request.test_UUID, accepted=False, reason=str(exc)
            )
            await self.client.publish(topic, refusal.model_dump_json(), qos=1)
            log.warning("reference DT refused a request", extra={"test_UUID": request.test_UUID, "reason": str(exc)})
            return
        ack = AckMessage(message_id=f"ack-{request.message_id}", test_UUID=request.test_UUID, accepted=True)
        await self.client.publish(topic, ack.model_dump_json(), qos=1)
        log.info(
            "reference DT chose the model parameters: %s",
            choice.basis,
            extra={"test_UUID": request.test_UUID, "uut": choice.uut, "start_values": choice.start_values},
        )
        with tempfile.TemporaryDirectory(prefix="reference-dt-") as scratch:
            files = await asyncio.to_thread(self._prepare, Path(scratch), choice)
            await self._upload(request.test_UUID, files)
        self.handled.append(request.test_UUID)
        log.info("reference DT uploaded models", extra={"test_UUID": request.test_UUID})

    def _prepare(self, scratch: Path, choice: ModelChoice) -> list[Path]:
        """The FMU set with the chosen start values (each build cached by content) and its
        interconnection."""
        files = [
            build_fmu(model, self.fmu_version, scratch, name=name, start_values=choice.start_values.get(name))
            for name, model in MODELS.items()
        ]
        interconnection_file = scratch / "inter_connection.json"
        interconnection_file.write_text(json.dumps(interconnection(choice=choice), indent=2))
        return [*files, interconnection_file]

    async def _upload(self, test_uuid: str, files: list[Path]) -> None:
        async with (
            asyncssh.connect(
                self.sftp_host,
                self.sftp_port,
                username=self.credentials.name,
                client_keys=[str(self.credentials.private_key)],
                known_hosts=None,  # demo peer on loopback; a real partner pins the LIMS's host key
                agent_path=None,
            ) as connection,
            connection.start_sftp_client() as sftp,
        ):
            if not await sftp.exists(test_uuid):
                await sftp.mkdir(test_uuid)
            for path in files:  # the interconnection last, as a careful partner would
                await sftp.put(str(path), f"{test_uuid}/{path.name}")

"""A bench emulator in its own process on a real broker, for tests: the broker (embedded amqtt or
Mosquitto) with a bench identity, ``fastlims bench emulate`` as a subprocess, the lab's side as a
paho peer, and a short capacity run file built from the catalog's default procedure.

Use::

    broker = start_bench_broker("amqtt", tmp_path, sqlite_template, benches={"rig-1": "pw"})
    bench = start_emulator(broker, "rig-1", "pw", "--speed", "1000")
    lab = broker.lab_peer()  # LIMS role: sends commands, reads everything
    ...
    bench.terminate(); broker.stop()
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from fastlims.bootstrap import System, build, prepare_database
from fastlims.config import Settings
from fastlims.messaging.models import MqttRole
from fastlims.messaging.schemas import BenchCommand, RunFile
from fastlims.procedures.defaults import default_procedure
from fastlims.procedures.estimate import expected_duration_s
from fastlims.procedures.model import RepeatStep
from fastlims.procedures.resolve import resolve
from fastlims.procedures.runfile import RunProcedure
from fastlims.procedures.text import parse_text
from tests.mqtt_helpers import MosquittoServer, Peer, RunningServices, mosquitto_binary, start_mosquitto
from tests.services import free_port, missing
from tests.unit.procedures.uuts import REFERENCE_CELL

PREFIX = "fastest/v1"
LIMS = ("lims", "lims-password-123")


def capacity_run_file() -> RunProcedure:
    """The catalog's PERF-CAPACITY-RT for the 5 Ah reference cell, cut to its rest and its C/3
    capacity discharge to 2.5 V (the emulated cell starts half full: about 2.5 test hours)."""
    default = default_procedure("PERF-CAPACITY-RT", REFERENCE_CELL)
    cycle = next(step for step in default.steps if isinstance(step, RepeatStep))
    rest, discharge = cycle.steps[2], cycle.steps[3]
    assert rest.type == "rest" and discharge.label == "capacity discharge"
    procedure = default.model_copy(update={"steps": [rest, discharge]})
    resolved = resolve(procedure, REFERENCE_CELL)
    return RunProcedure(
        resolved, REFERENCE_CELL, expected_duration_s(resolved, REFERENCE_CELL), test_code="PERF-CAPACITY-RT"
    )


def charge_run_file() -> RunProcedure:
    """A charge from half full at C/3 to 4.2 V (about 1.5 test hours)."""
    parsed = parse_text("Charge at C/3 until 4.2 V\n")
    resolved = resolve(parsed.procedure, REFERENCE_CELL, lines=parsed.lines)
    return RunProcedure(resolved, REFERENCE_CELL, expected_duration_s(resolved, REFERENCE_CELL))


def command(
    name: str,
    run_id: str,
    expected_state: str,
    *,
    run: RunProcedure | None = None,
    command_id: str | None = None,
    **extra: Any,
) -> BenchCommand:
    return BenchCommand(
        command_id=command_id or f"{run_id}:{name}:{uuid.uuid4().hex[:8]}",
        command=name,  # type: ignore[arg-type]
        run_id=run_id,
        test_UUID="3f2a9c1e-8d4b-4e59-9a31-6c0f1d2b7e44",
        expected_state=expected_state,  # type: ignore[arg-type]
        run_file=RunFile.of(run) if run is not None else None,
        **extra,
    )


@dataclass
class BenchBroker:
    """A running broker that knows the bench identities; ``env`` points a process at it."""

    kind: str
    port: int
    env: dict[str, str]
    lab_identity: tuple[str, str]
    stop: Callable[[], None]
    peers: list[Peer] = field(default_factory=list)

    def peer(self, username: str, password: str) -> Peer:
        peer = Peer(self.port, username, password)
        self.peers.append(peer)
        return peer

    def lab_peer(self) -> Peer:
        """A connected client with the LIMS role."""
        peer = self.peer(*self.lab_identity)
        assert peer.connect() == 0
        return peer

    def close(self) -> None:
        for peer in self.peers:
            peer.close()
        self.stop()


def start_bench_broker(kind: str, tmp_path: Path, sqlite_template: Path, benches: dict[str, str]) -> BenchBroker:
    """The embedded broker (its bench identities added with ``fastlims mqtt-users add``) or a
    Mosquitto with the same ACL policy (its password file holds them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTLIMS_")}
    env["FASTLIMS_LOG_FORMAT"] = "text"
    if kind == "amqtt":
        database = tmp_path / "broker.db"
        shutil.copy(sqlite_template, database)
        port = free_port()
        system: System = build(Settings(data_dir=tmp_path, database_url=f"sqlite:///{database}", mqtt_port=port))
        prepare_database(system)
        _add_bench_users(database, tmp_path, benches)
        services = RunningServices(system, [system.services[0]])
        services.start()
        username, (password, _role) = next(iter(system.services[0].policy.internal.items()))

        def stop() -> None:
            services.stop()
            system.close()

        env.update(FASTLIMS_MQTT_HOST="127.0.0.1", FASTLIMS_MQTT_PORT=str(port))
        return BenchBroker(kind, port, env, (username, password), stop)
    if mosquitto_binary() is None:
        missing("Mosquitto (Debian package mosquitto)")
    users = {LIMS[0]: (LIMS[1], MqttRole.lims)} | {name: (pw, MqttRole.bench) for name, pw in benches.items()}
    server: MosquittoServer = start_mosquitto(users, PREFIX)
    env["FASTLIMS_MQTT_URL"] = f"mqtt://127.0.0.1:{server.port}"
    return BenchBroker(kind, server.port, env, LIMS, server.stop)


def _add_bench_users(database: Path, data_dir: Path, benches: dict[str, str]) -> None:
    from fastlims.cli import main

    env = {"FASTLIMS_DATABASE_URL": f"sqlite:///{database}", "FASTLIMS_DATA_DIR": str(data_dir)}
    for name, password in benches.items():
        result = CliRunner(env=env).invoke(
            main, ["mqtt-users", "add", name, "--role", "bench", "--password-stdin"], input=password + "\n"
        )
        assert result.exit_code == 0, result.output
        assert password not in result.output


@dataclass
class EmulatorProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, then the exit code (killed if it does not stop within ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the emulator did not stop on SIGTERM:\n{self.output()}") from None


def start_emulator(broker: BenchBroker, name: str, password: str, *arguments: str) -> EmulatorProcess:
    """``fastlims bench emulate NAME --password-stdin ARGUMENTS`` against ``broker``, in its own process."""
    log = Path(broker.env.get("TMPDIR", "/tmp")) / f"emulator-{name}-{uuid.uuid4().hex[:6]}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "fastlims.cli", "bench", "emulate", name, "--password-stdin", *arguments],
        stdin=subprocess.PIPE,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=broker.env,
    )
    assert process.stdin is not None
    process.stdin.write(password.encode() + b"\n")
    process.stdin.close()
    return EmulatorProcess(process, log)

"""Real ``fastlims`` processes for the crash and worker tests: started with an environment,
logging to a file, killed with SIGKILL or stopped with SIGTERM, always by their own pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from fastlims.bootstrap import System
from tests.services import free_port


@dataclass
class FastlimsProcess:
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as in a power cut or an OOM kill."""
        if self.alive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def base_environment(system: System, **settings: object) -> dict[str, str]:
    """The environment of a process on ``system``'s database and data dir, on free ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTLIMS_")}
    env.update(
        {
            "FASTLIMS_DATA_DIR": str(system.settings.data_dir),
            "FASTLIMS_DATABASE_URL": system.database.url,
            "FASTLIMS_TIMEZONE": system.settings.timezone,
            "FASTLIMS_LOG_FORMAT": "text",
            "FASTLIMS_HTTP_PORT": str(free_port()),
            "FASTLIMS_MQTT_PORT": str(free_port()),
            "FASTLIMS_SFTP_ENABLED": "false",
            "FASTLIMS_INTAKE_WATCH_SETTLE_S": "0.2",
            "FASTLIMS_PIPELINE_QUEUE_POLL_S": "0.05",
            "FASTLIMS_PIPELINE_HEARTBEAT_S": "0.5",
        }
    )
    env.update({f"FASTLIMS_{name.upper()}": str(value) for name, value in settings.items()})
    return env


def start(command: list[str], env: dict[str, str], log: Path) -> FastlimsProcess:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fastlims.cli", *command], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return FastlimsProcess(process, log)

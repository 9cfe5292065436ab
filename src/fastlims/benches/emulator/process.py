"""``fastlims bench emulate NAME``: the bench emulator as its own process, as a bench PC would run.

It speaks only MQTT, as the bench identity NAME (role ``bench``), to the broker of the usual
settings (``FASTLIMS_MQTT_URL``, else the embedded broker's ``FASTLIMS_MQTT_HOST`` and
``FASTLIMS_MQTT_PORT``). Its password comes from standard input or ``FASTLIMS_BENCH_PASSWORD``,
never from the command line, and is never logged. SIGTERM or SIGINT: ``offline``, then a clean
disconnect. Exit codes: 0 after a signal, 2 when the broker refuses it or cannot be reached,
3 after ``--fault offline-after``, 70 after ``--fault die-after``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass

from fastlims import __version__, logs
from fastlims.benches.emulator.driver import STEP_MODES, Capabilities, EmulatorDriver
from fastlims.benches.emulator.protocol import Fault
from fastlims.benches.emulator.service import BenchOptions, BenchService
from fastlims.config import Settings
from fastlims.messaging.client import BrokerAddress
from fastlims.messaging.topics import Topics

PASSWORD_VARIABLE = "FASTLIMS_BENCH_PASSWORD"  # noqa: S105 - the variable's name, not a password


class EmulatorError(ValueError):
    """The emulator cannot start as asked; says what to change."""


@dataclass(frozen=True)
class Ratings:
    """The emulated bench's own ratings (its capabilities): defaults suit cells."""

    channels: int = 1
    max_current_A: float = 50.0
    min_voltage_V: float = 0.0
    max_voltage_V: float = 5.0
    temperature_chamber: bool = False
    max_sample_rate_hz: float = 10.0


def read_password(password_stdin: bool) -> str:
    """The bench's MQTT password: stdin's first line, else the environment variable."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise EmulatorError("--password-stdin given but no password was read from standard input")
        return password
    password = os.environ.get(PASSWORD_VARIABLE, "")
    if not password:
        raise EmulatorError(
            f"no bench password: pass --password-stdin and write it to stdin, or set {PASSWORD_VARIABLE}"
        )
    return password


def broker_address(settings: Settings) -> BrokerAddress:
    if settings.mqtt_url:
        return BrokerAddress.from_url(
            settings.mqtt_url, settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file
        )
    return BrokerAddress(settings.mqtt_host, settings.mqtt_port)


def emulate(name: str, *, speed: float, noise: bool, fault: Fault | None, ratings: Ratings, password: str) -> int:
    """Run the emulator until a signal (or its fault) ends it; the exit code."""
    if not 1 <= speed <= 1000:
        raise EmulatorError(f"--speed {speed:g}: use 1 (real time) to 1000")
    if ratings.min_voltage_V >= ratings.max_voltage_V:
        raise EmulatorError(
            f"--min-voltage {ratings.min_voltage_V:g} must be below --max-voltage {ratings.max_voltage_V:g}"
        )
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    capabilities = Capabilities(
        channels=ratings.channels,
        max_current_A=ratings.max_current_A,
        min_voltage_V=ratings.min_voltage_V,
        max_voltage_V=ratings.max_voltage_V,
        temperature_chamber=ratings.temperature_chamber,
        step_modes=STEP_MODES,
        max_sample_rate_hz=ratings.max_sample_rate_hz,
        software=f"fastlims bench emulator {__version__}",
    )
    service = BenchService(
        EmulatorDriver(capabilities, speed=speed, noise=noise),
        address=broker_address(settings),
        password=password,
        topics=Topics(settings.mqtt_topic_prefix),
        options=BenchOptions(name=name, fault=fault),
    )

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        return await service.serve(stop)

    return asyncio.run(main())

"""The demo's emulated physical benches: ``fastlims up --demo`` registers ``emu-1`` and ``emu-2``
and runs each as its own ``fastlims bench emulate`` child process, a bench PC without the hardware
that speaks only MQTT under its own bench identity.

Each bench's MQTT password is random, kept (0600) in ``<data dir>/demo-benches/NAME.mqtt-password``
like the reference Digital Twin's, and reaches its child on standard input: never in argv, an
environment variable or a log. A lab whose broker is external (``FASTLIMS_MQTT_URL``) adds these
identities to that broker: write the password files first, or read them after the first start.

The children die with the LIMS: stopped with SIGTERM when it stops, and, should the LIMS itself be
killed, by the kernel (``PR_SET_PDEATHSIG``), so no emulator outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import logging
import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from fastlims.benches import registry
from fastlims.benches.gateway.models import BenchLiveState
from fastlims.config import Settings
from fastlims.db.engine import Database
from fastlims.messaging import identities
from fastlims.system import System
from fastlims.timeutil import utcnow

log = logging.getLogger(__name__)

#: Test seconds per wall second of the demo's emulators (the emulator's fastest): a 12 h capacity
#: test runs in about 45 s. The registry records the same figure, so the scheduler books for it.
DEMO_BENCH_SPEED = 1000.0
#: How long the demo waits for its emulators to announce themselves (a loaded machine imports slowly).
ONLINE_TIMEOUT_S = 120.0
ROUND_THE_CLOCK = {"weekly_hours": [[["00:00", "00:00"]]] * 7}


@dataclass(frozen=True)
class DemoBench:
    """An emulated physical bench: its name (bench id and MQTT user) and ratings. The ratings
    cover the demo's cells and modules: 50 A, 0-60 V, a temperature chamber."""

    name: str
    ratings: registry.Ratings = field(
        default_factory=lambda: registry.Ratings(
            max_current_A=50.0, min_voltage_V=0.0, max_voltage_V=60.0, temperature_chamber=True
        )
    )


DEMO_BENCHES = (DemoBench("emu-1"), DemoBench("emu-2"))
# What a bench PC needs of the LIMS's settings: where the broker is. Not the LIMS's database, its
# own MQTT credentials or any other secret.
CHILD_SETTINGS = (
    "FASTLIMS_MQTT_URL",
    "FASTLIMS_MQTT_HOST",
    "FASTLIMS_MQTT_PORT",
    "FASTLIMS_MQTT_CA_FILE",
    "FASTLIMS_MQTT_TOPIC_PREFIX",
    "FASTLIMS_LOG_FORMAT",
)


def password_file(data_dir: Path, name: str) -> Path:
    return data_dir / "demo-benches" / f"{name}.mqtt-password"


def ensure_password(data_dir: Path, name: str) -> str:
    """The bench's MQTT password, created once (random, 0600) in the data dir."""
    path = password_file(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def register(system: System, benches: tuple[DemoBench, ...] = DEMO_BENCHES, speed: float = DEMO_BENCH_SPEED) -> None:
    """Each bench in the registry (physical, open around the clock, its ratings, ``speed`` as its
    time scale) and as an MQTT identity of role ``bench`` with its password; idempotent."""
    for bench in benches:
        password = ensure_password(system.settings.data_dir, bench.name)
        with system.database.transaction() as session:
            try:
                registry.get(session=session, name=bench.name)
                registry.update(
                    session=session,
                    name=bench.name,
                    changes=dataclasses.asdict(bench.ratings),
                    calendar=ROUND_THE_CLOCK,
                    time_scale=speed,
                )
                registry.set_active(session=session, name=bench.name, active=True)
            except registry.BenchNotFound:
                registry.add(
                    session=session,
                    name=bench.name,
                    kind="physical",
                    capabilities=("cell", "module"),
                    calendar=ROUND_THE_CLOCK,
                    ratings=bench.ratings,
                    time_scale=speed,
                )
            # The password file is the truth: the identity is made again from it each start.
            if any(u.username == bench.name for u in identities.get_all(session=session)):
                identities.remove(session=session, username=bench.name)
            identities.add(session=session, username=bench.name, role="bench", password=password)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM this child when the thread that started it (the LIMS's main thread) ends."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def child_environment(environ: dict[str, str]) -> dict[str, str]:
    """The parent's environment without the LIMS's own settings, but with where the broker is.
    The emulators log at INFO into their own files (``<data dir>/demo-benches/NAME.log``)."""
    kept = {k: v for k, v in environ.items() if not k.startswith("FASTLIMS_")}
    kept.update({k: environ[k] for k in CHILD_SETTINGS if k in environ})
    kept["FASTLIMS_LOG_LEVEL"] = "INFO"
    return kept


class EmulatedBenches:
    """BackgroundService: the demo's bench emulators, one child process each. Started after the
    broker and the bench gateway (it is the last service), stopped first."""

    name = "demo-benches"

    def __init__(
        self,
        settings: Settings,
        database: Database,
        benches: tuple[DemoBench, ...] = DEMO_BENCHES,
        speed: float = DEMO_BENCH_SPEED,
    ) -> None:
        self.settings = settings
        self.database = database
        self.benches = benches
        self.speed = speed
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def command(self, bench: DemoBench) -> list[str]:
        r = bench.ratings
        arguments = [sys.executable, "-m", "fastlims.cli", "bench", "emulate", bench.name, "--password-stdin"]
        arguments += ["--speed", f"{self.speed:g}", "--max-current", f"{r.max_current_A:g}"]
        arguments += ["--min-voltage", f"{r.min_voltage_V or 0.0:g}", "--max-voltage", f"{r.max_voltage_V:g}"]
        return arguments + (["--temperature-chamber"] if r.temperature_chamber else [])

    async def start(self) -> None:
        folder = self.settings.data_dir / "demo-benches"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        environment = child_environment(dict(os.environ))
        for bench in self.benches:
            password = ensure_password(self.settings.data_dir, bench.name)
            output: IO[bytes] = (folder / f"{bench.name}.log").open("ab")
            # Started from this (the main) thread: PR_SET_PDEATHSIG follows the thread that forks.
            child = subprocess.Popen(  # noqa: S603 - our own command, no shell
                self.command(bench),
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=environment,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, before exec
            )
            output.close()
            assert child.stdin is not None
            child.stdin.write(password.encode() + b"\n")
            child.stdin.close()
            self.children[bench.name] = child
            log.info("emulated bench started", extra={"bench": bench.name, "pid": child.pid, "speed": self.speed})
        try:
            await self._online(utcnow())
        except BaseException:
            await self.stop()  # the runtime stops only the services that started
            raise

    def _states(self, since: datetime) -> dict[str, str]:
        with self.database.transaction() as session:
            rows = session.query(BenchLiveState).filter(BenchLiveState.bench.in_(list(self.children))).all()
            return {r.bench: r.state for r in rows if r.updated_at >= since}

    async def _online(self, since: datetime) -> None:
        """Return once the bench gateway has heard each emulator announce itself (a fresh state
        other than ``offline``): the demo's physical runs are not booked onto benches still
        starting. An emulator that exits, or stays silent, stops the start naming its log."""
        folder = self.settings.data_dir / "demo-benches"
        deadline = asyncio.get_running_loop().time() + ONLINE_TIMEOUT_S
        while True:
            for name, child in self.children.items():
                if child.poll() is not None:
                    raise RuntimeError(f"emulated bench {name} exited with {child.returncode}: see {folder / name}.log")
            states = await asyncio.to_thread(self._states, since)
            waiting = [n for n in self.children if states.get(n, "offline") == "offline"]
            if not waiting:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"emulated benches {', '.join(waiting)} did not come online within {ONLINE_TIMEOUT_S:g} s:"
                    f" see their logs in {folder}"
                )
            await asyncio.sleep(0.5)  # polling the gateway's table with a deadline

    async def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for name, child in self.children.items():
            try:
                await asyncio.to_thread(child.wait, 10)
            except subprocess.TimeoutExpired:
                log.error("emulated bench did not stop on SIGTERM: killed", extra={"bench": name, "pid": child.pid})
                child.kill()
                await asyncio.to_thread(child.wait)
        self.children.clear()


def enable_emulated_benches(system: System, speed: float = DEMO_BENCH_SPEED) -> tuple[str, ...]:
    """Register the demo's benches and run their emulators with the system (the last service)."""
    register(system, DEMO_BENCHES, speed)
    system.services.append(EmulatedBenches(system.settings, system.database, DEMO_BENCHES, speed))
    return tuple(b.name for b in DEMO_BENCHES)

"""The driver interface a bench gateway talks to, and the emulator's implementation of it.

A driver for a real cycler (Maccor MacNet, Arbin CTI, Neware BTS, Biologic EC-Lab) implements the
same calls: ``connect`` to the instrument, report its ``capabilities``, ``load`` a run file
(translating the resolved procedure into the instrument's own schedule), ``start``, ``pause``,
``resume``, ``stop`` (graceful: the step in progress ends, the UUT rests) and ``abort``
(immediate open circuit), and ``read_samples`` (what was measured since the last call, in the
Battery Data Format's columns, with the run events). The emulator runs the procedure itself,
against an :class:`~fastlims.benches.emulator.cell.EmulatedUut`, at ``speed`` times real time.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fastlims.benches.emulator.cell import EmulatedUut
from fastlims.benches.emulator.runner import Chunk, EmulatedRun, Event
from fastlims.procedures.runfile import RunProcedure

STEP_MODES = ("rest", "cc", "cv", "cp", "pulse", "profile", "ambient")


@dataclass(frozen=True)
class Capabilities:
    """What a bench tells the LIMS when it comes online."""

    channels: int
    max_current_A: float
    min_voltage_V: float
    max_voltage_V: float
    temperature_chamber: bool
    step_modes: tuple[str, ...]
    max_sample_rate_hz: float
    software: str


class DriverError(RuntimeError):
    """A command the instrument cannot take in its state (the bench answers ``rejected`` with it)."""


class BenchDriver(Protocol):
    def connect(self) -> Capabilities: ...
    def load(self, run_id: str, run_file: RunProcedure) -> None: ...
    def start(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self) -> None: ...
    def abort(self, reason: str) -> None: ...
    def read_samples(self) -> Chunk | None: ...


class EmulatorDriver:
    """A bench without hardware: ``speed`` test seconds per wall second (1 = real time, up to
    1000); ``noise`` adds measurement noise; ``clock`` is the wall clock (a test passes its own)."""

    def __init__(
        self,
        capabilities: Capabilities,
        *,
        speed: float = 1.0,
        noise: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < speed <= 1000:
            raise ValueError(f"speed must be in (0, 1000], not {speed}")
        self.capabilities = capabilities
        self.speed = speed
        self.noise = noise
        self.clock = clock
        self.run_id: str | None = None
        self.run: EmulatedRun | None = None
        self.state = "idle"  # idle, loaded, running, paused, ended
        self._origin_wall = 0.0
        self._origin_test = 0.0
        self._held: Chunk | None = None  # measured before a pause or an abort, not yet read

    def connect(self) -> Capabilities:
        return self.capabilities

    def load(self, run_id: str, run_file: RunProcedure) -> None:
        if self.state in ("running", "paused"):
            raise DriverError(f"busy with run {self.run_id}")
        safety = run_file.procedure.safety
        bench = self.capabilities
        if safety.max_voltage_V > bench.max_voltage_V or safety.min_voltage_V < bench.min_voltage_V:
            raise DriverError(
                f"the run's safety window {safety.min_voltage_V:g}-{safety.max_voltage_V:g} V is outside the "
                f"bench's {bench.min_voltage_V:g}-{bench.max_voltage_V:g} V"
            )
        uut = EmulatedUut.from_ratings(run_file.ratings, noise=self.noise, seed=zlib.crc32(run_id.encode()))
        self.run = EmulatedRun(run_file, uut)
        self._held = None
        self.run_id = run_id
        self.state = "loaded"

    def start(self) -> None:
        if self.state != "loaded":
            raise DriverError(f"start needs a loaded run, the bench is {self.state}")
        self._anchor()
        self.state = "running"

    def pause(self) -> None:
        if self.state != "running":
            raise DriverError(f"pause needs a running run, the bench is {self.state}")
        self._hold(self._advance())
        self.state = "paused"

    def resume(self) -> None:
        if self.state != "paused":
            raise DriverError(f"resume needs a paused run, the bench is {self.state}")
        self._anchor()
        self.state = "running"

    def stop(self) -> None:
        """Graceful: the run ends where it is, the UUT at open circuit."""
        self.abort("stopped by the LIMS")

    def abort(self, reason: str) -> None:
        if self.run is None or self.state not in ("loaded", "running", "paused"):
            raise DriverError(f"no run to end, the bench is {self.state}")
        if self.state == "running":
            self._hold(self._advance())  # what was measured up to the abort is still read
        self.run.abort(reason)
        self.state = "ended"

    def read_samples(self) -> Chunk | None:
        """What was measured since the last call, including up to a pause or an abort (``None``
        when nothing was)."""
        held, self._held = self._held, None
        if self.run is None or self.state != "running":
            return held
        return _joined(held, self._advance())

    def _advance(self) -> Chunk:
        run = self.run
        assert run is not None
        until = self._origin_test + (self.clock() - self._origin_wall) * self.speed
        chunk = run.advance(until)
        if run.ended:
            self.state = "ended"
        return chunk

    def _hold(self, chunk: Chunk) -> None:
        if chunk.count or chunk.events:
            self._held = _joined(self._held, chunk)

    def _anchor(self) -> None:
        assert self.run is not None
        self._origin_wall = self.clock()
        self._origin_test = self.run.t


def _joined(first: Chunk | None, then: Chunk) -> Chunk:
    if first is None:
        return then
    rows = {name: first.rows[name] + then.rows[name] for name in first.rows}
    return Chunk(first.first_index, rows, first.events + then.events)


__all__ = ["BenchDriver", "Capabilities", "Chunk", "DriverError", "EmulatorDriver", "Event"]

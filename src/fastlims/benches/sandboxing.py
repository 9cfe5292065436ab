"""The virtual benches' sandbox as the LIMS configures it: which mode this host allows
(:func:`fastlims.benches.sandbox.probe.detect`), the limits from the settings, and the paths that
must stay out of every simulation's reach (the data folder, the SQLite database, the secret key).

A process that runs virtual benches calls :func:`require` when it starts: where no sandbox can be
set up it refuses (:class:`SandboxUnavailable`) unless ``FASTLIMS_VIRTUAL_BENCH_UNSANDBOXED=true``,
and then :func:`status` says so on the pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastlims.benches.cosim.isolated import Sandbox
from fastlims.benches.sandbox import probe
from fastlims.benches.sandbox.policy import Limits
from fastlims.config import Settings

_MB = 1 << 20


class SandboxUnavailable(RuntimeError):
    """No sandbox works here and the lab did not allow unsandboxed virtual benches."""


@dataclass(frozen=True)
class Status:
    """What the pages show: whether simulations are confined, and how or why not."""

    sandboxed: bool
    mode: str
    text: str


def deny_paths(settings: Settings) -> tuple[str, ...]:
    """What no simulation may reach: the data folder (storage, broker state, keys), the SQLite file,
    the secret key file, and any certificate or key the LIMS holds."""
    found = [settings.data_dir, settings.data_dir / "secret_key"]
    url = settings.resolved_database_url
    if url.startswith("sqlite:///"):
        found.append(Path(url.removeprefix("sqlite:///")))
    found += [p for p in (settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file) if p is not None]
    return tuple(str(Path(p).resolve()) for p in found)


def limits(settings: Settings) -> Limits:
    cpu = settings.virtual_bench_cpu_s or int(settings.virtual_bench_timeout_s) + 60
    return Limits(
        memory_bytes=settings.virtual_bench_memory_mb * _MB,
        cpu_s=cpu,
        file_bytes=settings.virtual_bench_file_size_mb * _MB,
        processes=settings.virtual_bench_processes,
        open_files=settings.virtual_bench_open_files,
    )


def detection(settings: Settings) -> probe.Detection:
    return probe.detect(settings.virtual_bench_sandbox, settings.virtual_bench_sandbox_uid)


def detect_in_background(settings: Settings) -> None:
    """Probe while the process starts its other services (:func:`require` then waits for it)."""
    probe.detect_in_background(settings.virtual_bench_sandbox, settings.virtual_bench_sandbox_uid)


def require(settings: Settings) -> Sandbox:
    """The sandbox every simulation of this process runs in; raises :class:`SandboxUnavailable`
    where none works and unsandboxed runs are not allowed."""
    found = detection(settings)
    if not found.sandboxed and not settings.virtual_bench_unsandboxed:
        raise SandboxUnavailable(
            f"virtual benches need a sandbox for the partners' FMUs and none works here ({found.describe()}); "
            "set FASTLIMS_VIRTUAL_BENCH_UNSANDBOXED=true to run them unconfined anyway (docs/security.md), or "
            "FASTLIMS_VIRTUAL_BENCH_ENABLED=false"
        )
    return Sandbox(mode=found.mode, limits=limits(settings), deny=deny_paths(settings),
                   uid=settings.virtual_bench_sandbox_uid)  # fmt: skip


def status(settings: Settings) -> Status:
    """What this process found (the worker probes when it starts; no probe runs twice)."""
    found = detection(settings)
    return Status(found.sandboxed, found.mode, found.describe())


def warning(settings: Settings) -> str | None:
    """For the pages: why virtual benches run unsandboxed in this process, or None (sandboxed, not
    probed here, or no virtual benches)."""
    if not settings.virtual_bench_enabled:
        return None
    found = probe.detected(settings.virtual_bench_sandbox, settings.virtual_bench_sandbox_uid)
    return None if found is None or found.sandboxed else found.describe()


def duration_cap(settings: Settings, expected_s: float) -> float:
    """The longest simulated time of a run: its expected duration (the catalog's procedure) times
    ``FASTLIMS_VIRTUAL_BENCH_MAX_DURATION_FACTOR``, never past ``FASTLIMS_VIRTUAL_BENCH_MAX_DURATION_S``."""
    cap = expected_s * settings.virtual_bench_max_duration_factor
    if settings.virtual_bench_max_duration_s is not None:
        cap = min(cap, settings.virtual_bench_max_duration_s)
    return cap

"""What a simulation child is allowed: the sandbox :class:`Policy` the parent writes and the child
enforces on itself (:mod:`.confine`) before it loads a partner's FMU. Plain JSON both ways.

Modes, strongest first (``FASTLIMS_VIRTUAL_BENCH_SANDBOX``, default ``auto``: the strongest that
works here, found by :mod:`.probe` at start-up):

- ``namespaces``: new user, mount, network, IPC, UTS and PID namespaces; the child sees a root
  file system holding only the Python runtime (read-only), its FMUs (read-only) and its scratch
  folder; no network at all (only its own loopback, down); every process it starts dies with it.
  Landlock on top where the kernel has it.
- ``landlock``: Landlock alone (no privilege needed): the same file-system view as a rule set,
  TCP bind/connect refused (ABI 4+), signals and abstract sockets kept in (ABI 6+); UDP and
  connecting to a UNIX socket file are not covered.
- ``none``: no confinement (only with ``FASTLIMS_VIRTUAL_BENCH_UNSANDBOXED=true``).

In every mode: a clean environment, resource limits, no-new-privileges and no capabilities; a root
parent also has the child drop to ``uid`` (default 65534, nobody) where the runtime stays readable.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

MODES = ("namespaces", "landlock", "none")
NOBODY = 65534
# Read-only system folders the runtime and an FMU's shared libraries may need (never secrets).
SYSTEM_PATHS = ("/usr/lib", "/usr/lib64", "/usr/local/lib", "/lib", "/lib64", "/etc/ld.so.cache")
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one child (``setrlimit``): address space and data segment in bytes,
    CPU seconds, largest file in bytes, processes (threads count) and open files."""

    memory_bytes: int = 4 << 30
    cpu_s: int = 3600
    file_bytes: int = 1 << 30
    processes: int = 64
    open_files: int = 256


@dataclass(frozen=True)
class Policy:
    """One child's sandbox. ``read``: folders and files it may read (its FMUs, the runtime);
    ``scratch``: its one writable folder; ``deny``: what must stay out of reach (the data
    folder, the database, the secret key): a ``read`` path that holds one of them is refused;
    ``uid``/``gid``: who a root parent's child becomes (None: it stays root, without
    capabilities); ``root``: an empty folder the ``namespaces`` mode builds its file system on."""

    mode: str
    read: tuple[str, ...]
    scratch: str
    root: str
    deny: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    uid: int | None = NOBODY
    gid: int | None = NOBODY

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Policy:
        data: dict[str, Any] = json.loads(text)
        data["limits"] = Limits(**data.get("limits") or {})
        data["read"], data["deny"] = tuple(data["read"]), tuple(data.get("deny") or ())
        if data["mode"] not in MODES:
            raise ValueError(f"unknown sandbox mode {data['mode']!r}; one of {', '.join(MODES)}")
        return cls(**data)

"""The child's side of the sandbox: :func:`confine` applies a :class:`~.policy.Policy` to the
calling process before anything of a partner's runs in it (the child is still the LIMS's own
code here; the FMUs are loaded after).

Order matters, and each step needs the one before: in ``namespaces`` mode a root file system of
bind mounts of what the child keeps, the drop to an unprivileged uid (a root parent; in
``landlock`` mode too where the runtime stays readable), the user and other namespaces,
``pivot_root`` into that root, and a fork so that the simulation is PID 1 of its own PID namespace
(its descendants die with it; it dies with the process its parent started); then resource limits,
no-new-privileges, no capabilities, and Landlock.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

from fastlims.benches.sandbox import landlock, linux
from fastlims.benches.sandbox.policy import DEVICES, SYSTEM_PATHS, Policy

SandboxError = linux.SandboxError


def runtime_paths() -> list[str]:
    """What the Python runtime of this process reads: its import path and the system libraries."""
    found = [p for p in sys.path if p and os.path.isabs(p) and os.path.exists(p)]
    return [*found, *(p for p in SYSTEM_PATHS if os.path.exists(p))]


def _outermost(paths: Iterable[str]) -> list[str]:
    """The paths without those inside another one of them (a bind of the outer shows them)."""
    kept: list[str] = []
    for path in sorted({os.path.normpath(p) for p in paths}, key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def exposes(path: str, deny: Iterable[str]) -> bool:
    """Whether reading ``path`` would show one of ``deny`` (the data folder inside the working
    folder that ``python -m`` put on the import path, say): the child's import path leaves it out."""
    real = os.path.realpath(path)
    return any(
        os.path.realpath(denied) == real or os.path.realpath(denied).startswith(real.rstrip("/") + "/")
        for denied in deny
    )


def check_denied(read: Iterable[str], deny: Iterable[str]) -> None:
    """Refuse a policy whose readable paths would expose a denied one (the data folder inside a
    folder on the import path, say)."""
    for denied in deny:
        for path in read:
            if exposes(path, (denied,)):
                raise SandboxError(0, f"the sandbox would let the simulation read {denied} through {path}")


def world_reachable(path: str) -> bool:
    """Whether someone other than the owner can reach ``path`` (every folder above it searchable)."""
    current = Path(path).resolve()
    for folder in [*reversed(current.parents), current]:
        mode = folder.stat().st_mode
        if folder != current and not mode & 0o001:
            return False
    return bool(current.stat().st_mode & 0o004)


def _drop_user(policy: Policy) -> bool:
    if os.geteuid() != 0 or policy.uid is None or policy.gid is None:
        return False
    os.setgroups([])
    os.setresgid(policy.gid, policy.gid, policy.gid)
    os.setresuid(policy.uid, policy.uid, policy.uid)
    linux.prctl(linux.PR_SET_DUMPABLE, 1)  # else /proc/self belongs to root and the uid map cannot be written
    return True


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _bind_all(root: str, read: list[str], devices: list[str], scratch: str) -> None:
    for path in [*read, scratch, *devices]:
        target = root + path
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            Path(target).touch()
        linux.mount(path, target, None, linux.MS_BIND | linux.MS_REC)
        if path == scratch or path in devices:
            continue
        flags = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
        linux.mount(None, target, None, flags | linux.locked_flags(target))


def _build_root(policy: Policy, read: list[str], devices: list[str]) -> None:
    """A tmpfs at ``policy.root`` holding only the bind mounts, then made read-only."""
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    root = policy.root
    linux.mount("tmpfs", root, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=8m,mode=0755")
    _bind_all(root, read, devices, policy.scratch)
    flags = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
    linux.mount(None, root, None, flags)


def _pivot(policy: Policy) -> None:
    # A fresh bind of the root onto itself: pivot_root refuses a mount locked by a more privileged
    # namespace (the one a root parent's child built it in).
    linux.mount(policy.root, policy.root, None, linux.MS_BIND | linux.MS_REC)
    os.chdir(policy.root)
    linux.pivot_root(".", ".")  # the old root ends up on top of the new one: detach it
    linux.umount(".")
    os.chdir(policy.scratch)


_OTHERS = linux.CLONE_NEWNS | linux.CLONE_NEWNET | linux.CLONE_NEWIPC | linux.CLONE_NEWUTS | linux.CLONE_NEWPID


def _namespaces(policy: Policy, read: list[str], devices: list[str]) -> bool:
    """The namespaces and the new root. A root parent's child builds the root while it is still
    root (so it reaches the runtime wherever it is installed), drops to ``policy.uid`` and enters
    a user namespace of its own (a new mount namespace in it, where it may pivot); any other child
    enters the user namespace first. The uid map is written while ``/proc`` is still there."""
    if os.geteuid() == 0:
        linux.unshare(linux.CLONE_NEWNS)
        _build_root(policy, read, devices)
        dropped = _drop_user(policy)
        _user_namespace(_OTHERS)
        _pivot(policy)
        return dropped
    _user_namespace(_OTHERS)
    _build_root(policy, read, devices)
    _pivot(policy)
    return False


def _user_namespace(flags: int) -> None:
    uid, gid = os.geteuid(), os.getegid()
    linux.unshare(linux.CLONE_NEWUSER | flags)
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")


def _become_pid_one() -> None:
    """Fork into the new PID namespace, twice: this process (outside) waits for the namespace's
    init (PID 1), which reaps whatever the simulation starts and waits for the simulation (PID 2,
    the only one that returns from here). Each leaves as its child did, so the parent sees the
    simulation's own end (its exit code, or the signal: a limit's SIGXCPU names the limit). PID 1
    passes a signal on as exit code 128 + signal (the kernel does not deliver a signal an init sends
    itself); PID 1 dies with this process, and everything in the namespace with PID 1."""
    init = os.fork()
    if init:
        _mirror(init, outside=True)
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    simulation = os.fork()
    if simulation:
        _mirror(simulation, outside=False)


def _mirror(pid: int, *, outside: bool) -> NoReturn:
    os.closerange(3, 65536)
    if outside:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda number, frame: os.kill(pid, signal.SIGKILL))
    while True:
        try:
            found, status = os.waitpid(pid if outside else -1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(1)
        if found == pid:
            break
    number = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    if not outside:
        os._exit(128 + number if number else code)
    if not number and code > 128:
        number = code - 128
    if number:
        signal.signal(number, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.kill(os.getpid(), number)
    os._exit(code)


def _limits(policy: Policy) -> None:
    limits = policy.limits
    for which, value in (
        (resource.RLIMIT_AS, limits.memory_bytes),
        (resource.RLIMIT_DATA, limits.memory_bytes),
        (resource.RLIMIT_FSIZE, limits.file_bytes),
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))
    # The soft CPU limit sends SIGXCPU (the parent names it); the hard one kills a child that ignores it.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it: a file past the limit ends the run, named


def confine(policy: Policy) -> dict[str, object]:
    """Apply ``policy`` to this process; returns what holds (``mode``, ``uid_dropped``,
    ``landlock``). Raises :class:`SandboxError` when a step the mode needs fails."""
    report: dict[str, object] = {"mode": policy.mode, "uid_dropped": False, "landlock": None}
    if policy.mode == "none":
        _limits(policy)
        return report
    read = _outermost([*policy.read, *runtime_paths()])
    check_denied([*read, policy.scratch], policy.deny)
    devices = [d for d in DEVICES if os.path.exists(d)]
    if policy.mode == "namespaces":
        report["uid_dropped"] = _namespaces(policy, read, devices)
        _become_pid_one()
    else:
        report["uid_dropped"] = _drop_user(policy)
    _limits(policy)
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.drop_capabilities()
    if landlock.abi() >= 1:
        report["landlock"] = landlock.restrict(read, [policy.scratch], devices)
    elif policy.mode == "landlock":
        raise SandboxError(0, "Landlock is not available in this kernel")
    return report

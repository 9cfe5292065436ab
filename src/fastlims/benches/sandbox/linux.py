"""The Linux calls the sandbox needs that Python 3.11's ``os`` lacks (``unshare``, ``mount``,
``pivot_root``, ``capset``, ``prctl`` and Landlock's three system calls), through ctypes on the C
library: no compiled helper and no setuid binary, so it works wherever the kernel allows it.

Every call raises :class:`SandboxError` naming the call, its argument and the kernel's reason.
"""

from __future__ import annotations

import ctypes
import os
import platform

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

# statvfs f_flag bits -> the mount flags a read-only remount must keep (they are locked in a
# mount namespace owned by a user namespace: dropping one fails with EPERM)
_LOCKED = (
    (2, MS_NOSUID),
    (4, MS_NODEV),
    (8, MS_NOEXEC),
    (1024, MS_NOATIME),
    (2048, MS_NODIRATIME),
    (4096, MS_RELATIME),
)

# system call numbers without a C library wrapper (Landlock's are the same on every architecture)
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "capset": 126},
    "aarch64": {"pivot_root": 41, "capset": 91},
}
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class SandboxError(OSError):
    """The sandbox could not be set up (or a check of it failed): says which call and why."""


def _fail(what: str) -> SandboxError:
    errno = ctypes.get_errno()
    return SandboxError(errno, f"{what}: {os.strerror(errno)}")


def _path(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        raise _fail(f"unshare({flags:#x})")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    result = _libc.mount(_path(source), _path(target), _path(fstype), ctypes.c_ulong(flags), _path(data))
    if result != 0:
        raise _fail(f"mount {source or fstype or ''} on {target}")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    if _libc.umount2(_path(target), ctypes.c_int(flags)) != 0:
        raise _fail(f"umount {target}")


def locked_flags(path: str) -> int:
    """The mount flags of ``path``'s mount that a remount has to keep."""
    flag = os.statvfs(path).f_flag
    return sum(mount_flag for bit, mount_flag in _LOCKED if flag & bit)


def _number(name: str) -> int:
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        raise SandboxError(0, f"{name}: the sandbox knows no system call numbers for {platform.machine()}")
    return numbers[name]


def pivot_root(new_root: str, put_old: str) -> None:
    if _libc.syscall(_number("pivot_root"), _path(new_root), _path(put_old)) != 0:
        raise _fail(f"pivot_root {new_root}")


def prctl(option: int, value: int) -> None:
    if _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0),
                   ctypes.c_ulong(0)) != 0:  # fmt: skip
        raise _fail(f"prctl({option}, {value})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """No capability left: the bounding set emptied, then effective, permitted and inheritable
    cleared (a root process keeps its uid 0 but loses what makes root powerful)."""
    for capability in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(capability), 0, 0, 0) != 0 and ctypes.get_errno() not in (1, 22):
            raise _fail(
                f"drop capability {capability} from the bounding set"
            )  # EPERM: none to drop; EINVAL: past the last
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
    data = (_CapData * 2)()
    if _libc.syscall(_number("capset"), ctypes.byref(header), ctypes.byref(data)) != 0:
        raise _fail("capset (clear every capability)")


def landlock_syscall(number: int, *args: object) -> int:
    """One Landlock call; returns its result (a file descriptor or 0), raises on -1."""
    result = int(_libc.syscall(number, *args))
    if result < 0:
        raise _fail(f"landlock system call {number}")
    return result

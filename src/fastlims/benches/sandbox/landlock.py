"""Landlock (Linux 5.13+), an unprivileged way for a process to give up file-system and network
access for itself and every process it starts: what the simulation child may still read, write
and connect to once it is confined.

Rights by ABI version (the kernel's, :func:`abi`): 1 the file-system basics, 2 ``REFER``
(renames across folders), 3 ``TRUNCATE``, 4 TCP bind and connect, 5 device ioctls, 6 scopes
(abstract UNIX sockets and signals to processes outside the domain). What an older kernel does not
know stays allowed; :func:`restrict` reports what it could enforce.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

from fastlims.benches.sandbox import linux

CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13
TRUNCATE = 1 << 14
IOCTL_DEV = 1 << 15

NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the rights that apply to a file


class _Ruleset(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]  # fmt: skip


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is not there (old kernel, not enabled)."""
    try:
        return linux.landlock_syscall(linux.SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                                      ctypes.c_uint32(CREATE_RULESET_VERSION))  # fmt: skip
    except OSError:
        return 0


def _fs_rights(version: int) -> int:
    rights = (1 << 13) - 1
    if version >= 2:
        rights |= REFER
    if version >= 3:
        rights |= TRUNCATE
    if version >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(read: Iterable[str], write: Iterable[str], devices: Iterable[str] = ()) -> dict[str, object]:
    """Confine this process (and what it starts): read-only beneath ``read``, everything beneath
    ``write``, read and write of the files ``devices`` (``/dev/null``), nothing else of the file
    system, no TCP bind or connect (ABI 4+), no abstract UNIX socket or signal out of the domain
    (ABI 6+). Needs no-new-privileges set first (or CAP_SYS_ADMIN). Returns what it enforced."""
    version = abi()
    if version < 1:
        raise linux.SandboxError(0, "Landlock is not available in this kernel")
    handled = _fs_rights(version)
    attr = _Ruleset(handled, NET_BIND_TCP | NET_CONNECT_TCP if version >= 4 else 0,
                    SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if version >= 6 else 0)  # fmt: skip
    size = 8 if version < 4 else 16 if version < 6 else 24
    ruleset = linux.landlock_syscall(linux.SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                                     ctypes.c_uint32(0))  # fmt: skip
    try:
        readable = handled & (READ_FILE | READ_DIR | EXECUTE)
        for rights, paths in ((readable, read), (handled, write), (handled & (READ_FILE | WRITE_FILE), devices)):
            for path in paths:
                _allow(ruleset, path, rights)
        linux.landlock_syscall(linux.SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return {"abi": version, "network": version >= 4, "scopes": version >= 6}


def _allow(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # nothing there to allow
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        rule = _PathBeneath(rights, fd)
        try:
            linux.landlock_syscall(linux.SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH),
                                   ctypes.byref(rule), ctypes.c_uint32(0))  # fmt: skip
        except OSError as exc:
            raise linux.SandboxError(exc.errno or 0, f"Landlock rule for {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)

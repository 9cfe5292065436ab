"""The SFTP server for Digital Twin partners (seed path 5), on asyncssh.

- Public-key authentication only, one account per partner (``fastlims partners add``); keys
  are read from the database at each login, so a new or disabled partner counts at once.
- Each partner is chrooted to its own pool folder ``pool/<partner>/`` and sees it as ``/``; it
  uploads ``/<test_UUID>/model.fmu`` and ``/<test_UUID>/inter_connection.json``.
- No shell, exec, SCP, port forwarding, symlinks or hard links; no ``..`` in a path; a link that
  points outside the folder is refused.
- Size limits are enforced while writing (the write fails with an SFTP error): per file and per
  partner (everything in its pool folder, its files in the blob storage's pool when the storage
  is not a local folder, plus uploads in flight). An append (``FXF_APPEND``) writes at the end
  of the file whatever offset the client sends, and counts like any growth.
- Guessing: failed logins are counted per partner name and per source address
  (:class:`~fastlims.users.throttle.LoginThrottle`); a locked name or address is refused, a
  correct key too, with a banner saying how long to wait.
- File work (copies, writes, renames, quota scans) runs in worker threads: one partner's disk
  or storage never stalls the event loop that the web server, the broker and the intake share.
- A file becomes visible only once completely written and closed: it is written under a
  temporary name outside the pool and renamed into place on a clean close. A close made by the
  session clean-up of a client that died mid-transfer is not a clean close: the temporary file
  is deleted and nothing is processed. Left-overs of a crash are removed at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from asyncssh import SFTPAttrs, SFTPFailure, SFTPName, SFTPNoSuchFile, SFTPPermissionDenied, SFTPQuotaExceeded
from asyncssh.sftp import FXF_APPEND, FXF_CREAT, FXF_EXCL, FXF_TRUNC, FXF_WRITE

from fastlims.users.throttle import LoginThrottle, wait_message

log = logging.getLogger(__name__)

# (partner, key, local path) of a file that was completely written and closed.
FileCommitted = Callable[[str, str, Path], Awaitable[None]]
# partner name -> (OpenSSH authorized_keys text, quota in bytes) or None (unknown or disabled).
PartnerLookup = Callable[[str], tuple[str, int] | None]
# partner name -> bytes of its files stored outside the SFTP folder (a blob storage's pool); blocking.
StoredUsage = Callable[[str], int]


@dataclass
class SftpStats:
    logins: int = 0
    refused_logins: int = 0
    committed: int = 0
    aborted: int = 0
    refused_writes: int = 0
    sessions_open: int = 0


def ensure_host_key(path: Path) -> asyncssh.SSHKey:
    """The server's host key, generated once (ed25519) and kept with mode 0600."""
    if path.exists():
        return asyncssh.read_private_key(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    temporary = path.with_name(path.name + f".{uuid.uuid4().hex[:8]}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key.export_private_key())
    os.replace(temporary, path)
    return key


class _Upload:
    """A file being uploaded: written to ``temporary``, renamed to ``final`` on a clean close."""

    def __init__(self, partner: str, raw: Any, temporary: Path, final: Path, relative: str) -> None:
        self.partner = partner
        self.raw = raw
        self.temporary = temporary
        self.final = final
        self.relative = relative  # below the partner's folder, '/'-separated
        self.size = 0
        self.replaces = 0  # size of the committed file this one replaces (already counted)
        self.append = False  # FXF_APPEND: every write goes to the end
        self.failed: str | None = None

    def fileno(self) -> int:
        return int(self.raw.fileno())

    def flush(self) -> None:
        self.raw.flush()


class SftpIntakeServer:
    """A ``BackgroundService`` (see ``fastlims.runtime``) serving the partners' pool folders."""

    name = "sftp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        host_key_path: Path,
        pool_root: Path,
        incoming_root: Path,
        partners: PartnerLookup,
        on_file: FileCommitted,
        max_file_bytes: int,
        login_timeout_s: float = 30.0,
        throttle: LoginThrottle | None = None,
        stored_usage: StoredUsage | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.host_key_path = host_key_path
        self.pool_root = pool_root
        self.incoming_root = incoming_root
        self.partners = partners
        self.on_file = on_file
        self.max_file_bytes = max_file_bytes
        self.login_timeout_s = login_timeout_s
        self.throttle = throttle or LoginThrottle()
        self.stored_usage = stored_usage
        self.stats = SftpStats()
        self.port: int | None = None
        self._server: asyncssh.SSHAcceptor | None = None
        self._active: dict[str, set[_Upload]] = {}
        self._committed_bytes: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()

    # --- BackgroundService

    async def start(self) -> None:
        key = await asyncio.to_thread(ensure_host_key, self.host_key_path)
        self.pool_root.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers()
        self._server = await asyncssh.create_server(
            lambda: _PartnerSSHServer(self),
            self.host,
            self.requested_port,
            server_host_keys=[key],
            sftp_factory=lambda chan: _PartnerSFTPServer(chan, self),
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_pty=False,
            login_timeout=self.login_timeout_s,
            keepalive_interval=30,
            keepalive_count_max=4,
        )
        sockets = self._server.sockets
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.requested_port
        log.info("sftp listening", extra={"host": self.host, "port": self.port, "host_key": key.get_fingerprint()})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def wait_for_events(self) -> None:
        """Wait until every committed file's event has been handled (tests, benchmarks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def host_key_fingerprint(self) -> str:
        return ensure_host_key(self.host_key_path).get_fingerprint()

    def uploads_in_flight(self) -> int:
        return sum(len(uploads) for uploads in self._active.values())

    # --- partner folders, quotas

    def partner_root(self, partner: str) -> Path:
        root = self.pool_root / partner
        root.mkdir(parents=True, exist_ok=True)
        return root

    def incoming(self, partner: str) -> Path:
        folder = self.incoming_root / partner
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _remove_leftovers(self) -> None:
        """Temporary files of uploads that were in flight when the process stopped are incomplete."""
        if self.incoming_root.exists():
            for leftover in self.incoming_root.rglob("*.part"):
                leftover.unlink(missing_ok=True)
                log.info("removed an incomplete upload left by a stop", extra={"file": leftover.name})

    def refresh_usage(self, partner: str) -> None:
        """Recount the partner's committed bytes (blocking: call it in a worker thread)."""
        total = self.stored_usage(partner) if self.stored_usage is not None else 0
        for directory, _, names in os.walk(self.pool_root / partner):
            for name in names:
                with contextlib.suppress(OSError):  # removed meanwhile
                    total += os.lstat(os.path.join(directory, name)).st_size
        self._committed_bytes[partner] = total

    def usage(self, partner: str) -> int:
        # An upload that replaces a committed file counts only what it adds to it.
        in_flight = sum(max(0, u.size - u.replaces) for u in self._active.get(partner, ()))
        return self._committed_bytes.get(partner, 0) + in_flight

    def track(self, upload: _Upload) -> None:
        self._active.setdefault(upload.partner, set()).add(upload)

    def untrack(self, upload: _Upload) -> None:
        self._active.get(upload.partner, set()).discard(upload)

    def committed(self, upload: _Upload, replaced_bytes: int) -> None:
        self.stats.committed += 1
        self._committed_bytes[upload.partner] = (
            self._committed_bytes.get(upload.partner, 0) + upload.size - replaced_bytes
        )
        key = f"pool/{upload.partner}/{upload.relative}"
        self.dispatch(upload.partner, key, upload.final)

    def dispatch(self, partner: str, key: str, path: Path) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(partner, key, path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, partner: str, key: str, path: Path) -> None:
        try:
            await self.on_file(partner, key, path)
        except Exception:  # noqa: BLE001 - the folder watcher or the start-up scan retries it
            log.exception("handling an uploaded file failed", extra={"partner": partner, "path": key})


class _PartnerSSHServer(asyncssh.SSHServer):
    def __init__(self, owner: SftpIntakeServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None
        self._user: str | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        peer = conn.get_extra_info("peername")
        self._address: str | None = str(peer[0]) if peer else None
        self._authenticated = False
        self._locked = False

    def connection_lost(self, exc: Exception | None) -> None:
        # A connection that asked to log in and ended without succeeding is one failed login.
        if self._user is not None and not self._authenticated and not self._locked:
            self._owner.throttle.failed(self._user, self._address)
            self._owner.stats.refused_logins += 1

    async def begin_auth(self, username: str) -> bool:
        self._user = username
        wait = self._owner.throttle.retry_after(username, self._address)
        if wait is not None and self._conn is not None:
            # No keys are set: every key is refused, the right one too, until the lock ends.
            self._locked = True
            self._owner.stats.refused_logins += 1
            self._conn.send_auth_banner(wait_message(wait) + "\r\n")
            log.warning("sftp login refused: locked", extra={"partner": username, "retry_after_s": wait})
            return True
        found = await asyncio.to_thread(self._owner.partners, username)
        if found is not None and found[0].strip() and self._conn is not None:  # no keys: no SFTP for it
            keys, _quota = found
            try:
                self._conn.set_authorized_keys(asyncssh.import_authorized_keys(keys))
            except (asyncssh.KeyImportError, ValueError):
                log.error("partner has unreadable keys", extra={"partner": username})
        # Unknown partners go through the same public-key exchange, which then fails: the
        # answer does not tell whether the user exists.
        return True

    def auth_completed(self) -> None:
        self._authenticated = True
        if self._user is not None:
            self._owner.throttle.succeeded(self._user)
        self._owner.stats.logins += 1
        log.info("sftp login", extra={"partner": self._user})

    def public_key_auth_supported(self) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False


def _called_from_session_cleanup() -> bool:
    """True when asyncssh closes a handle because the session ended (client gone), not because
    the client asked for it (the caller is then ``_process_close``)."""
    frame = sys._getframe(2)
    for _ in range(6):
        if frame is None:
            return False
        name = frame.f_code.co_name
        if name == "_cleanup":
            return True
        if name == "_process_close":
            return False
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _escapes(path: bytes) -> bool:
    """True when ``..`` parts climb above the start of ``path`` (asyncssh would clamp them at the
    chroot; they are refused instead, so a client learns that it cannot leave its folder)."""
    depth = 0
    for part in path.replace(b"\\", b"/").split(b"/"):
        if part in (b"", b"."):
            continue
        depth = depth - 1 if part == b".." else depth + 1
        if depth < 0:
            return True
    return False


def _write_at(descriptor: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(descriptor, view, offset)
        view, offset = view[written:], offset + written


def _commit(upload: _Upload) -> int:
    """Rename a complete upload into place; the size of the file it replaced (blocking)."""
    if not upload.final.parent.is_dir():
        upload.temporary.unlink(missing_ok=True)
        raise SFTPNoSuchFile(f"the folder of {upload.relative} was removed during the upload")
    replaced = upload.final.stat().st_size if upload.final.exists() else 0
    os.replace(upload.temporary, upload.final)
    return replaced


class _PartnerSFTPServer(asyncssh.SFTPServer):
    def __init__(self, chan: asyncssh.SSHServerChannel, owner: SftpIntakeServer) -> None:
        self._owner = owner
        self._partner = str(chan.get_extra_info("username"))
        root = owner.partner_root(self._partner)
        super().__init__(chan, chroot=bytes(root))
        self._root_bytes = os.path.realpath(bytes(root))
        self._exited = False
        self._quota = 0  # read at each upload's open (in a worker thread): a new quota counts at once
        owner.stats.sessions_open += 1

    # --- paths

    def map_path(self, path: bytes) -> bytes:
        if _escapes(path):
            raise SFTPPermissionDenied("'..' may not lead above your folder: you can only reach your own files")
        local = super().map_path(path)
        real = os.path.realpath(local)
        if real != self._root_bytes and not real.startswith(self._root_bytes + b"/"):
            raise SFTPPermissionDenied("this path leads outside your folder")
        return local

    def realpath(self, path: bytes) -> bytes:  # type: ignore[override]
        # 'cd ..' is resolved here (clamped at '/'), so navigation works without '..' reaching map_path.
        normal = posixpath.normpath(posixpath.join(b"/", path))
        result = super().realpath(normal)
        assert isinstance(result, bytes)
        return result

    async def scandir(self, path: bytes) -> AsyncIterator[SFTPName]:  # type: ignore[override]
        """A folder's entries, with ``.`` and ``..``; the ``..`` of the top folder is the top folder
        itself (as in a chroot), so a partner can list its own folder (``ls``), which asyncssh's
        ``..`` would refuse as leaving it."""
        folder = posixpath.normpath(posixpath.join(b"/", path))
        for name, target in ((b".", folder), (b"..", posixpath.dirname(folder))):
            yield SFTPName(name, attrs=await self.convert_attrs(self.lstat(target)))
        with os.scandir(self.map_path(path)) as entries:
            for entry in entries:
                yield SFTPName(os.fsencode(entry.name), attrs=SFTPAttrs.from_local(entry.stat(follow_symlinks=False)))

    def _relative(self, local: bytes) -> str:
        return os.path.relpath(local, self._root_bytes).decode("utf-8", "replace").replace(os.sep, "/")

    # --- files

    def open(self, path: bytes, pflags: int, attrs: SFTPAttrs) -> object:
        if not pflags & (FXF_WRITE | FXF_APPEND | FXF_CREAT | FXF_TRUNC):
            return asyncio.to_thread(asyncssh.SFTPServer.open, self, path, pflags, attrs)
        local = self.map_path(path)
        return self._open_upload(local, pflags)

    async def _open_upload(self, local: bytes, pflags: int) -> _Upload:
        final = Path(os.fsdecode(local))
        relative = self._relative(local)
        found = await asyncio.to_thread(self._owner.partners, self._partner)
        if found is None:
            raise SFTPPermissionDenied(f"partner {self._partner} is disabled")
        self._quota = found[1]
        await asyncio.to_thread(self._owner.refresh_usage, self._partner)
        upload = await asyncio.to_thread(self._start_upload, final, relative, pflags)
        self._owner.track(upload)
        return upload

    def _start_upload(self, final: Path, relative: str, pflags: int) -> _Upload:
        """The temporary file of an upload (blocking: runs in a worker thread)."""
        if final.is_symlink():
            raise SFTPPermissionDenied("symbolic links are not allowed")
        if final.is_dir():
            raise SFTPFailure(f"{relative} is a folder")
        if not final.parent.is_dir():
            raise SFTPNoSuchFile(f"folder /{posixpath.dirname(relative)} does not exist: mkdir it first")
        exists = final.exists()
        if pflags & FXF_EXCL and exists:
            raise asyncssh.SFTPFileAlreadyExists(f"{relative} already exists")
        temporary = self._owner.incoming(self._partner) / f"{uuid.uuid4().hex}.part"
        descriptor = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        raw = os.fdopen(descriptor, "r+b", buffering=0)
        upload = _Upload(self._partner, raw, temporary, final, relative)
        upload.append = bool(pflags & FXF_APPEND)
        if exists:
            upload.replaces = final.stat().st_size
        if exists and not pflags & FXF_TRUNC:
            # Resuming or appending: the new version starts as a copy of the committed one.
            with open(final, "rb") as current:
                shutil.copyfileobj(current, raw)
            upload.size = raw.tell()
        return upload

    def read(self, file_obj: object, offset: int, size: int) -> Any:
        return asyncio.to_thread(asyncssh.SFTPServer.read, self, file_obj, offset, size)

    def write(self, file_obj: object, offset: int, data: bytes) -> Any:
        if not isinstance(file_obj, _Upload):
            return asyncio.to_thread(asyncssh.SFTPServer.write, self, file_obj, offset, data)
        return self._write(file_obj, offset, data)

    async def _write(self, upload: _Upload, offset: int, data: bytes) -> int:
        if upload.failed:
            raise SFTPFailure(upload.failed)
        if upload.append:
            offset = upload.size  # FXF_APPEND: at the end, whatever offset the client sent
        end = offset + len(data)
        if end > self._owner.max_file_bytes:
            return self._refuse(
                upload,
                SFTPFailure(f"{upload.relative} exceeds the limit of {self._owner.max_file_bytes} bytes per file"),
            )
        grow = max(0, end - upload.size)
        if grow and self._owner.usage(self._partner) + grow > self._quota:
            return self._refuse(
                upload,
                SFTPQuotaExceeded(
                    f"the upload quota of {self._quota} bytes for partner {self._partner} is used up;"
                    " processed files leave the pool and free it"
                ),
            )
        upload.size = max(upload.size, end)  # reserved before the write: the quota sees it at once
        await asyncio.to_thread(_write_at, upload.fileno(), data, offset)
        return len(data)

    def _refuse(self, upload: _Upload, error: Exception) -> int:
        upload.failed = str(error)
        self._owner.stats.refused_writes += 1
        log.warning(
            "sftp write refused", extra={"partner": self._partner, "file": upload.relative, "reason": str(error)}
        )
        raise error

    def close(self, file_obj: object) -> Any:
        if not isinstance(file_obj, _Upload):
            return asyncio.to_thread(asyncssh.SFTPServer.close, self, file_obj)
        # Decided before any await: the frames tell who closes (the client, or the session's end).
        aborted = self._exited or _called_from_session_cleanup() or self.channel.is_closing()
        return self._close_upload(file_obj, aborted)

    async def _close_upload(self, upload: _Upload, aborted: bool) -> None:
        try:
            await asyncio.to_thread(upload.raw.close)
        finally:
            self._owner.untrack(upload)
        if aborted or upload.failed:
            await asyncio.to_thread(upload.temporary.unlink, True)
            self._owner.stats.aborted += 1
            log.warning(
                "sftp upload aborted; nothing is processed",
                extra={
                    "partner": self._partner,
                    "file": upload.relative,
                    "reason": upload.failed or "the client went away before closing the file",
                },
            )
            if upload.failed:
                raise SFTPFailure(upload.failed)
            return
        replaced = await asyncio.to_thread(_commit, upload)
        log.info(
            "sftp upload complete", extra={"partner": self._partner, "file": upload.relative, "bytes": upload.size}
        )
        self._owner.committed(upload, replaced)

    def fstat(self, file_obj: object) -> Any:
        if isinstance(file_obj, _Upload):
            return os.fstat(file_obj.fileno())
        return super().fstat(file_obj)

    def fsetstat(self, file_obj: object, attrs: SFTPAttrs) -> None:
        attrs = self._safe_attrs(attrs)
        if isinstance(file_obj, _Upload):
            asyncssh.sftp._setstat(file_obj.fileno(), attrs)  # type: ignore[attr-defined]
            return
        super().fsetstat(file_obj, attrs)

    def setstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        super().setstat(path, self._safe_attrs(attrs))

    def lsetstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        super().lsetstat(path, self._safe_attrs(attrs))

    @staticmethod
    def _safe_attrs(attrs: SFTPAttrs) -> SFTPAttrs:
        if attrs.size is not None:
            raise SFTPPermissionDenied("changing a file's size directly is not allowed; upload it again")
        attrs.uid = attrs.gid = None
        attrs.owner = attrs.group = None
        if attrs.permissions is not None:
            attrs.permissions &= 0o777
        return attrs

    # --- names

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise SFTPPermissionDenied("symbolic links are not allowed")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise SFTPPermissionDenied("hard links are not allowed")

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        super().rename(oldpath, newpath)
        self._renamed(newpath)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        super().posix_rename(oldpath, newpath)
        self._renamed(newpath)

    def _renamed(self, newpath: bytes) -> None:
        """A client that uploads to its own temporary name and renames it (WinSCP's ``.filepart``)
        completes the file with the rename."""
        local = self.map_path(newpath)
        final = Path(os.fsdecode(local))
        if final.is_file():
            self._owner.dispatch(self._partner, f"pool/{self._partner}/{self._relative(local)}", final)

    def exit(self) -> None:
        self._exited = True
        self._owner.stats.sessions_open -= 1

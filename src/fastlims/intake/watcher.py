"""The pool folder watcher: files put into a local pool by other means (a copy on the server, a
mounted share) become upload events once they have stopped changing.

A watched folder cannot tell when a writer has closed a file, so a file counts as complete when
its size and modification time have not changed for ``settle_s`` seconds. Writers that can
should copy to a temporary name (``.part``, ``.tmp``, a leading dot) and rename it: the rename is
atomic, and names outside the subject filter are never events.
At start-up the pool is scanned once, so files that arrived while FastLIMS was down count too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import Change, awatch

from fastlims.intake import layout

log = logging.getLogger(__name__)

FileSettled = Callable[[str], Awaitable[object]]


class PoolWatcher:
    """A ``BackgroundService`` (see ``fastlims.runtime``) watching ``<storage root>/pool``."""

    name = "pool-watcher"

    def __init__(
        self,
        *,
        storage_root: Path,
        on_file: FileSettled,
        settle_s: float = 1.0,
        scan_on_start: bool = True,
        rescan_s: float = 10.0,
    ) -> None:
        self.storage_root = storage_root
        self.pool = storage_root / layout.POOL
        self.on_file = on_file
        self.settle_s = settle_s
        self.scan_on_start = scan_on_start
        self.rescan_s = rescan_s
        self._pending: dict[Path, tuple[float, int, int]] = {}
        # What was last handed on, per file: a rescan only notes files that changed since.
        self._dispatched: dict[Path, tuple[int, int]] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self.dispatched = 0

    async def start(self) -> None:
        self.pool.mkdir(parents=True, exist_ok=True)
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._watch(), name="pool-watcher"),
            asyncio.create_task(self._settle(), name="pool-settle"),
        ]
        await asyncio.wait_for(self._ready.wait(), timeout=10)
        if self.scan_on_start:
            self._scan(self.pool)

    def _scan(self, folder: Path) -> None:
        for gone in [p for p in self._dispatched if not p.exists()]:
            del self._dispatched[gone]
        for path in sorted(folder.rglob("*")):
            if path in self._pending:
                continue  # already settling: keep its timer
            if path.is_file() and self._key(path) is not None:
                try:
                    info = path.stat()
                except OSError:
                    continue
                if self._dispatched.get(path) != (info.st_size, info.st_mtime_ns):
                    self._note(path)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _key(self, path: Path) -> str | None:
        try:
            relative = path.relative_to(self.storage_root)
        except ValueError:
            return None
        key = "/".join(relative.parts)
        return key if layout.in_subject_filter(key) else None

    def _note(self, path: Path) -> None:
        if path.is_dir():
            # Files written into a new folder before its watch was in place raise no event.
            self._scan(path)
            return
        if self._key(path) is None:
            return
        try:
            info = os.stat(path)
        except OSError:
            self._pending.pop(path, None)
            return
        if not os.path.isfile(path):
            return
        self._pending[path] = (time.monotonic(), info.st_size, info.st_mtime_ns)

    async def _watch(self) -> None:
        def wanted(change: Change, name: str) -> bool:
            # Folders count too (see _note); other names are dropped in _note.
            return change is not Change.deleted

        try:
            iterator = awatch(
                self.pool,
                watch_filter=wanted,
                stop_event=self._stop,
                step=50,
                debounce=200,
                recursive=True,
                yield_on_timeout=True,
                rust_timeout=200,
            )
            first = True
            async for changes in iterator:
                if first:
                    self._ready.set()
                    first = False
                for _change, name in changes:
                    self._note(Path(name))
        except Exception:  # noqa: BLE001 - logged; the start-up scan recovers missed files
            log.exception("pool watcher stopped")
        finally:
            self._ready.set()

    async def _settle(self) -> None:
        last_scan = time.monotonic()
        while not self._stop.is_set():
            await asyncio.sleep(min(0.2, self.settle_s / 2))
            now = time.monotonic()
            if now - last_scan >= self.rescan_s:
                # A safety net for events the operating system dropped (inotify queue overflow).
                last_scan = now
                self._scan(self.pool)
            for path, (seen, size, mtime) in list(self._pending.items()):
                if now - seen < self.settle_s:
                    continue
                try:
                    info = os.stat(path)
                except OSError:
                    self._pending.pop(path, None)  # moved away (processed, or renamed by its writer)
                    continue
                if (info.st_size, info.st_mtime_ns) != (size, mtime):
                    self._pending[path] = (now, info.st_size, info.st_mtime_ns)
                    continue
                self._pending.pop(path, None)
                key = self._key(path)
                if key is None:
                    continue
                self._dispatched[path] = (info.st_size, info.st_mtime_ns)
                self.dispatched += 1
                try:
                    await self.on_file(key)
                except Exception:  # noqa: BLE001 - one bad file must not stop the watcher
                    log.exception("handling a pool file failed", extra={"path": key})

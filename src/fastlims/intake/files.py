"""Writing files into the storage so that a step that runs again leaves each file once and whole
(the pipeline's outputs, a virtual run's results).

A file is written to a temporary name beside its target and renamed over it. The temporary name
is fixed (``.<name>.partial``), so a step killed between the write and the rename, when it runs
again, overwrites and renames the same temporary file: nothing is left behind. On blob stores a
put is already atomic (an object appears whole or not at all), so the object is put directly.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

from fastlims.intake.storage import BlobStorage

PARTIAL_SUFFIX = ".partial"


def partial_key(key: str) -> str:
    folder, name = posixpath.split(key)
    return posixpath.join(folder, f".{name}{PARTIAL_SUFFIX}")


def put_atomic(storage: BlobStorage, key: str, data: bytes) -> None:
    if storage.local_root is None:
        storage.put(key, data)
        return
    temporary = partial_key(key)
    storage.put(temporary, data)
    storage.move(temporary, key)


def put_file_atomic(storage: BlobStorage, key: str, path: Path) -> None:
    """:func:`put_atomic` of a local file, streamed from disk (a run's results are not read into memory)."""
    if storage.local_root is None:
        storage.put(key, path)
        return
    temporary = partial_key(key)
    storage.put(temporary, path)
    storage.move(temporary, key)


def put_text(storage: BlobStorage, key: str, text: str) -> None:
    put_atomic(storage, key, text.encode("utf-8"))


def put_json(storage: BlobStorage, key: str, document: Any) -> None:
    put_text(storage, key, json.dumps(document, indent=2, sort_keys=False) + "\n")


def get_json(storage: BlobStorage, key: str) -> Any:
    return json.loads(storage.get(key))

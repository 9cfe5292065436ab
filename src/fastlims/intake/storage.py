"""Blob storage: one small interface over obstore for a local folder, Azure Blob and S3.

``open_storage`` picks the backend from ``FASTLIMS_STORAGE_URL``: a plain path or ``file://`` URL
(the default, a folder in the data dir), ``az://container/prefix`` (also ``azure://``, ``abfs://``,
``https://<account>.blob.core.windows.net/<container>/<prefix>``) or ``s3://bucket/prefix``.
Keys are ``/``-separated and relative to the URL's root; the layout is in :mod:`.layout`.

All methods are synchronous (obstore releases the GIL); async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import AzureStore, LocalStore, S3Store

from fastlims.intake.layout import normalise_key

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # noqa: S105


class StorageError(RuntimeError):
    """The storage could not be opened or an operation on it failed; says which and where."""


@dataclass(frozen=True)
class StoredFile:
    key: str
    size: int
    etag: str | None
    last_modified: datetime

    @property
    def version(self) -> str:
        """What identifies this content at this key (the ETag, or size and time without one)."""
        if self.etag:
            return self.etag.strip('"')
        return f"{self.size}:{self.last_modified.timestamp():.6f}"


@dataclass(frozen=True)
class StorageOptions:
    """Credentials and endpoints beside the URL (never logged)."""

    azure_account: str | None = None
    azure_key: str | None = None
    azure_sas: str | None = None
    endpoint: str | None = None
    allow_http: bool = False


class BlobStorage:
    """The storage port: put, get, head, list, move, delete, and a local view for validation."""

    def __init__(
        self, store: Any, *, url: str, kind: str, container: str | None, prefix: str, local_root: Path | None
    ) -> None:
        self._store = store
        self.url = url
        self.kind = kind  # "local" | "azure" | "s3"
        self.container = container
        self.prefix = prefix  # inside the container/bucket, without slashes at the ends
        self.local_root = local_root

    def __repr__(self) -> str:
        return f"BlobStorage({self.kind}, {self.redacted_url})"

    @property
    def redacted_url(self) -> str:
        parsed = urlparse(self.url)
        return parsed._replace(query="", params="", fragment="").geturl() if parsed.scheme else self.url

    # --- reads
    def head(self, key: str) -> StoredFile | None:
        key = normalise_key(key)
        try:
            meta = obstore.head(self._store, key)
        except (NotFoundError, FileNotFoundError):
            return None
        return _stored(meta)

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def get(self, key: str) -> bytes:
        try:
            return bytes(obstore.get(self._store, normalise_key(key)).bytes())
        except (NotFoundError, FileNotFoundError):
            raise FileNotFoundError(f"{key!r} is not in {self.redacted_url}") from None

    def list(self, prefix: str = "") -> list[StoredFile]:
        """Every file under ``prefix`` (recursive), sorted by key."""
        prefix = normalise_key(prefix)
        found: list[StoredFile] = []
        try:
            for chunk in obstore.list(self._store, prefix or None):
                found.extend(_stored(meta) for meta in chunk)
        except (NotFoundError, FileNotFoundError):
            return []
        return sorted(found, key=lambda f: f.key)

    def local_path(self, key: str) -> Path | None:
        """The file's path when the storage is a local folder (no copy needed), else None.
        Raises StorageError for a key with a ``..`` part: no key may name a path outside the root."""
        if self.local_root is None:
            return None
        key = normalise_key(key)
        if ".." in key.split("/"):
            raise StorageError(f"storage key {key!r} has a '..' part: keys may not leave {self.redacted_url}")
        return self.local_root.joinpath(*key.split("/"))

    @contextmanager
    def materialised(self, keys: Sequence[str]) -> Iterator[dict[str, Path]]:
        """Local paths for ``keys`` for the duration of the block: the files themselves on a
        local folder, temporary downloads otherwise (removed afterwards)."""
        if self.local_root is not None:
            yield {key: self.local_path(key) for key in keys}  # type: ignore[misc]
            return
        directory = Path(tempfile.mkdtemp(prefix="fastlims-intake-"))
        try:
            paths: dict[str, Path] = {}
            for index, key in enumerate(keys):
                target = directory / f"{index:04d}-{Path(key).name}"
                self.download(key, target)
                paths[key] = target
            yield paths
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def download(self, key: str, target: Path) -> None:
        try:
            result = obstore.get(self._store, normalise_key(key))
        except (NotFoundError, FileNotFoundError):
            raise FileNotFoundError(f"{key!r} is not in {self.redacted_url}") from None
        with open(target, "wb") as out:
            for chunk in result:
                out.write(chunk)

    # --- writes
    def put(self, key: str, data: bytes | Path | IO[bytes]) -> StoredFile:
        key = normalise_key(key)
        obstore.put(self._store, key, data)
        stored = self.head(key)
        if stored is None:  # pragma: no cover - a store that loses a write just made
            raise StorageError(f"{key!r} vanished right after it was written to {self.redacted_url}")
        return stored

    def put_json(self, key: str, text: str) -> StoredFile:
        return self.put(key, text.encode("utf-8"))

    def move(self, source: str, target: str) -> None:
        """Rename on a local folder; copy then delete on blob stores (obstore's rename). Raises
        ``FileNotFoundError`` when ``source`` is gone (another process moved it first)."""
        source, target = normalise_key(source), normalise_key(target)
        if self.local_root is not None:
            destination = self.local_path(target)
            assert destination is not None
            destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            obstore.rename(self._store, source, target, overwrite=True)
        except NotFoundError:
            raise FileNotFoundError(f"{source!r} is not in {self.redacted_url}") from None

    def delete(self, key: str) -> None:
        with suppress(NotFoundError, FileNotFoundError):
            obstore.delete(self._store, normalise_key(key))

    def ensure_folder(self, prefix: str) -> None:
        """Create an empty folder on a local store (blob stores have no folders: a no-op)."""
        path = self.local_path(prefix)
        if path is not None:
            path.mkdir(parents=True, exist_ok=True)


def _stored(meta: Any) -> StoredFile:
    return StoredFile(
        key=str(meta["path"]),
        size=int(meta["size"]),
        etag=meta.get("e_tag"),
        last_modified=meta["last_modified"],
    )


def default_storage_url(data_dir: Path) -> str:
    return str((data_dir / "storage").resolve())


def open_storage(url: str, options: StorageOptions | None = None) -> BlobStorage:
    """Open the storage named by ``url``; raises ``StorageError`` naming what is wrong."""
    options = options or StorageOptions()
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and url[1:3] == ":\\"):
        root = Path(unquote(parsed.path) if scheme == "file" else url).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        return BlobStorage(
            LocalStore(prefix=root, mkdir=True),
            url=url,
            kind="local",
            container=None,
            prefix="",
            local_root=root,
        )
    if scheme in ("az", "azure", "abfs", "abfss", "adl") or (
        scheme in ("http", "https") and ".blob." in (parsed.hostname or "")
    ):
        return _open_azure(url, parsed, options)
    if scheme in ("http", "https") and options.endpoint is None and parsed.path.count("/") >= 2:
        # http://127.0.0.1:10000/devstoreaccount1/container/prefix (Azurite's path-style URL)
        return _open_azure(url, parsed, options)
    if scheme == "s3":
        config: dict[str, Any] = {}
        if options.endpoint:
            config["endpoint"] = options.endpoint
        client: Any = {"allow_http": True} if options.allow_http else None  # obstore's ClientConfig
        store = S3Store.from_url(url, client_options=client, **config)
        return BlobStorage(
            store,
            url=url,
            kind="s3",
            container=parsed.hostname,
            prefix=parsed.path.strip("/"),
            local_root=None,
        )
    raise StorageError(
        f"FASTLIMS_STORAGE_URL scheme {scheme!r} is not supported: use a folder path, file://, az://,"
        " https://<account>.blob.core.windows.net/<container> or s3://"
    )


def _open_azure(url: str, parsed: Any, options: StorageOptions) -> BlobStorage:
    scheme = parsed.scheme.lower()
    account: str | None
    endpoint: str | None
    if scheme in ("http", "https"):
        segments = [s for s in parsed.path.split("/") if s]
        host = parsed.hostname or ""
        if ".blob." in host:
            account = host.split(".", 1)[0]
            container, prefix_parts = segments[0], segments[1:]
            endpoint = f"{scheme}://{parsed.netloc}"
        else:  # path style (Azurite): /<account>/<container>/<prefix>
            if len(segments) < 2:
                raise StorageError(f"Azure URL {url!r} needs /<account>/<container> in its path")
            account, container, prefix_parts = segments[0], segments[1], segments[2:]
            endpoint = f"{scheme}://{parsed.netloc}/{account}"
        account = options.azure_account or account
        endpoint = options.endpoint or endpoint
    else:
        if "@" in parsed.netloc:  # abfs://<container>@<account>.dfs.core.windows.net/<prefix>
            container, host = parsed.netloc.split("@", 1)
            account = options.azure_account or host.split(".", 1)[0]
        else:
            container = parsed.netloc
            account = options.azure_account
        prefix_parts = [s for s in parsed.path.split("/") if s]
        endpoint = options.endpoint
    if not container:
        raise StorageError(f"Azure URL {url!r} names no container")
    config: dict[str, Any] = {}
    if account:
        config["account_name"] = account
    if options.azure_key:
        config["account_key"] = options.azure_key
    elif options.azure_sas:
        config["sas_key"] = options.azure_sas.lstrip("?")
    elif account == AZURITE_ACCOUNT:
        config["account_key"] = AZURITE_KEY
    if endpoint:
        config["endpoint"] = endpoint
    if not account:
        raise StorageError(f"Azure storage {url!r}: set FASTLIMS_STORAGE_AZURE_ACCOUNT (and a key or SAS token)")
    allow_http = options.allow_http or (endpoint or "").startswith("http://")
    prefix = "/".join(prefix_parts)
    store = AzureStore(
        container,
        prefix=prefix or None,
        client_options={"allow_http": True} if allow_http else None,
        **config,
    )
    return BlobStorage(store, url=url, kind="azure", container=container, prefix=prefix, local_root=None)

"""One storage contract, run against the local folder and against Azure Blob (Azurite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fastlims.intake.storage import BlobStorage, StorageError, StorageOptions, open_storage
from tests.integration.intake.azurite import Azurite


@pytest.fixture(params=["local", "azurite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStorage]:
    if request.param == "local":
        yield open_storage(str(tmp_path / "storage"))
        return
    container = request.getfixturevalue("azure_container")
    azurite: Azurite = request.getfixturevalue("azurite")
    yield open_storage(
        f"az://{container}/site-a", StorageOptions(azure_account="devstoreaccount1", endpoint=azurite.endpoint)
    )


def test_put_head_get_list(storage: BlobStorage) -> None:
    first = storage.put("pool/u1/cell.fmu", b"model bytes")
    assert (first.key, first.size) == ("pool/u1/cell.fmu", 11)
    assert storage.head("pool/u1/cell.fmu") == first
    assert storage.head("pool/u1/missing.fmu") is None
    assert storage.get("pool/u1/cell.fmu") == b"model bytes"
    storage.put("pool/u2/inter_connection.json", b"{}")
    storage.put("pool-other/x", b"x")
    assert [f.key for f in storage.list("pool")] == ["pool/u1/cell.fmu", "pool/u2/inter_connection.json"]
    assert storage.list("nothing-here") == []
    with pytest.raises(FileNotFoundError):
        storage.get("pool/u1/missing.fmu")


def test_a_new_version_has_a_new_version_tag(storage: BlobStorage) -> None:
    one = storage.put("pool/u/cell.fmu", b"one").version
    two = storage.put("pool/u/cell.fmu", b"two, longer").version
    assert one != two and storage.head("pool/u/cell.fmu").version == two  # type: ignore[union-attr]


def test_move_delete_and_local_view(storage: BlobStorage, tmp_path: Path) -> None:
    source = tmp_path / "upload.bin"
    source.write_bytes(b"\x00" * 100_000)
    storage.put("pool/u/big.fmu", source)
    storage.move("pool/u/big.fmu", "fastest_simulation_20270301_u/fastest-models/fmus/big.fmu")
    assert storage.head("pool/u/big.fmu") is None
    assert storage.head("fastest_simulation_20270301_u/fastest-models/fmus/big.fmu").size == 100_000  # type: ignore[union-attr]
    with storage.materialised(["fastest_simulation_20270301_u/fastest-models/fmus/big.fmu"]) as local:
        [path] = local.values()
        assert path.read_bytes() == b"\x00" * 100_000
    if storage.local_root is None:
        assert not path.exists()  # the temporary download is gone
    storage.delete("fastest_simulation_20270301_u/fastest-models/fmus/big.fmu")
    storage.delete("never/was/there")
    assert storage.list("fastest_simulation_20270301_u") == []


def test_unknown_scheme_is_refused_with_the_setting_named() -> None:
    with pytest.raises(StorageError, match="FASTLIMS_STORAGE_URL"):
        open_storage("ftp://somewhere/pool")

"""A folder on the import path that holds the data folder (the working folder ``python -m`` puts
there) is left out of the child's import path instead of exposing the data folder."""

from __future__ import annotations

from pathlib import Path

from fastlims.benches.sandbox.confine import exposes


def test_a_folder_holding_the_data_folder_exposes_it_and_a_sibling_does_not(tmp_path: Path) -> None:
    data = tmp_path / "lab" / "fastlims-data"
    data.mkdir(parents=True)
    (tmp_path / "lab-src").mkdir()
    assert exposes(str(tmp_path / "lab"), [str(data)])
    assert exposes(str(data), [str(data)])
    assert not exposes(str(tmp_path / "lab-src"), [str(data)])  # a prefix of the name is not a parent
    assert not exposes(str(tmp_path / "lab"), [])

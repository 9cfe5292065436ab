"""Test FMUs for the co-simulation master, built once per session under the names a system uses
(``Cycler.fmu``, ``Cell.fmu``, ...): one folder per FMI version."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from fastlims.peers.fmus import build_fmu

BuildFmu = Callable[[str, str, str], Path]


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> BuildFmu:
    """``build(model, fmi_version, name)`` -> path of ``<name>.fmu`` (built once per session)."""
    cache = tmp_path_factory.mktemp("cosim-fmu-cache")
    out = tmp_path_factory.mktemp("cosim-fmus")
    lock = threading.Lock()

    def get(model: str, fmi_version: str, name: str) -> Path:
        folder = out / f"fmi{fmi_version[0]}" / model
        path = folder / f"{name}.fmu"
        with lock:
            if not path.is_file():
                build_fmu(model, fmi_version, folder, name=name, cache_dir=cache)
        return path

    return get

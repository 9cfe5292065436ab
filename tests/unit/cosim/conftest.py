"""Test FMUs for the co-simulation master, built once per session under the names a system uses
(``Cycler.fmu``, ``Cell.fmu``, ...): one folder per FMI version (and per set of start values)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import pytest

from fastlims.peers.fmus import build_fmu


class BuildFmu(Protocol):
    def __call__(
        self, model: str, fmi_version: str, name: str, start_values: Mapping[str, float] | None = None
    ) -> Path: ...


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> BuildFmu:
    """``build(model, fmi_version, name, start_values=None)`` -> path of ``<name>.fmu`` (built once per
    session; ``start_values`` as a Digital Twin chooses them, see ``build_fmu``)."""
    cache = tmp_path_factory.mktemp("cosim-fmu-cache")
    out = tmp_path_factory.mktemp("cosim-fmus")
    lock = threading.Lock()

    def get(model: str, fmi_version: str, name: str, start_values: Mapping[str, float] | None = None) -> Path:
        folder = out / f"fmi{fmi_version[0]}" / model
        if start_values:
            folder /= hashlib.sha256(json.dumps(dict(start_values), sort_keys=True).encode()).hexdigest()[:16]
        path = folder / f"{name}.fmu"
        with lock:
            if not path.is_file():
                build_fmu(model, fmi_version, folder, name=name, cache_dir=cache, start_values=start_values)
        return path

    return get

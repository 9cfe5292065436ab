"""Every test FMU built once per session (in parallel) into a session cache."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fastlims.peers.fmus import FMI_VERSIONS, available_models, build_fmu

BuiltFmus = dict[tuple[str, str], Path]


@pytest.fixture(scope="session")
def fmu_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fmu-cache")


@pytest.fixture(scope="session")
def built_fmus(tmp_path_factory: pytest.TempPathFactory, fmu_cache: Path) -> BuiltFmus:
    """(model, fmi_version) -> .fmu path for every model and version; gcc runs in parallel."""
    out = tmp_path_factory.mktemp("fmus")
    jobs = [(model, version) for model in available_models() for version in FMI_VERSIONS]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        paths = pool.map(lambda job: build_fmu(job[0], job[1], out, cache_dir=fmu_cache), jobs)
        return dict(zip(jobs, paths, strict=True))


@pytest.fixture(scope="session")
def fmu(built_fmus: BuiltFmus) -> Callable[[str, str], Path]:
    def get(model: str, fmi_version: str) -> Path:
        return built_fmus[(model, fmi_version)]

    return get

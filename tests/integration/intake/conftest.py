"""Fixtures for the intake tests: real FMUs, the intake of a test system, a running intake."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastlims.bootstrap import System
from fastlims.intake.service import Intake
from fastlims.peers.digital_twin import interconnection as reference_interconnection
from fastlims.peers.fmus import build_fmu
from tests.integration.intake.azurite import Azurite, start_azurite
from tests.integration.intake.helpers import LoopThread, ModelFiles, RunningIntake, start_intake
from tests.services import missing
from tests.unit.intake.fmu_factory import build_fmu as own_fmu
from tests.unit.intake.fmu_factory import interconnection


def _reference_set(out: Path, fmi_version: str) -> ModelFiles:
    """The reference battery cell and cycler (fastlims.peers.fmus), as a Digital Twin would send
    them: the connection and the UUT port roles of the reference peer."""
    return ModelFiles(
        build_fmu("battery_cell", fmi_version, out, name="battery_cell").read_bytes(),
        build_fmu("cycler", fmi_version, out, name="cycler").read_bytes(),
        json.dumps(reference_interconnection("battery_cell", "cycler"), indent=2).encode(),
    )


@pytest.fixture(scope="session")
def fmi2_set(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    return _reference_set(tmp_path_factory.mktemp("fmi2"), "2.0")


@pytest.fixture(scope="session")
def fmi3_set(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    return _reference_set(tmp_path_factory.mktemp("fmi3"), "3.0")


@pytest.fixture(scope="session")
def factory_set(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    """The tests' own small C models (fmu_factory): variables of every type, to damage at will."""
    out = tmp_path_factory.mktemp("factory")
    return ModelFiles(
        own_fmu("battery_cell", 2, out).read_bytes(), own_fmu("cycler", 2, out).read_bytes(), interconnection()
    )


@pytest.fixture
def intake(system: System) -> Intake:
    return system.intake


@pytest.fixture
def running_intake(system: System) -> Iterator[RunningIntake]:
    loop = LoopThread()
    running = start_intake(system, loop)
    try:
        yield running
    finally:
        loop.run(running.service.stop())
        running.system.close()
        loop.close()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite | None]:
    try:
        server = start_azurite()
    except Exception as exc:  # noqa: BLE001 - reported by the tests that need it
        print(f"Azurite could not start: {exc}")
        server = None
    yield server
    if server is not None:
        server.stop()


@pytest.fixture
def azure_container(azurite: Azurite | None) -> str:
    """A fresh container in Azurite for one test."""
    if azurite is None:
        missing("Azurite (npm package azurite; scripts/test.sh installs it)")
    assert azurite is not None
    name = f"lims{uuid.uuid4().hex[:12]}"
    azurite.create_container(name)
    return name

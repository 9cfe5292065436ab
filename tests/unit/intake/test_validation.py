"""The pure validation: real FMUs built with gcc, damaged every way the issue lists; each damage
gets its own clear reason naming the file (and the variable where there is one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastlims.intake.schemas import interconnection_json_schema
from fastlims.intake.validation import (
    Problem,
    check_fmu,
    check_interconnection,
    compatible,
    summary,
    validate_upload_set,
)
from tests.unit.intake.corruptions import FMU_CORRUPTIONS, INTERCONNECTION_FAULTS, Corruption, InterconnectionFault
from tests.unit.intake.fmu_factory import BATTERY_CELL, build_fmu, fmu_entries, interconnection


@pytest.fixture(scope="module")
def valid_set(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("valid")
    (out / "inter_connection.json").write_bytes(interconnection())
    return {
        "battery_cell.fmu": build_fmu("battery_cell", 2, out),
        "cycler.fmu": build_fmu("cycler", 2, out),
        "inter_connection.json": out / "inter_connection.json",
    }


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return fmu_entries(BATTERY_CELL, 2, tmp_path_factory.mktemp("work"))


@pytest.mark.parametrize("fmi_version", [2, 3])
def test_valid_fmi2_and_fmi3_sets_have_no_problems(fmi_version: int, tmp_path: Path) -> None:
    files = {
        name: build_fmu(name.removesuffix(".fmu"), fmi_version, tmp_path) for name in ("battery_cell.fmu", "cycler.fmu")
    }
    (tmp_path / "inter_connection.json").write_bytes(interconnection())
    files["inter_connection.json"] = tmp_path / "inter_connection.json"
    assert validate_upload_set(files) == []
    problems, interface = check_fmu("cycler.fmu", files["cycler.fmu"])
    assert problems == [] and interface is not None
    assert interface.variables["done"].type == "Boolean" and interface.variables["I"].causality == "output"


@pytest.mark.parametrize("corruption", FMU_CORRUPTIONS, ids=lambda c: c.name)
def test_each_damaged_fmu_gets_its_own_clear_reason(
    corruption: Corruption, entries: dict[str, bytes], valid_set: dict[str, Path], tmp_path: Path
) -> None:
    damaged = tmp_path / "battery_cell.fmu"
    damaged.write_bytes(corruption.damage(entries))
    problems = validate_upload_set({**valid_set, "battery_cell.fmu": damaged}, limits=corruption.limits)
    mine = [p for p in problems if p.code == corruption.code]
    assert mine, f"expected a {corruption.code!r} problem, got {problems}"
    assert any(corruption.fragment in p.message for p in mine), [p.message for p in mine]
    assert all(p.file == "battery_cell.fmu" for p in mine)
    if corruption.variable:
        assert any(p.variable == corruption.variable for p in mine)
    # Other problems may follow from the damage (the interconnection cannot see an unreadable FMU's
    # variables), but none blames a file that is fine.
    assert {p.file for p in problems} <= {"battery_cell.fmu", "inter_connection.json"}


@pytest.mark.parametrize("fault", INTERCONNECTION_FAULTS, ids=lambda f: f.name)
def test_each_interconnection_fault_gets_its_own_clear_reason(
    fault: InterconnectionFault, valid_set: dict[str, Path], tmp_path: Path
) -> None:
    document = tmp_path / "inter_connection.json"
    document.write_bytes(fault.document)
    problems = validate_upload_set({**valid_set, "inter_connection.json": document})
    assert [p.code for p in problems] == [fault.code], problems
    assert fault.fragment in problems[0].message
    assert problems[0].file == "inter_connection.json"
    assert problems[0].variable == fault.variable


def test_every_problem_is_reported_not_just_the_first(valid_set: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "bad.fmu").write_bytes(b"nonsense")
    document = tmp_path / "inter_connection.json"
    document.write_bytes(
        b'{"FMU_signal_connections": ['
        b'{"InSignalReference": "battery_cell/nope", "OutSignalReference": "cycler/I"},'
        b'{"InSignalReference": "battery_cell/I", "OutSignalReference": "cycler/done"},'
        b'{"InSignalReference": "ghost/x", "OutSignalReference": "cycler/V"}]}'
    )
    problems = validate_upload_set({**valid_set, "bad.fmu": tmp_path / "bad.fmu", "inter_connection.json": document})
    assert sorted(p.code for p in problems) == ["direction", "not-a-zip", "type", "unknown-fmu", "unknown-variable"]
    text = summary(problems)
    assert text.startswith("model upload rejected (5 problems): ")
    assert "bad.fmu: is not a zip archive" in text and "inter_connection.json (ghost/x)" in text


def test_a_set_without_fmu_or_interconnection_says_so(valid_set: dict[str, Path]) -> None:
    problems = validate_upload_set({"inter_connection.json": valid_set["inter_connection.json"]})
    assert problems[0].message == "contains no .fmu file"
    assert {p.code for p in problems[1:]} == {"unknown-fmu"}  # and each reference says which FMU is missing


def test_types_compatible_across_fmi_versions() -> None:
    assert compatible("Real", "Float64") and compatible("Float32", "Real")
    assert compatible("Int32", "Integer") and compatible("Enumeration", "Int64")
    assert not compatible("Boolean", "Real") and not compatible("String", "Float64")


def test_the_interconnection_schema_is_the_seeds_shape() -> None:
    schema = interconnection_json_schema()
    assert schema["required"] == ["FMU_signal_connections"]
    item = schema["$defs"]["SignalConnection"]
    assert set(item["required"]) == {"InSignalReference", "OutSignalReference"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("fuzz", numbered=True)
    (folder / "x.fmu").write_bytes(data)
    (folder / "inter_connection.json").write_bytes(data)
    problems = validate_upload_set(
        {"x.fmu": folder / "x.fmu", "inter_connection.json": folder / "inter_connection.json"}
    )
    assert problems and all(isinstance(p, Problem) for p in problems)
    # Each problem is a specific finding: none comes from the safety net that turns an exception
    # in a check into "could not be checked" (that would be a crash the net hid).
    assert not [p for p in problems if p.code == "unreadable"], problems
    missing = check_interconnection("inter_connection.json", folder / "missing.json", {})
    assert [p.code for p in missing] == ["unreadable"] and "FileNotFoundError" in missing[0].message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_bytes_of_a_valid_fmu_get_specific_problems(
    tmp_path_factory: pytest.TempPathFactory, valid_set: dict[str, Path], data: st.DataObject
) -> None:
    good = valid_set["cycler.fmu"].read_bytes()
    damaged = bytearray(good)
    for _ in range(data.draw(st.integers(1, 8), label="bytes changed")):
        damaged[data.draw(st.integers(0, len(good) - 1), label="at")] = data.draw(st.integers(0, 255), label="to")
    cut = data.draw(st.integers(len(good) // 2, len(good)), label="length")
    path = tmp_path_factory.mktemp("damaged", numbered=True) / "cycler.fmu"
    path.write_bytes(bytes(damaged[:cut]))
    problems, _interface = check_fmu("cycler.fmu", path)
    assert not [p for p in problems if p.code == "unreadable"], problems


def test_a_check_that_raises_is_reported_by_the_safety_net(
    monkeypatch: pytest.MonkeyPatch, valid_set: dict[str, Path]
) -> None:
    from fastlims.intake import interconnection, validation

    def broken(*args: object) -> object:
        raise RuntimeError("a bug in a check")

    monkeypatch.setattr(validation, "_check_fmu", broken)
    monkeypatch.setattr(interconnection, "_check_interconnection", broken)
    problems, interface = check_fmu("cycler.fmu", valid_set["cycler.fmu"])
    assert interface is None
    assert [(p.code, p.message) for p in problems] == [
        ("unreadable", "could not be checked: RuntimeError: a bug in a check")
    ]
    problems = check_interconnection("inter_connection.json", valid_set["inter_connection.json"], {})
    assert [(p.file, p.code) for p in problems] == [("inter_connection.json", "unreadable")]


@pytest.mark.parametrize("fmi_version", ["2.0", "3.0"])
def test_the_reference_fmus_of_the_peers_pass(fmi_version: str, tmp_path: Path) -> None:
    from fastlims.peers.fmus import build_fmu as reference_fmu

    files = {f"{m}.fmu": reference_fmu(m, fmi_version, tmp_path, name=m) for m in ("battery_cell", "cycler")}
    (tmp_path / "inter_connection.json").write_bytes(
        interconnection([{"InSignalReference": "battery_cell/I", "OutSignalReference": "cycler/current"}])
    )
    files["inter_connection.json"] = tmp_path / "inter_connection.json"
    assert validate_upload_set(files) == []

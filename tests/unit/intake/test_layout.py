"""Storage layout names, correlation of uploads to requests and the seed's subject filter."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastlims.intake import layout

U = "3f2a9c1e-8b7d-4e6f-a5b4-c3d2e1f0a9b8"


def test_simulation_folder_is_the_seeds_name_with_the_uuid() -> None:
    folder = layout.simulation_folder(U.upper(), date(2027, 3, 1))
    assert folder == f"fastest_simulation_20270301_{U}"
    assert layout.fmus_folder(folder) == f"{folder}/fastest-models/fmus"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (f"pool/{U}/cell.fmu", U),
        (f"pool/acme/{U}/cell.fmu", U),
        (f"pool/{U.upper()}/inter_connection.json", U),
        (f"pool/cell_{U}.fmu", U),
        (f"pool/acme/inter_connection-{U}.json", U),
        ("pool/acme/cell.fmu", None),
        (f"elsewhere/{U}/cell.fmu", None),
    ],
)
def test_correlation_by_folder_then_by_file_name(key: str, expected: str | None) -> None:
    assert layout.correlate(key) == expected


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        (f"cell_{U}.fmu", "cell.fmu"),
        (f"{U}-cell.fmu", "cell.fmu"),
        (f"a_{U}_b.fmu", "a_b.fmu"),
        (f"inter_connection_{U}.json", "inter_connection.json"),
        ("cell.fmu", "cell.fmu"),
    ],
)
def test_plain_name_drops_the_uuid(name: str, plain: str) -> None:
    assert layout.plain_name(name) == plain


@pytest.mark.parametrize(
    ("key", "counts"),
    [
        (f"pool/{U}/cell.fmu", True),
        (f"pool/{U}/CELL.FMU", True),
        (f"pool/{U}/inter_connection.json", True),
        (f"pool/inter_connection_{U}.json", True),
        (f"pool/{U}/interconnection.json", False),
        (f"pool/{U}/readme.txt", False),
        (f"pool/{U}/cell.fmu.part", False),
        (f"pool/{U}/.fmu", False),
        (f"pool/../{U}/cell.fmu", False),
        (f"quarantine/{U}/cell.fmu", False),
        (f"fastest_simulation_20270301_{U}/fastest-models/fmus/cell.fmu", False),
    ],
)
def test_subject_filter(key: str, counts: bool) -> None:
    assert layout.in_subject_filter(key) is counts


def test_completion_needs_an_fmu_an_interconnection_and_every_named_fmu() -> None:
    keys = [f"pool/{U}/inter_connection.json", f"pool/{U}/cycler.fmu"]
    assert layout.set_status(keys).complete
    waiting = layout.set_status(keys, {"cycler", "battery_cell"})
    assert not waiting.complete and waiting.missing == ["battery_cell.fmu (named in inter_connection.json)"]
    assert layout.set_status(keys[:1]).missing == ["at least one .fmu file"]
    assert layout.fmus_named_in(
        b'{"FMU_signal_connections": [{"InSignalReference": "a/x", "OutSignalReference": "b/y"}]}'
    ) == {"a", "b"}
    assert layout.fmus_named_in(b"not json") is None


@given(st.text(max_size=60))
def test_correlation_never_raises_and_finds_only_uuids(name: str) -> None:
    found = layout.correlate(f"pool/{name}")
    assert found is None or layout.is_uuid(found)

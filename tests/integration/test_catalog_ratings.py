"""UUT ratings: the seed values, the API, ``uut_ratings`` and their import/export validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from fastlims.bootstrap import System
from fastlims.catalog import service
from fastlims.catalog.models import UUT
from fastlims.catalog.schemas import RATING_FIELDS
from fastlims.catalog.transfer import CatalogFileError, export_file, import_file
from tests.conftest import Actor

# The contract's UutRatings fields (fastlims.procedures.ratings), in order.
CONTRACT_FIELDS = [
    "code",
    "chemistry",
    "format",
    "series_count",
    "parallel_count",
    "nominal_capacity_Ah",
    "nominal_voltage_V",
    "min_voltage_V",
    "max_voltage_V",
    "max_charge_current_A",
    "max_discharge_current_A",
    "max_pulse_current_A",
    "min_temperature_C",
    "max_temperature_C",
]
GOOD = {
    "chemistry": "LFP/graphite",
    "format": "cell",
    "series_count": 1,
    "parallel_count": 1,
    "nominal_capacity_Ah": 3.0,
    "nominal_voltage_V": 3.2,
    "min_voltage_V": 2.5,
    "max_voltage_V": 3.65,
    "max_charge_current_A": 3.0,
    "max_discharge_current_A": 9.0,
    "max_pulse_current_A": 15.0,
    "min_temperature_C": -20.0,
    "max_temperature_C": 60.0,
}


def stored_ratings(system: System) -> dict[str, dict[str, Any]]:
    with system.database.transaction() as session:
        return {u.code: {name: getattr(u, name) for name in RATING_FIELDS} for u in session.scalars(select(UUT))}


def test_the_api_lists_plausible_ratings_for_the_six_seed_uuts(client: TestClient, requester: Actor) -> None:
    response = client.get("/api/v1/uuts", headers=requester.headers)
    assert response.status_code == 200, response.text
    uuts = {u["code"]: u for u in response.json()}
    assert len(uuts) == 6
    for code, uut in uuts.items():
        assert list(uut) == ["code", "description", *RATING_FIELDS], code
        assert uut["format"] == code.rsplit(" - ", 1)[1].lower()
        assert uut["min_voltage_V"] < uut["nominal_voltage_V"] < uut["max_voltage_V"], code
        assert uut["max_pulse_current_A"] >= uut["max_discharge_current_A"] > 0, code
        assert uut["min_temperature_C"] < 25 < uut["max_temperature_C"], code  # room temperature is allowed
    for generation in ("Gen3b", "Gen4"):
        cell = uuts[f"{generation} - Cell"]
        assert (cell["series_count"], cell["parallel_count"]) == (1, 1)
        for level in ("Module", "Pack"):
            built = uuts[f"{generation} - {level}"]
            assert built["chemistry"] == cell["chemistry"]
            for name in ("min_voltage_V", "nominal_voltage_V", "max_voltage_V"):
                assert built[name] == pytest.approx(cell[name] * built["series_count"]), (level, name)
            for name in ("nominal_capacity_Ah", "max_charge_current_A", "max_discharge_current_A"):
                assert built[name] == pytest.approx(cell[name] * built["parallel_count"]), (level, name)
    gen3b, gen4 = uuts["Gen3b - Cell"], uuts["Gen4 - Cell"]
    assert (gen3b["min_voltage_V"], gen3b["max_voltage_V"]) == (2.5, 4.2)
    assert "graphite" in gen3b["chemistry"] and "Li-metal" in gen4["chemistry"]
    # Gen4 (solid-state, lithium metal): narrower current (in C) and temperature windows.
    for name in ("max_charge_current_A", "max_discharge_current_A", "max_pulse_current_A"):
        assert gen4[name] / gen4["nominal_capacity_Ah"] < gen3b[name] / gen3b["nominal_capacity_Ah"], name
    assert (
        gen4["max_temperature_C"] - gen4["min_temperature_C"] < gen3b["max_temperature_C"] - gen3b["min_temperature_C"]
    )


def test_uut_ratings_gives_the_contract_fields(system: System) -> None:
    with system.database.transaction() as session:
        ratings = service.uut_ratings(session=session, code="Gen3b - Module")
        assert list(ratings) == CONTRACT_FIELDS
        assert ratings["format"] == "module" and type(ratings["format"]) is str
        assert ratings["series_count"] == 12 and ratings["parallel_count"] == 4
        assert ratings["nominal_capacity_Ah"] == 20.0 and isinstance(ratings["max_voltage_V"], float)
        with pytest.raises(service.NotFound, match="'Gen9 - Cell' is not in the catalog"):
            service.uut_ratings(session=session, code="Gen9 - Cell")
        session.add(UUT(code="Lab - Prototype", description="no ratings yet"))
        session.flush()
        with pytest.raises(service.RatingsMissing) as caught:
            service.uut_ratings(session=session, code="Lab - Prototype")
        assert caught.value.missing == list(RATING_FIELDS)
        assert "fastlims catalog import" in str(caught.value)


@pytest.mark.parametrize("suffix", [".yaml", ".csv"])
def test_ratings_round_trip_through_export_and_import(system: System, tmp_path: Path, suffix: str) -> None:
    before = stored_ratings(system)
    path = tmp_path / f"catalog{suffix}"
    with system.database.transaction() as session:
        export_file(session, path)
    text = path.read_text()
    assert "nominal_capacity_Ah" in text and "NMC811/Li-metal" in text
    with system.database.transaction() as session:
        for uut in session.scalars(select(UUT)):
            for name in RATING_FIELDS:
                setattr(uut, name, None)
    assert {v for ratings in stored_ratings(system).values() for v in ratings.values()} == {None}
    with system.database.transaction() as session:
        report = import_file(session, path)
    assert report.updated["uuts"] == 6
    assert stored_ratings(system) == before


def test_an_edited_rating_is_imported_and_a_row_without_ratings_keeps_them(system: System, tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    with system.database.transaction() as session:
        export_file(session, path)
    data = yaml.safe_load(path.read_text())
    cell = next(u for u in data["uuts"] if u["code"] == "Gen4 - Cell")
    cell["max_discharge_current_A"] = 12.5
    path.write_text(yaml.safe_dump({"uuts": [cell]}))
    with system.database.transaction() as session:
        assert import_file(session, path).updated["uuts"] == 1
    assert stored_ratings(system)["Gen4 - Cell"]["max_discharge_current_A"] == 12.5

    # A file from before the ratings existed: description changes, ratings stay.
    before = stored_ratings(system)
    path.write_text(yaml.safe_dump({"uuts": [{"code": "Gen4 - Cell", "description": "renamed"}]}))
    with system.database.transaction() as session:
        import_file(session, path)
    assert stored_ratings(system) == before
    with system.database.transaction() as session:
        assert service.get_uut(session=session, code="Gen4 - Cell").description == "renamed"

    # A new UUT with ratings from CSV, then listed by the API's names.
    csv_path = tmp_path / "new.csv"
    csv_path.write_text(
        "record,code,description,is_active," + ",".join(GOOD) + "\n"
        "uut,LFP - Cell,a new cell,true," + ",".join(str(v) for v in GOOD.values()) + "\n"
    )
    with system.database.transaction() as session:
        assert import_file(session, csv_path).created["uuts"] == 1
        ratings = service.uut_ratings(session=session, code="LFP - Cell")
    assert {k: ratings[k] for k in GOOD} == GOOD


BAD_RATINGS = [
    ({"min_voltage_V": 4.3}, "field 'min_voltage_V': 4.3 V must be below max_voltage_V (3.65 V)"),
    ({"nominal_voltage_V": 3.7}, "field 'nominal_voltage_V': 3.7 V must lie between min_voltage_V (2.5 V)"),
    ({"nominal_voltage_V": 2.5}, "field 'nominal_voltage_V'"),
    ({"max_charge_current_A": -3}, "field 'max_charge_current_A': Input should be greater than 0"),
    ({"max_discharge_current_A": 0}, "field 'max_discharge_current_A': Input should be greater than 0"),
    ({"nominal_capacity_Ah": 0}, "field 'nominal_capacity_Ah': Input should be greater than 0"),
    ({"max_pulse_current_A": 5}, "field 'max_pulse_current_A': 5.0 A must be at least max_discharge_current_A (9.0 A)"),
    ({"min_temperature_C": 60}, "field 'min_temperature_C': 60.0 degC must be below max_temperature_C (60.0 degC)"),
    ({"format": "brick"}, "field 'format': Input should be 'cell', 'module' or 'pack'"),
    ({"series_count": 0}, "field 'series_count': Input should be greater than or equal to 1"),
    ({"parallel_count": 1.5}, "field 'parallel_count'"),
    ({"max_voltage_V": float("inf")}, "field 'max_voltage_V'"),
    ({"chemistry": None}, "field 'chemistry': missing: a UUT with ratings needs all 13 of them, or none"),
]


@pytest.mark.parametrize(("change", "message"), BAD_RATINGS, ids=lambda v: str(v)[:40])
def test_a_bad_rating_is_named_and_changes_nothing(
    system: System, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    row = {"code": "LFP - Cell", "description": "new", **GOOD, **change}
    row = {k: v for k, v in row.items() if v is not None}
    path = tmp_path / "changes.yaml"
    edited = {"code": "Gen3b - Cell", "description": "must not be applied"}
    path.write_text(yaml.safe_dump({"uuts": [edited, row]}))
    before = stored_ratings(system)
    with pytest.raises(CatalogFileError) as caught, system.database.transaction() as session:
        import_file(session, path)
    assert f"uuts row 2 (LFP - Cell): {message}" in str(caught.value), str(caught.value)
    assert stored_ratings(system) == before
    with system.database.transaction() as session:
        assert service.get_uut(session=session, code="Gen3b - Cell").description != "must not be applied"


def test_csv_rating_errors_name_every_line_and_field(system: System, tmp_path: Path) -> None:
    path = tmp_path / "changes.csv"
    header = ["record", "code", *GOOD]
    rows = [
        {**GOOD, "min_temperature_C": "70", "max_pulse_current_A": "1"},
        {**GOOD, "format": "crate", "series_count": "-2"},
        {k: v for k, v in GOOD.items() if k != "max_voltage_V"},
    ]
    lines = [",".join(header)]
    for index, row in enumerate(rows):
        lines.append(",".join(["uut", f"X{index}", *(str(row.get(k, "")) for k in GOOD)]))
    path.write_text("\n".join(lines) + "\n")
    before = stored_ratings(system)
    with pytest.raises(CatalogFileError) as caught, system.database.transaction() as session:
        import_file(session, path)
    text = str(caught.value)
    assert "line 2 (uut): field 'max_pulse_current_A': 1.0 A must be at least" in text
    assert "line 2 (uut): field 'min_temperature_C': 70.0 degC must be below" in text
    assert "line 3 (uut): field 'format'" in text and "line 3 (uut): field 'series_count'" in text
    assert "line 4 (uut): field 'max_voltage_V': missing" in text
    assert stored_ratings(system) == before

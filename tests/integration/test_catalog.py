"""The catalog API's applicability filter and the catalog import/export."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fastlims.bootstrap import System
from fastlims.catalog.models import UUT, Standard, TestName, TestNameApplicability, UseCase
from fastlims.catalog.transfer import CatalogFileError, export_file, import_file
from tests.conftest import Actor


def codes(client: TestClient, actor: Actor, **filters: str) -> set[str]:
    response = client.get("/api/v1/test-names", params=filters, headers=actor.headers)
    assert response.status_code == 200, response.text
    return {t["code"] for t in response.json()}


def test_catalog_lists_the_seed_entities(client: TestClient, requester: Actor) -> None:
    uuts = {u["code"] for u in client.get("/api/v1/uuts", headers=requester.headers).json()}
    assert uuts == {f"{gen} - {level}" for gen in ("Gen3b", "Gen4") for level in ("Cell", "Module", "Pack")}
    use_cases = {u["name"] for u in client.get("/api/v1/use-cases", headers=requester.headers).json()}
    assert use_cases == {"Automotive", "Stationary", "Off-Road"}
    standards = {s["code"]: s["name"] for s in client.get("/api/v1/standards", headers=requester.headers).json()}
    assert set(standards) == {
        "UL1642",
        "IEC62660",
        "IEC62660-2:2020-07",
        "IEC62660-3:2022",
        "IEC62619",
        "UL1973:2022-02-25",
        "UL9540",
        "UN38.3",
        "ISO12405.4",
        "IEC62281",
    }
    assert all(len(title) > 20 for title in standards.values())


def test_applicability_follows_each_standards_scope(client: TestClient, requester: Actor) -> None:
    # UN 38.3: T7 (overcharge) is for batteries, T6 and T8 for cells.
    cell = codes(client, requester, uut="Gen3b - Cell", use_case="Automotive", standard="UN38.3")
    pack = codes(client, requester, uut="Gen3b - Pack", use_case="Automotive", standard="UN38.3")
    assert {"UN383-T6", "UN383-T8"} <= cell and "UN383-T7" not in cell
    assert "UN383-T7" in pack and not {"UN383-T6", "UN383-T8"} & pack
    # IEC 62660-1 is about cells for road vehicles: nothing for packs, nothing for stationary storage.
    assert codes(client, requester, uut="Gen4 - Cell", use_case="Automotive", standard="IEC62660")
    assert not codes(client, requester, uut="Gen4 - Pack", standard="IEC62660")
    assert not codes(client, requester, use_case="Stationary", standard="IEC62660")
    # ISO 12405-4 is for packs and systems of electrically propelled road vehicles.
    assert not codes(client, requester, uut="Gen3b - Cell", standard="ISO12405.4")
    assert codes(client, requester, uut="Gen3b - Pack", use_case="Automotive", standard="ISO12405.4")
    # The seed's example test exists and can be requested for a Gen3b cell.
    assert "ELEC-OVERCHARGE" in codes(client, requester, uut="Gen3b - Cell", use_case="Automotive")


def test_each_filter_narrows_and_omitted_filters_mean_any(client: TestClient, requester: Actor) -> None:
    everything = codes(client, requester)
    by_uut = codes(client, requester, uut="Gen3b - Cell")
    by_two = codes(client, requester, uut="Gen3b - Cell", use_case="Automotive")
    by_three = codes(client, requester, uut="Gen3b - Cell", use_case="Automotive", standard="IEC62660")
    assert everything > by_uut > by_two > by_three
    assert codes(client, requester, uut="Gen99 - Cell") == set()


def test_inactive_tests_and_entities_disappear(client: TestClient, system: System, requester: Actor) -> None:
    filters = {"uut": "Gen3b - Cell", "use_case": "Automotive", "standard": "IEC62660"}
    before = codes(client, requester, **filters)
    victim = sorted(before)[0]
    with system.database.transaction() as session:
        session.scalars(select(TestName).where(TestName.code == victim)).one().is_active = False
    assert codes(client, requester, **filters) == before - {victim}
    with system.database.transaction() as session:
        session.scalars(select(Standard).where(Standard.code == "IEC62660")).one().is_active = False
    assert codes(client, requester, **filters) == set()
    listed = {s["code"] for s in client.get("/api/v1/standards", headers=requester.headers).json()}
    assert "IEC62660" not in listed


def test_explicit_not_applicable_rows_exclude(client: TestClient, system: System, requester: Actor) -> None:
    filters = {"uut": "Gen3b - Cell", "use_case": "Automotive", "standard": "IEC62660"}
    victim = sorted(codes(client, requester, **filters))[0]
    with system.database.transaction() as session:
        rows = session.scalars(
            select(TestNameApplicability)
            .join(TestName, TestName.id == TestNameApplicability.test_id)
            .join(UUT, UUT.id == TestNameApplicability.uut_id)
            .join(UseCase, UseCase.id == TestNameApplicability.use_case_id)
            .where(TestName.code == victim, UUT.code == "Gen3b - Cell", UseCase.name == "Automotive")
        ).all()
        for row in rows:
            row.is_applicable = False
    assert victim not in codes(client, requester, **filters)


# --- import / export -------------------------------------------------------------------------


def table_counts(system: System) -> dict[str, int]:
    with system.database.transaction() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (UUT, UseCase, Standard, TestName, TestNameApplicability)
        }


def catalog_rows(system: System) -> dict[str, list[tuple[object, ...]]]:
    """Everything the catalog says, by natural keys (ids may differ between databases)."""
    with system.database.transaction() as session:
        return {
            "tests": sorted(
                (
                    t.code,
                    t.name,
                    t.category,
                    t.bench_kind.value,
                    t.nominal_duration_minutes,
                    t.pausable,
                    t.is_active,
                )
                for t in session.scalars(select(TestName))
            ),
            "matrix": sorted(
                (a.test.code, a.standard.code, a.uut.code, a.use_case.name, a.is_applicable)
                for a in session.scalars(select(TestNameApplicability))
            ),
        }


@pytest.mark.parametrize("suffix", [".yaml", ".csv"])
def test_export_then_import_is_idempotent(system: System, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"catalog{suffix}"
    with system.database.transaction() as session:
        export_file(session, path)
    before = (table_counts(system), catalog_rows(system))
    with system.database.transaction() as session:
        report = import_file(session, path)
    assert not report.created and not report.updated
    assert sum(report.unchanged.values()) == sum(before[0].values())
    assert (table_counts(system), catalog_rows(system)) == before


def test_import_into_an_empty_catalog_reproduces_it(system: System, tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    with system.database.transaction() as session:
        export_file(session, path)
        expected = catalog_rows(system)
        for model in (TestNameApplicability, TestName, Standard, UseCase, UUT):
            session.query(model).delete()
    assert sum(table_counts(system).values()) == 0
    with system.database.transaction() as session:
        import_file(session, path)
    assert catalog_rows(system) == expected


def test_import_updates_changed_rows(system: System, tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    with system.database.transaction() as session:
        export_file(session, path)
    data = yaml.safe_load(path.read_text())
    data["test_names"][0]["nominal_duration_minutes"] = 4321
    data["use_cases"].append({"name": "Marine", "description": "ships", "is_active": True})
    path.write_text(yaml.safe_dump(data))
    with system.database.transaction() as session:
        report = import_file(session, path)
    assert report.updated["test_names"] == 1 and report.created["use_cases"] == 1
    with system.database.transaction() as session:
        test = session.scalars(select(TestName).where(TestName.code == data["test_names"][0]["code"])).one()
        assert test.nominal_duration_minutes == 4321


BAD_YAML_ROWS = [
    (
        "test_names",
        {"code": "bad code", "name": "X - Y", "category": "Electrical", "nominal_duration_minutes": 10},
        "test_names row 1 (bad code): field 'code'",
    ),
    (
        "test_names",
        {"code": "NEW-1", "name": "X - Y", "category": "Electrical", "nominal_duration_minutes": 0},
        "field 'nominal_duration_minutes'",
    ),
    (
        "test_names",
        {
            "code": "NEW-1",
            "name": "X - Y",
            "category": "Electrical",
            "bench_kind": "quantum",
            "nominal_duration_minutes": 5,
        },
        "field 'bench_kind'",
    ),
    ("uuts", {"code": "Gen5 - Cell", "colour": "red"}, "uuts row 1 (Gen5 - Cell): field 'colour'"),
    (
        "applicability",
        {"test": "NO-SUCH", "standard": "UN38.3", "uuts": ["Gen3b - Cell"], "use_cases": ["Automotive"]},
        "field 'test': 'NO-SUCH' is in neither",
    ),
    (
        "applicability",
        {"test": "UN383-T1", "standard": "UN38.3", "uuts": [], "use_cases": ["Automotive"]},
        "field 'uuts'",
    ),
]


@pytest.mark.parametrize(("section", "row", "message"), BAD_YAML_ROWS)
def test_a_bad_row_is_named_and_changes_nothing(
    system: System, tmp_path: Path, section: str, row: dict, message: str
) -> None:
    path = tmp_path / "changes.yaml"
    # A good change in the same file must not be applied either.
    good = {"code": "Gen5 - Cell", "description": "next generation"} if section != "uuts" else None
    document = {"format": "fastlims-catalog/1", section: [row]}
    if good:
        document["uuts"] = [good]
    path.write_text(yaml.safe_dump(document))
    before = catalog_rows(system), table_counts(system)
    with pytest.raises(CatalogFileError) as caught, system.database.transaction() as session:
        import_file(session, path)
    assert str(path) in str(caught.value) and message in str(caught.value)
    assert (catalog_rows(system), table_counts(system)) == before


def test_csv_errors_name_the_line_and_field(system: System, tmp_path: Path) -> None:
    path = tmp_path / "changes.csv"
    path.write_text(
        "record,code,name,description,is_active,nominal_duration_minutes,category\n"
        "uut,Gen5 - Cell,,fine,true,,\n"
        "test_name,NEW-2,Thermal - X,,maybe,30,Thermal\n"
        "widget,W1,,,,,\n"
        "uut,Gen6 - Cell,oops,,true,,\n"
    )
    before = table_counts(system)
    with pytest.raises(CatalogFileError) as caught, system.database.transaction() as session:
        import_file(session, path)
    text = str(caught.value)
    assert "line 3 (test_name): field 'is_active'" in text
    assert "line 4 (widget): field 'record'" in text
    assert "line 5 (uut): field(s) ['name'] do not belong" in text
    assert table_counts(system) == before


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("c.yaml", "uuts: [unclosed", "not valid YAML"),
        ("c.yaml", "- just a list", "top level must be a mapping"),
        ("c.yaml", "format: other/9\n", "not supported"),
        ("c.yaml", "gadgets: []\n", "unknown section"),
        ("c.csv", "code,name\nX,Y\n", "missing column 'record'"),
        ("c.json", "{}", "unknown file type"),
        ("c.yaml", "uuts:\n  - {code: A}\n  - {code: A}\n", "also defined at uuts row 1"),
    ],
)
def test_malformed_files(system: System, tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CatalogFileError, match=message), system.database.transaction() as session:
        import_file(session, path)


def test_cli_import_reports_errors_and_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from fastlims.cli import main

    monkeypatch.setenv("FASTLIMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FASTLIMS_DATABASE_URL", raising=False)
    runner = CliRunner()
    bad = tmp_path / "bad.yaml"
    bad.write_text("test_names:\n  - {code: X1, name: n, category: c, nominal_duration_minutes: -5}\n")
    result = runner.invoke(main, ["catalog", "import", str(bad)])
    assert result.exit_code == 1 and "nominal_duration_minutes" in result.output and "nothing imported" in result.output
    exported = tmp_path / "out.yaml"
    assert runner.invoke(main, ["catalog", "export", str(exported)]).exit_code == 0
    assert yaml.safe_load(exported.read_text())["format"] == "fastlims-catalog/1"
    again = runner.invoke(main, ["catalog", "import", str(exported)])
    assert again.exit_code == 0 and "0 created, 0 updated" in again.output

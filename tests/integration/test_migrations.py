"""Migrations up and down on SQLite and PostgreSQL, and the models match the migrations."""

from __future__ import annotations

from datetime import datetime

import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from fastlims.bootstrap import metadata as all_tables
from fastlims.catalog.schemas import RATING_FIELDS
from fastlims.catalog.transfer import SEED_CATALOG
from fastlims.db import migrate
from fastlims.db.engine import normalise_url

RATING_COLUMNS = [
    "Chemistry",
    "Format",
    "SeriesCount",
    "ParallelCount",
    "NominalCapacityAh",
    "NominalVoltageV",
    "MinVoltageV",
    "MaxVoltageV",
    "MaxChargeCurrentA",
    "MaxDischargeCurrentA",
    "MaxPulseCurrentA",
    "MinTemperatureC",
    "MaxTemperatureC",
]
SEED_TABLES = {
    "UUTIDs",
    "UseCases",
    "RelevantStandards",
    "TestNames",
    "TestNameApplicability",
    "TestRequests",
}
SEED_REQUEST_COLUMNS = {
    "Id",
    "RequestNumber",
    "RequesterId",
    "RequesterName",
    "PreferredTestScheduleDate",
    "UUTIDId",
    "UseCaseId",
    "StandardId",
    "TestId",
    "Status",
    "WorkflowId",
    "SimulationFolder",
    "FmuBlobPath",
    "SimulationResultsPath",
    "SimulationProgress",
    "TestMetricsJson",
    "CreatedAt",
    "UpdatedAt",
    "FmuReadyAt",
    "DoeCompleteAt",
    "ScheduleReadyAt",
    "SimulationStartedAt",
    "SimulationCompleteAt",
    "CompletedAt",
    "FailedAt",
}


def test_upgrade_downgrade_upgrade(empty_database_url: str) -> None:
    engine = create_engine(normalise_url(empty_database_url))
    migrate.upgrade(empty_database_url)
    tables = set(inspect(engine).get_table_names())
    assert SEED_TABLES | {"TestRequestEvents", "Users", "ApiTokens"} <= tables
    columns = {c["name"] for c in inspect(engine).get_columns("TestRequests")}
    assert columns >= SEED_REQUEST_COLUMNS
    assert {c["name"] for c in inspect(engine).get_columns("UUTIDs")} >= set(RATING_COLUMNS)
    assert {c["name"] for c in inspect(engine).get_columns("TestNameApplicability")} >= {
        "Id",
        "TestId",
        "StandardId",
        "UseCaseId",
        "UUTIDId",
        "IsApplicable",
        "CreatedAt",
    }
    assert migrate.current_revision(engine) == migrate.head_revision()

    migrate.downgrade(empty_database_url, "base")
    engine.dispose()
    engine = create_engine(normalise_url(empty_database_url))
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert migrate.current_revision(engine) is None

    migrate.upgrade(empty_database_url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_models_and_migrations_agree(empty_database_url: str) -> None:
    """A model change without a migration (or the reverse) fails here, on both backends."""
    migrate.upgrade(empty_database_url)
    engine = create_engine(normalise_url(empty_database_url))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, all_tables())
    engine.dispose()
    assert differences == []


def _seed_uut_ratings() -> dict[str, dict[str, object]]:
    """The ratings the seed catalog file gives each UUT (what the migration must agree with)."""
    document = yaml.safe_load(SEED_CATALOG.read_text())
    return {row["code"]: {name: row[name] for name in RATING_FIELDS} for row in document["uuts"]}


def test_ratings_migration_fills_the_seed_uuts_and_goes_down_without_losing_rows(empty_database_url: str) -> None:
    """0005 on a catalog made before it: the six seed UUTs get the seed file's ratings, a lab's own
    UUT stays unrated; going down drops only the columns (the UUTs and the applicability rows that
    reference them survive, on SQLite too, where a table rebuild would cascade)."""
    migrate.upgrade(empty_database_url, "0004")
    engine = create_engine(normalise_url(empty_database_url))
    seeds = _seed_uut_ratings()
    codes = [*seeds, "Lab - Prototype"]
    now = datetime(2026, 12, 3, 12, 0)
    with engine.begin() as connection:
        for code in codes:
            connection.execute(
                text('INSERT INTO "UUTIDs" ("Code", "Description", "IsActive", "CreatedAt") VALUES (:c, :d, true, :t)'),
                {"c": code, "d": "", "t": now},
            )
        connection.execute(
            text(
                'INSERT INTO "TestNames" ("Code", "Name", "Description", "Category", "BenchKind",'
                ' "NominalDurationMinutes", "SetupMinutes", "TeardownMinutes", "PausableOverClosedHours",'
                " \"IsActive\", \"CreatedAt\") VALUES ('T1', 'X - Y', '', 'X', 'both', 60, 0, 0, false, true, :t)"
            ),
            {"t": now},
        )
        connection.execute(
            text(
                'INSERT INTO "RelevantStandards" ("Code", "Name", "Description", "IsActive", "CreatedAt")'
                " VALUES ('S1', 'Standard', '', true, :t)"
            ),
            {"t": now},
        )
        connection.execute(
            text(
                'INSERT INTO "UseCases" ("Name", "Description", "IsActive", "CreatedAt")'
                " VALUES ('Automotive', '', true, :t)"
            ),
            {"t": now},
        )
        connection.execute(
            text(
                'INSERT INTO "TestNameApplicability" ("TestId", "StandardId", "UseCaseId", "UUTIDId",'
                ' "IsApplicable", "CreatedAt") SELECT t."Id", s."Id", u."Id", x."Id", true, :t'
                ' FROM "TestNames" t, "RelevantStandards" s, "UseCases" u, "UUTIDs" x'
            ),
            {"t": now},
        )

    migrate.upgrade(empty_database_url, "0005")
    columns = ["Code", *RATING_COLUMNS]
    with engine.connect() as connection:
        quoted = ", ".join(f'"{c}"' for c in columns)
        rows = connection.execute(text(f'SELECT {quoted} FROM "UUTIDs"'))
        stored = {row[0]: dict(zip(RATING_FIELDS, row[1:], strict=True)) for row in rows}
    for code, expected in seeds.items():
        assert stored[code] == expected, code
    assert set(stored["Lab - Prototype"].values()) == {None}

    migrate.downgrade(empty_database_url, "0004")
    engine.dispose()
    engine = create_engine(normalise_url(empty_database_url))
    remaining = {c["name"] for c in inspect(engine).get_columns("UUTIDs")}
    assert remaining == {"Id", "Code", "Description", "IsActive", "CreatedAt"}
    with engine.connect() as connection:
        assert connection.execute(text('SELECT count(*) FROM "UUTIDs"')).scalar_one() == len(codes)
        assert connection.execute(text('SELECT count(*) FROM "TestNameApplicability"')).scalar_one() == len(codes)

    migrate.upgrade(empty_database_url)
    with engine.connect() as connection:
        again = connection.execute(text('SELECT "NominalCapacityAh" FROM "UUTIDs" WHERE "Code" = \'Gen4 - Cell\''))
        assert again.scalar_one() == seeds["Gen4 - Cell"]["nominal_capacity_Ah"]
    engine.dispose()

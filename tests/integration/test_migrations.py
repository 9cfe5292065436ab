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


def test_procedure_migration_adds_nullable_columns_and_goes_down_keeping_requests(empty_database_url: str) -> None:
    """0007 on a request made before it: the request has no procedure (NULL, not a guess); a
    procedure and its source can be stored; going down drops only the two columns (the request and
    its audit trail survive, on SQLite too)."""
    migrate.upgrade(empty_database_url, "0006")
    engine = create_engine(normalise_url(empty_database_url))
    now = datetime(2026, 12, 5, 9, 0)
    with engine.begin() as connection:
        for statement in (
            'INSERT INTO "UUTIDs" ("Code", "Description", "IsActive", "CreatedAt") VALUES (\'U1\', \'\', true, :t)',
            'INSERT INTO "UseCases" ("Name", "Description", "IsActive", "CreatedAt") VALUES (\'A\', \'\', true, :t)',
            'INSERT INTO "RelevantStandards" ("Code", "Name", "Description", "IsActive", "CreatedAt")'
            " VALUES ('S1', 'Standard', '', true, :t)",
            'INSERT INTO "TestNames" ("Code", "Name", "Description", "Category", "BenchKind",'
            ' "NominalDurationMinutes", "SetupMinutes", "TeardownMinutes", "PausableOverClosedHours",'
            " \"IsActive\", \"CreatedAt\") VALUES ('T1', 'X - Y', '', 'X', 'both', 60, 0, 0, false, true, :t)",
            'INSERT INTO "TestRequests" ("RequestNumber", "TestUUID", "RequesterId", "RequesterName",'
            ' "PreferredTestScheduleDate", "UUTIDId", "UseCaseId", "StandardId", "TestId", "TestBench", "Status",'
            ' "SimulationProgress", "CreatedAt", "UpdatedAt") SELECT \'TR-2026-000001\','
            ' \'00000000-0000-4000-8000-000000000001\', \'rita\', \'Rita\', :t, u."Id", c."Id", s."Id", n."Id",'
            ' \'Virtual\', 1, 0, :t, :t FROM "UUTIDs" u, "UseCases" c, "RelevantStandards" s, "TestNames" n',
            'INSERT INTO "TestRequestEvents" ("TestRequestId", "Kind", "Actor", "At", "ToValue")'
            " SELECT \"Id\", 'created', 'rita', :t, 'Submitted' FROM \"TestRequests\"",
        ):
            connection.execute(text(statement), {"t": now})

    migrate.upgrade(empty_database_url, "0007")
    columns = {c["name"]: c for c in inspect(engine).get_columns("TestRequests")}
    assert columns["ProcedureJson"]["nullable"] and columns["ProcedureSource"]["nullable"]
    with engine.begin() as connection:
        before = connection.execute(text('SELECT "ProcedureJson", "ProcedureSource" FROM "TestRequests"')).one()
        assert tuple(before) == (None, None)
        connection.execute(
            text('UPDATE "TestRequests" SET "ProcedureJson" = :p, "ProcedureSource" = \'request\''),
            {"p": '{"format": "fastlims-procedure/1", "steps": [{"type": "rest", "until": [{"time_s": 60}]}]}'},
        )

    migrate.downgrade(empty_database_url, "0006")
    engine.dispose()
    engine = create_engine(normalise_url(empty_database_url))
    remaining = {c["name"] for c in inspect(engine).get_columns("TestRequests")}
    assert "ProcedureJson" not in remaining and "ProcedureSource" not in remaining
    assert remaining >= SEED_REQUEST_COLUMNS
    with engine.connect() as connection:
        assert connection.execute(text('SELECT "RequestNumber" FROM "TestRequests"')).scalar_one() == "TR-2026-000001"
        assert connection.execute(text('SELECT count(*) FROM "TestRequestEvents"')).scalar_one() == 1

    migrate.upgrade(empty_database_url)
    assert {"ProcedureJson", "ProcedureSource"} <= {c["name"] for c in inspect(engine).get_columns("TestRequests")}
    engine.dispose()

"""Migrations up and down on SQLite and PostgreSQL, and the models match the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from fastlims.bootstrap import metadata as all_tables
from fastlims.db import migrate
from fastlims.db.engine import normalise_url

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

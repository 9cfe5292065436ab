"""Names and addresses of the durable engine: derived from settings only, stable, distinct."""

from __future__ import annotations

import pytest

from fastlims.pipeline import durable
from fastlims.runs import queues


def test_workflow_id_is_derived_from_the_request() -> None:
    uuid = "0F8FAD5B-D9CB-469F-A165-70867728950E"
    assert durable.workflow_id(uuid) == durable.workflow_id(uuid.lower()) == f"pipeline-{uuid.lower()}"
    assert durable.request_uuid_of(durable.workflow_id(uuid)) == uuid.lower()
    assert durable.request_uuid_of("something-else") is None


def test_run_ids_and_idempotency_keys_are_unique_per_request_and_run() -> None:
    a = durable.global_run_id("aaaa", "run-001")
    b = durable.global_run_id("bbbb", "run-001")
    assert a != b and a.endswith(".run-001")
    key = durable.idempotency_key(durable.workflow_id("aaaa"), a)
    assert key == "pipeline-aaaa:aaaa.run-001"
    assert queues.bench_queue("virtual-1") == "bench-virtual-1"


def test_application_version_is_pinned_not_a_code_hash() -> None:
    assert durable.application_version("0.1.0") == f"0.1.0+{durable.WORKFLOW_SCHEMA}"
    assert durable.application_version("0.1.0", "site-7") == "site-7"


def test_executor_id_is_stable_and_differs_per_data_dir_and_host() -> None:
    one = durable.default_executor_id("lab-host.example", "/srv/fastlims")
    assert one == durable.default_executor_id("lab-host.example", "/srv/fastlims")
    assert one != durable.default_executor_id("lab-host.example", "/srv/other")
    assert one != durable.default_executor_id("lab-host-2", "/srv/fastlims")
    assert one.startswith("lab-host.example-")
    assert durable.default_executor_id("weird host/name", "/x").startswith("weird-host-name-")


@pytest.mark.parametrize(
    ("application", "system"),
    [
        ("sqlite:////data/fastlims.db", "sqlite:////data/fastlims.dbos.sqlite"),
        ("sqlite:///relative/lab.sqlite", "sqlite:///relative/lab.sqlite.dbos.sqlite"),
        ("postgresql+psycopg://u:p%40ss@db:5432/lims", "postgresql://u:p%40ss@db:5432/lims_dbos"),
        ("postgresql://u@db/lims?sslmode=require", "postgresql://u@db/lims_dbos?sslmode=require"),
    ],
)
def test_system_database_lives_beside_the_application_database(application: str, system: str) -> None:
    assert durable.system_database_url(application) == system


def test_system_database_url_setting_wins_and_bad_backends_are_named() -> None:
    assert (
        durable.system_database_url("sqlite:////x.db", "postgresql://elsewhere/dbos") == "postgresql://elsewhere/dbos"
    )
    with pytest.raises(ValueError, match="in-memory"):
        durable.system_database_url("sqlite://")
    with pytest.raises(ValueError, match="SQLite or PostgreSQL"):
        durable.system_database_url("mssql+pyodbc://u:p@host/db")

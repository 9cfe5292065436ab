"""POST/GET/cancel test requests over the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fastlims.bootstrap import System
from fastlims.catalog.models import TestName
from fastlims.requests import service
from fastlims.requests.models import TestRequest, TestRequestEvent
from fastlims.requests.states import Status
from tests.catalog_helpers import applicable, not_applicable
from tests.conftest import LAB_ZONE, Actor


def request_count(system: System) -> int:
    with system.database.transaction() as session:
        return session.scalar(select(func.count()).select_from(TestRequest)) or 0


def submit(client: TestClient, actor: Actor, body: dict) -> dict:
    response = client.post("/api/v1/test-requests", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_submit_answers_201_with_number_uuid_and_status(client: TestClient, system: System, requester: Actor) -> None:
    combo = applicable(system)
    variables = {
        "test_procedures": ["Follow current profile from custom_profile"],
        "custom_profile": {
            "Name": "current",
            "type": "input",
            "unit": "mA",
            "values": [{"timestamp": 0, "value": "1.0"}, {"timestamp": 1, "value": 2}],
        },
        "FMU_signal_connections": [{"InSignalReference": "Cell/I", "OutSignalReference": "Cycler/I"}],
    }
    response = client.post("/api/v1/test-requests", json=combo.body(variables=variables), headers=requester.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    year = datetime.now(ZoneInfo(LAB_ZONE)).year
    assert body["request_number"].startswith(f"TR-{year}-") and len(body["request_number"]) == len("TR-2026-000001")
    assert uuid.UUID(body["test_UUID"]).version == 4
    assert body["status"] == "Submitted"
    assert body["requester_id"] == "rita" and body["requester_name"] == "Rita"
    assert body["variables"]["custom_profile"]["values"][1]["value"] == 2.0
    assert response.headers["location"] == f"/api/v1/test-requests/{body['request_number']}"
    # The naive preferred date is the lab's local time: 09:00 in Berlin, stored as 07:00 UTC in June.
    assert body["preferred_date"] == "2099-06-01T09:00:00+02:00"
    with system.database.transaction() as session:
        stored = service.get(session=session, request_number=body["request_number"])
        assert stored.preferred_test_schedule_date.hour == 7
        assert [e.kind for e in stored.events] == ["created"]


def test_request_numbers_are_unique_and_increasing(client: TestClient, system: System, requester: Actor) -> None:
    combo = applicable(system)
    numbers = [submit(client, requester, combo.body())["request_number"] for _ in range(3)]
    assert len(set(numbers)) == 3 and numbers == sorted(numbers)


def _problems(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    return {
        str(d["loc"][-1]) if d["loc"][0] == "body" and len(d["loc"]) == 2 else ".".join(map(str, d["loc"][1:])): d[
            "msg"
        ]
        for d in response.json()["detail"]
    }


@pytest.mark.parametrize(
    ("override", "field", "fragment"),
    [
        ({"uut": "Gen9 - Cell"}, "uut", "not in the catalog"),
        ({"use_case": "Marine"}, "use_case", "not in the catalog"),
        ({"standard": "ISO 9999"}, "standard", "not in the catalog"),
        ({"test_name": "NO-SUCH-TEST"}, "test_name", "not in the catalog"),
        ({"preferred_date": "2001-01-01T10:00:00"}, "preferred_date", "in the past"),
        ({"preferred_date": "2001-01-01"}, "preferred_date", "in the past"),
        ({"preferred_date": "next tuesday"}, "preferred_date", "datetime"),
        ({"bench": "Hybrid"}, "bench", "'Virtual' or 'Physical'"),
        ({"uut": ""}, "uut", "at least 1 character"),
        ({"surprise": True}, "surprise", "Extra inputs"),
        (
            {
                "variables": {
                    "custom_profile": {
                        "Name": "i",
                        "values": [{"timestamp": 2, "value": 1}, {"timestamp": 1, "value": 1}],
                    }
                }
            },
            "variables.custom_profile",
            "strictly increase",
        ),
    ],
)
def test_every_bad_field_gets_422_naming_it_and_nothing_is_stored(
    client: TestClient, system: System, requester: Actor, override: dict, field: str, fragment: str
) -> None:
    response = client.post("/api/v1/test-requests", json=applicable(system).body(**override), headers=requester.headers)
    problems = _problems(response)
    matching = [message for name, message in problems.items() if name.startswith(field)]
    assert matching, problems
    assert any(fragment in message for message in matching), problems
    assert request_count(system) == 0


@pytest.mark.parametrize("missing_field", ["uut", "use_case", "standard", "test_name", "preferred_date", "bench"])
def test_missing_fields_are_named(client: TestClient, system: System, requester: Actor, missing_field: str) -> None:
    body = applicable(system).body()
    del body[missing_field]
    problems = _problems(client.post("/api/v1/test-requests", json=body, headers=requester.headers))
    assert problems[missing_field] == "Field required"


def test_several_problems_are_reported_together(client: TestClient, system: System, requester: Actor) -> None:
    body = applicable(system).body(uut="nope", standard="nope", preferred_date="2001-01-01")
    problems = _problems(client.post("/api/v1/test-requests", json=body, headers=requester.headers))
    assert {"uut", "standard", "preferred_date"} <= set(problems)


def test_combination_that_is_not_applicable_is_refused(client: TestClient, system: System, requester: Actor) -> None:
    combo = not_applicable(system)
    problems = _problems(client.post("/api/v1/test-requests", json=combo.body(), headers=requester.headers))
    assert "not applicable" in problems["test_name"]
    assert request_count(system) == 0


def test_inactive_test_name_is_refused(client: TestClient, system: System, requester: Actor) -> None:
    combo = applicable(system)
    with system.database.transaction() as session:
        session.scalars(select(TestName).where(TestName.code == combo.test_name)).one().is_active = False
    problems = _problems(client.post("/api/v1/test-requests", json=combo.body(), headers=requester.headers))
    assert "inactive" in problems["test_name"]


def test_bench_the_test_cannot_run_on_is_refused(client: TestClient, system: System, requester: Actor) -> None:
    combo = applicable(system, bench="Physical")
    with system.database.transaction() as session:
        session.scalars(select(TestName).where(TestName.code == combo.test_name)).one().bench_kind = "physical"
    problems = _problems(
        client.post("/api/v1/test-requests", json=combo.body(bench="Virtual"), headers=requester.headers)
    )
    assert "physical benches only" in problems["bench"]


def test_today_is_not_in_the_past(client: TestClient, system: System, requester: Actor) -> None:
    today = datetime.now(ZoneInfo(LAB_ZONE)).date().isoformat()
    assert submit(client, requester, applicable(system).body(preferred_date=today))["status"] == "Submitted"


def test_an_explicit_offset_is_respected(client: TestClient, system: System, requester: Actor) -> None:
    body = submit(client, requester, applicable(system).body(preferred_date="2099-01-10T12:00:00Z"))
    assert body["preferred_date"] == "2099-01-10T13:00:00+01:00"


def test_list_filter_and_paging(client: TestClient, system: System, requester: Actor, manager: Actor) -> None:
    combo = applicable(system)
    numbers = [submit(client, requester, combo.body())["request_number"] for _ in range(5)]
    client.post(f"/api/v1/test-requests/{numbers[0]}/cancel", headers=requester.headers)
    page = client.get("/api/v1/test-requests?page=2&page_size=2", headers=requester.headers).json()
    assert page["total"] == 5 and page["page"] == 2 and len(page["items"]) == 2
    assert [i["request_number"] for i in page["items"]] == [numbers[2], numbers[1]]
    cancelled = client.get("/api/v1/test-requests?status=Cancelled", headers=manager.headers).json()
    assert [i["request_number"] for i in cancelled["items"]] == [numbers[0]]
    bad = client.get("/api/v1/test-requests?status=Done", headers=requester.headers)
    assert bad.status_code == 422 and "unknown status 'Done'" in bad.text
    assert client.get("/api/v1/test-requests?page=0", headers=requester.headers).status_code == 422


def test_requesters_see_only_their_own_and_managers_see_all(
    client: TestClient, system: System, requester: Actor, other_requester: Actor, manager: Actor
) -> None:
    combo = applicable(system)
    mine = submit(client, requester, combo.body())["request_number"]
    theirs = submit(client, other_requester, combo.body())["request_number"]
    listed = client.get("/api/v1/test-requests", headers=requester.headers).json()
    assert [i["request_number"] for i in listed["items"]] == [mine]
    hidden = client.get(f"/api/v1/test-requests/{theirs}", headers=requester.headers)
    unknown = client.get("/api/v1/test-requests/TR-2026-999999", headers=requester.headers)
    assert hidden.status_code == unknown.status_code == 404  # not 403: numbers cannot be probed
    assert hidden.json()["detail"] == f"test request {theirs!r} does not exist"
    assert client.get(f"/api/v1/test-requests/{mine}", headers=requester.headers).status_code == 200
    assert client.get("/api/v1/test-requests", headers=manager.headers).json()["total"] == 2
    assert client.get(f"/api/v1/test-requests/{theirs}", headers=manager.headers).status_code == 200
    assert client.get("/api/v1/test-requests/TR-1999-000001", headers=manager.headers).status_code == 404


def test_cancel_own_request_and_audit_trail(client: TestClient, system: System, requester: Actor) -> None:
    number = submit(client, requester, applicable(system).body())["request_number"]
    response = client.post(
        f"/api/v1/test-requests/{number}/cancel", json={"reason": "wrong UUT"}, headers=requester.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "Cancelled" and body["timestamps"]["cancelled_at"] is not None
    last = body["events"][-1]
    assert (last["from_value"], last["to_value"], last["actor"], last["reason"]) == (
        "Submitted",
        "Cancelled",
        "rita",
        "wrong UUT",
    )
    again = client.post(f"/api/v1/test-requests/{number}/cancel", headers=requester.headers)
    assert again.status_code == 422 and "can no longer be cancelled" in again.text


def test_cancel_someone_elses_request(
    client: TestClient, system: System, requester: Actor, other_requester: Actor, manager: Actor
) -> None:
    number = submit(client, requester, applicable(system).body())["request_number"]
    assert client.post(f"/api/v1/test-requests/{number}/cancel", headers=other_requester.headers).status_code == 404
    assert client.post(f"/api/v1/test-requests/{number}/cancel", headers=manager.headers).status_code == 200


def test_running_request_cannot_be_cancelled(client: TestClient, system: System, requester: Actor) -> None:
    number = submit(client, requester, applicable(system).body())["request_number"]
    with system.database.transaction() as session:
        request = service.get(session=session, request_number=number)
        for target in (
            Status.ModelRequested,
            Status.ModelReady,
            Status.DoeComplete,
            Status.ScheduleReady,
            Status.Running,
        ):
            service.change_status(session=session, request=request, target=target, actor="pipeline")
    response = client.post(f"/api/v1/test-requests/{number}/cancel", headers=requester.headers)
    assert response.status_code == 422 and "Running can no longer be cancelled" in response.text
    body = client.get(f"/api/v1/test-requests/{number}", headers=requester.headers).json()
    assert body["status"] == "Running"
    assert all(
        body["timestamps"][k] for k in ("fmu_ready_at", "doe_complete_at", "schedule_ready_at", "simulation_started_at")
    )


def test_illegal_service_transition_changes_nothing(system: System, requester: Actor, client: TestClient) -> None:
    number = submit(client, requester, applicable(system).body())["request_number"]
    with (
        pytest.raises(ValueError, match="cannot move a request from Submitted to Completed"),
        system.database.transaction() as session,
    ):
        request = service.get(session=session, request_number=number)
        service.change_status(session=session, request=request, target=Status.Completed, actor="x")
    with system.database.transaction() as session:
        request = service.get(session=session, request_number=number)
        assert request.status == Status.Submitted
        events = session.scalar(
            select(func.count()).select_from(TestRequestEvent).where(TestRequestEvent.request_id == request.id)
        )
        assert events == 1


def test_failed_keeps_its_reason(system: System, requester: Actor, client: TestClient) -> None:
    number = submit(client, requester, applicable(system).body())["request_number"]
    with system.database.transaction() as session:
        request = service.get(session=session, request_number=number)
        service.change_status(
            session=session,
            request=request,
            target=Status.Failed,
            actor="dt",
            reason="DT has no model for this UUT",
        )
    body = client.get(f"/api/v1/test-requests/{number}", headers=requester.headers).json()
    assert body["status"] == "Failed" and body["failure_reason"] == "DT has no model for this UUT"
    assert body["timestamps"]["failed_at"] is not None


def test_expected_state_guard_makes_retries_safe(system: System, requester: Actor, client: TestClient) -> None:
    number = submit(client, requester, applicable(system).body())["request_number"]
    with system.database.transaction() as session:
        request = service.get(session=session, request_number=number)
        service.change_status(
            session=session,
            request=request,
            target=Status.ModelRequested,
            actor="relay",
            expected=Status.Submitted,
        )
    with pytest.raises(ValueError), system.database.transaction() as session:
        request = service.get(session=session, request_number=number)
        service.change_status(
            session=session,
            request=request,
            target=Status.ModelRequested,
            actor="relay",
            expected=Status.Submitted,
        )


def test_preferred_date_boundary_uses_the_lab_zone(system: System, requester: Actor, client: TestClient) -> None:
    yesterday = (datetime.now(ZoneInfo(LAB_ZONE)) - timedelta(days=1)).date().isoformat()
    problems = _problems(
        client.post(
            "/api/v1/test-requests",
            json=applicable(system).body(preferred_date=yesterday),
            headers=requester.headers,
        )
    )
    assert "in the past" in problems["preferred_date"]

"""The seed's three pages and the request detail page, rendered by the real app."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from fastlims.bootstrap import System
from fastlims.catalog import service as catalog
from fastlims.requests import service
from fastlims.requests.states import Status
from tests.catalog_helpers import applicable
from tests.conftest import Actor
from tests.integration.test_auth import csrf_from, login


def submit_via_api(client: TestClient, actor: Actor, body: dict) -> str:
    response = client.post("/api/v1/test-requests", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["request_number"])


def stat(html: str, key: str) -> str:
    match = re.search(rf'data-testid="stat-{key}">([^<]*)<', html)
    assert match, key
    return match.group(1).strip()


def test_dashboard_counts(client: TestClient, system: System, requester: Actor) -> None:
    login(client, "rita")
    assert stat(client.get("/").text, "total") == "0"
    combo = applicable(system)
    numbers = [submit_via_api(client, requester, combo.body()) for _ in range(4)]
    with system.database.transaction() as session:
        done = service.get(session=session, request_number=numbers[0])
        for target in (
            Status.ModelRequested,
            Status.ModelReady,
            Status.DoeComplete,
            Status.ScheduleReady,
            Status.Running,
            Status.SimulationComplete,
            Status.Completed,
        ):
            service.change_status(session=session, request=done, target=target, actor="t")
        failed = service.get(session=session, request_number=numbers[1])
        service.change_status(session=session, request=failed, target=Status.Failed, actor="t", reason="no FMU")
        running = service.get(session=session, request_number=numbers[2])
        service.change_status(session=session, request=running, target=Status.ModelRequested, actor="t")
    html = client.get("/").text
    assert (
        stat(html, "total"),
        stat(html, "submitted"),
        stat(html, "running"),
        stat(html, "completed"),
        stat(html, "failed"),
        stat(html, "success-rate"),
    ) == ("4", "1", "1", "1", "1", "50%")


def test_new_request_form_lists_the_catalog_and_filters_test_names(
    client: TestClient, system: System, requester: Actor
) -> None:
    login(client, "rita")
    html = client.get("/requests/new").text
    with system.database.transaction() as session:
        uuts = [u.code for u in catalog.get_uuts(session=session)]
        standards = [s.code for s in catalog.get_standards(session=session)]
    for code in uuts + standards + ["Automotive", "Stationary", "Off-Road"]:
        assert f'value="{code}"' in html
    combo = applicable(system)
    fragment = client.get(
        "/fragments/test-names",
        params={"uut": combo.uut, "use_case": combo.use_case, "standard": combo.standard},
    ).text
    with system.database.transaction() as session:
        expected = [
            t.code
            for t in catalog.applicable_test_names(
                session=session, uut=combo.uut, use_case=combo.use_case, standard=combo.standard
            )
        ]
    offered = re.findall(r'<option value="([^"]+)"', fragment)
    assert offered == expected and combo.test_name in offered
    everything = re.findall(r'<option value="([^"]+)"', client.get("/fragments/test-names").text)
    assert len(everything) > len(offered)


def test_submitting_the_form_shows_the_detail_page(client: TestClient, system: System, requester: Actor) -> None:
    login(client, "rita")
    combo = applicable(system)
    token = csrf_from(client, "/requests/new")
    form = {k: str(v) for k, v in combo.body(preferred_date="2099-06-01T09:00").items()}
    response = client.post("/requests/new", data={**form, "csrf_token": token})
    assert response.status_code == 200
    assert "Submitted" in response.text and combo.test_name in response.text
    assert 'data-testid="timeline"' in response.text and "2099-06-01 09:00" in response.text


def test_form_errors_are_shown_per_field_and_nothing_is_stored(
    client: TestClient, system: System, requester: Actor
) -> None:
    login(client, "rita")
    combo = applicable(system)
    token = csrf_from(client, "/requests/new")
    form = {k: str(v) for k, v in combo.body(preferred_date="2001-01-01T09:00", uut="nope").items()}
    response = client.post("/requests/new", data={**form, "variables": "{not json", "csrf_token": token})
    assert response.status_code == 422
    assert 'data-testid="error-variables"' in response.text and "not valid JSON" in response.text
    response = client.post("/requests/new", data={**form, "csrf_token": token})
    assert response.status_code == 422
    assert 'data-testid="error-uut"' in response.text and 'data-testid="error-preferred_date"' in response.text
    with system.database.transaction() as session:
        assert sum(service.counts_by_status(session=session).values()) == 0


def test_request_list_and_detail_respect_ownership(
    client: TestClient, system: System, requester: Actor, other_requester: Actor
) -> None:
    combo = applicable(system)
    mine = submit_via_api(client, requester, combo.body())
    theirs = submit_via_api(client, other_requester, combo.body())
    login(client, "rita")
    listing = client.get("/requests").text
    assert mine in listing and theirs not in listing
    # Another's request answers like an unknown one (404), not 403: numbers cannot be probed.
    hidden = client.get(f"/requests/{theirs}")
    assert hidden.status_code == 404 and f"{theirs!r} does not exist" in hidden.text.replace("&#39;", "'")
    assert client.get("/requests/TR-1900-000001").status_code == 404
    filtered = client.get("/requests", params={"status": "Cancelled"}).text
    assert mine not in filtered and 'data-testid="no-requests"' in filtered


def test_cancel_from_the_detail_page(client: TestClient, system: System, requester: Actor) -> None:
    number = submit_via_api(client, requester, applicable(system).body())
    login(client, "rita")
    token = csrf_from(client, f"/requests/{number}")
    page = client.post(f"/requests/{number}/cancel", data={"csrf_token": token, "reason": "duplicate"})
    assert page.status_code == 200 and "Cancelled" in page.text and "duplicate" in page.text
    assert 'data-testid="cancel"' not in page.text


def test_static_assets_are_served_locally(client: TestClient) -> None:
    html = client.get("/login").text
    assert "cdn" not in html.lower() and "https://" not in html
    for path in (
        "/static/vendor/bootstrap/bootstrap.min.css",
        "/static/vendor/htmx/htmx.min.js",
        "/static/vendor/bootstrap/bootstrap.bundle.min.js",
        "/static/css/fastlims.css",
    ):
        assert client.get(path).status_code == 200, path


def test_health_metrics_and_openapi(client: TestClient, system: System, requester: Actor, manager: Actor) -> None:
    submit_via_api(client, requester, applicable(system).body())
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    metrics = client.get("/metrics", headers=manager.headers).text
    assert 'fastlims_test_requests{status="Submitted"} 1.0' in metrics
    assert 'fastlims_http_requests_total{method="POST",route="/api/v1/test-requests",status="201"} 1.0' in metrics
    spec = client.get("/openapi.json").json()
    assert "/api/v1/test-requests" in spec["paths"] and client.get("/docs").status_code == 200


def test_the_form_names_every_procedure_problem_and_the_detail_page_shows_the_procedure(
    client: TestClient, system: System, requester: Actor
) -> None:
    import html
    import json

    login(client, "rita")
    combo = applicable(system)
    token = csrf_from(client, "/requests/new")
    form = {k: str(v) for k, v in combo.body(preferred_date="2099-06-01T09:00").items()}
    bad = json.dumps({"test_procedures": ["Charge at 50 A until 4.2 V", "Rest"]})
    response = client.post("/requests/new", data={**form, "variables": bad, "csrf_token": token})
    assert response.status_code == 422
    shown = html.unescape(re.search(r'data-testid="error-variables">([^<]*)<', response.text).group(1))  # type: ignore[union-attr]
    assert shown.startswith("test_procedures: steps[0] (Charge at 50 A until 4.2 V), line 1: charge current 50 A")
    assert "; test_procedures: steps[1] (Rest), line 2: this step could run forever" in shown
    good = json.dumps({"test_procedures": ["Charge at 0.5C until 4.2 V", "Rest for 1 hour"]})
    response = client.post("/requests/new", data={**form, "variables": good, "csrf_token": token})
    assert response.status_code == 200
    procedure = html.unescape(re.search(r'data-testid="procedure">([^<]*)<', response.text).group(1))  # type: ignore[union-attr]
    assert procedure.splitlines()[1:] == ["Charge at 0.5C until 4.2 V", "Rest for 1 hour"]
    assert "Procedure <span" in response.text and "(request)" in response.text

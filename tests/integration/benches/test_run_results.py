"""A request's runs as a battery engineer reads them, after real virtual runs of real procedures
on the reference FMUs through the worker: the runs API (list and one run), who may read it, and
the request page's outcomes table and voltage/current plots."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fastlims.requests import service as requests
from fastlims.requests.states import Status
from fastlims.runs import plots
from fastlims.users import service as users
from fastlims.web.app import create_app
from tests.conftest import Actor, add_user
from tests.integration.benches.conftest import Bench
from tests.integration.pipeline.helpers import wait_status
from tests.integration.test_auth import csrf_from

RITA_PASSWORD = "correct-horse-battery"  # tests.integration.pipeline.helpers.prepare_catalog
# The reference cell: 5 Ah; a DoE-varied C-rate, run at 1C: 5 A for 600 s, then a rest.
DISCHARGE = """\
# variable: rate value=0.5 min=0.2 max=2 unit=C description="discharge C-rate"
Discharge at {rate}C for 10 minutes
Rest for 2 minutes
"""
# From 80 % state of charge, an hour at 1C runs the cell past its 4.2 V into the 4.22 V safety limit.
OVERCHARGE = "Charge at 1C for 2 hours"
LIST_KEYS = {
    "run_id", "bench", "kind", "state", "planned_start", "planned_end", "started_at", "ended_at",
    "end_cause", "reason", "factors", "outcomes", "twin_of", "comparison",
}  # fmt: skip


def number_of(bench: Bench, test_uuid: str) -> str:
    with bench.system.database.transaction() as session:
        return requests.get_by_uuid(session=session, test_uuid=test_uuid).request_number


def rita(bench: Bench) -> Actor:
    with bench.system.database.transaction() as session:
        return Actor("rita", users.create_token(session=session, username="rita"))


def finished(bench: Bench) -> dict[str, Any]:
    """A completed 1C discharge (two runs) and a run stopped by its safety limit, both Rita's."""
    done, done_runs = bench.request(
        runs=2, procedure=DISCHARGE, values={"rate": 1.0}, parameters={"SOC0": 0.9}
    )  # fmt: skip
    tripped, (tripped_run,) = bench.request(procedure=OVERCHARGE, parameters={"SOC0": 0.8})
    wait_status(bench.system, done, Status.Completed, timeout_s=90)
    wait_status(bench.system, tripped, Status.Failed, timeout_s=90)
    return {
        "done": number_of(bench, done),
        "done_runs": done_runs,
        "tripped": number_of(bench, tripped),
        "tripped_run": tripped_run,
    }


def local_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"{text} has no offset"
    return value


def test_the_runs_api_lists_each_run_with_factors_and_outcomes_and_details_its_steps(make_bench: Any) -> None:
    bench: Bench = make_bench()
    made = finished(bench)
    http = TestClient(create_app(bench.system))  # no lifespan: the services are the fixture's
    owner = rita(bench)
    zone_offset = datetime.now(bench.system.zone).utcoffset()

    listed = http.get(f"/api/v1/test-requests/{made['done']}/runs", headers=owner.headers)
    assert listed.status_code == 200, listed.text
    runs = listed.json()
    assert [r["run_id"] for r in runs] == sorted(made["done_runs"])
    for run in runs:
        assert set(run) == LIST_KEYS
        assert run["twin_of"] is None and run["comparison"] is None  # no physical run: no twin
        assert run["bench"].startswith("virtual-") and run["kind"] == "virtual" and run["state"] == "completed"
        assert run["end_cause"] == "procedure_complete" and "completed at test time 720 s" in run["reason"]
        assert run["factors"] == {"SOC0": 0.9, "rate": 1.0}
        for key in ("planned_start", "planned_end", "started_at", "ended_at"):
            assert local_time(run[key]).utcoffset() == zone_offset, f"{key} in the lab's zone"
        assert local_time(run["planned_start"]) <= local_time(run["started_at"]) < local_time(run["ended_at"])
        outcomes = run["outcomes"]
        assert outcomes["discharge_capacity_Ah"] == pytest.approx(5.0 * 600 / 3600, rel=0.01)
        assert outcomes["discharge_energy_Wh"] > 0 and outcomes["charge_capacity_Ah"] is None
        assert outcomes["min_voltage_V"] < outcomes["max_voltage_V"] <= 4.2
        assert outcomes["max_temperature_C"] > 0 and outcomes["dcir_ohm"] is None, "no pulse, no DCIR"
        assert outcomes["verdict"]["result"] in ("pass", "fail", "n/a") and outcomes["verdict"]["reason"]

    run_id = runs[0]["run_id"]
    one = http.get(f"/api/v1/test-requests/{made['done']}/runs/{run_id}", headers=owner.headers)
    assert one.status_code == 200, one.text
    detail = one.json()
    assert set(detail) == LIST_KEYS | {"steps", "cycles"}
    assert {k: detail[k] for k in LIST_KEYS} == runs[0], "the list's answer, and more"
    step, rest = detail["steps"]
    assert step["type"] == "cc" and step["text"] == "Discharge at 1C for 10 minutes"
    assert rest["type"] == "rest" and rest["start_time_s"] == step["end_time_s"]
    assert rest["voltage_end_V"] > step["voltage_end_V"], "the voltage relaxes at rest"
    assert step["end_reason"] == "time_s" and step["duration_s"] == pytest.approx(600, abs=1.0)
    assert step["discharge_Ah"] == pytest.approx(detail["outcomes"]["discharge_capacity_Ah"])
    assert step["mean_current_A"] == pytest.approx(-5.0, rel=1e-6), "BDF sign: negative = discharge"
    assert isinstance(detail["cycles"], list)

    failed = http.get(f"/api/v1/test-requests/{made['tripped']}/runs", headers=owner.headers).json()
    (trip,) = failed
    assert trip["run_id"] == made["tripped_run"] and trip["state"] == "failed"
    assert trip["end_cause"] == "safety_limit" and trip["factors"] == {"SOC0": 0.8}
    assert "safety limit max_voltage_V = 4.22 V" in trip["reason"] and "test time" in trip["reason"]
    assert trip["outcomes"]["max_voltage_V"] > 4.22
    tripped = http.get(f"/api/v1/test-requests/{made['tripped']}/runs/{made['tripped_run']}", headers=owner.headers)
    (charge,) = tripped.json()["steps"]
    assert charge["type"] == "cc" and charge["end_reason"] == "safety_limit"
    assert charge["duration_s"] < 3600, "stopped long before its 2 hours"


def test_the_runs_api_answers_only_those_who_may_see_the_request(make_bench: Any) -> None:
    bench: Bench = make_bench()
    uuid, (run_id,) = bench.request()
    wait_status(bench.system, uuid, Status.Completed, timeout_s=60)
    number = number_of(bench, uuid)
    http = TestClient(create_app(bench.system))
    otto = add_user(bench.system, "otto", "requester")
    mia = add_user(bench.system, "mia", "lab_manager")
    runs, one = f"/api/v1/test-requests/{number}/runs", f"/api/v1/test-requests/{number}/runs/{run_id}"
    # Another requester's request: refused as GET /api/v1/test-requests/{number} refuses it.
    for path in (runs, one):
        refused = http.get(path, headers=otto.headers)
        assert refused.status_code == 404 and run_id not in refused.text  # as if it did not exist
        assert http.get(path).status_code == 401
    assert http.get(runs, headers=mia.headers).json()[0]["run_id"] == run_id, "a lab manager sees every request"
    assert http.get(one, headers=rita(bench).headers).status_code == 200
    unknown_run = http.get(f"{runs}/{uuid}.run-999", headers=mia.headers)
    assert unknown_run.status_code == 404 and "run-999" in unknown_run.json()["detail"]
    assert http.get("/api/v1/test-requests/TR-1999-000001/runs", headers=mia.headers).status_code == 404
    schema = http.get("/openapi.json").json()
    answer = schema["paths"]["/api/v1/test-requests/{request_number}/runs/{run_id}"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/RunDetailOut")
    described = schema["components"]["schemas"]
    assert set(described["RunOut"]["properties"]) == LIST_KEYS
    assert {"discharge_capacity_Ah", "dcir_ohm", "verdict"} <= set(described["RunOutcomes"]["properties"])


def page_login(http: TestClient) -> None:
    token = csrf_from(http, "/login")
    response = http.post(
        "/login",
        data={"username": "rita", "password": RITA_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def test_the_request_page_shows_the_outcomes_table_and_a_plot_per_run(make_bench: Any) -> None:
    bench: Bench = make_bench()
    made = finished(bench)
    http = TestClient(create_app(bench.system))
    page_login(http)

    html = http.get(f"/requests/{made['done']}").text
    table = re.search(r'<table[^>]*data-testid="outcomes".*?</table>', html, re.S)
    assert table, "the outcomes table"
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", table.group(0))
    assert headers == [
        "Run", "SOC0", "rate", "End", "Discharge capacity / Ah", "Discharge energy / Wh",
        "Min voltage / V", "Max voltage / V", "Max temperature / °C", "Verdict",
    ], "only the columns some run has"  # fmt: skip
    for run_id in made["done_runs"]:
        row = re.search(rf'<tr data-run-id="{re.escape(run_id)}"[^>]*>(.*?)</tr>', table.group(0), re.S)
        assert row, run_id
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]
        assert cells[1:4] == ["0.9", "1", "procedure_complete"]
        assert float(cells[4]) == pytest.approx(5.0 * 600 / 3600, rel=0.01)
        section = re.search(rf'<section[^>]*data-run-id="{re.escape(run_id)}".*?</section>', html, re.S)
        assert section, f"a section for {run_id}"
        svg = re.search(r'<figure[^>]*data-testid="run-plot"[^>]*>\s*(<svg\b.*?</svg>)', section.group(0), re.S)
        assert svg, f"an inline plot for {run_id}"
        for label in ("Voltage / V", "Current / A (positive = charge)", "Test time / min", "step boundary"):
            assert label in svg.group(1), label
    assert html.count('data-testid="run-plot"') == 2 and html.count("<svg") == 2
    assert 'data-testid="run-reason"' not in html

    # Drawn once, then read back from storage beside the results.
    with bench.system.database.transaction() as session:
        request = requests.get(session=session, request_number=made["done"])
        folder = f"{request.simulation_folder}/simulation-results/{made['done_runs'][0]}"
    assert bench.pipeline.storage.get(f"{folder}/{plots.PLOT_FILE}").decode().startswith(f"<!-- {plots.FORMAT} -->")
    assert http.get(f"/requests/{made['done']}").text.count('data-testid="run-plot"') == 2

    failed = http.get(f"/requests/{made['tripped']}").text
    reason = re.search(r'data-testid="run-reason">(.*?)</div>', failed, re.S)
    assert reason and "Safety limit:" in reason.group(1) and "max_voltage_V = 4.22 V" in reason.group(1)
    row = re.search(
        rf'<tr data-run-id="{re.escape(made["tripped_run"])}" class="table-danger">(.*?)</tr>', failed, re.S
    )
    assert row and "safety_limit" in row.group(1)
    assert "ended: safety_limit" in failed, "the plot marks where the run was stopped"

"""The bench registry managed without touching the database: ``fastlims benches``, the REST API
and the Benches page, with the same checks everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from fastlims.benches import registry
from fastlims.bootstrap import System
from fastlims.cli import main
from tests.conftest import Actor
from tests.integration.test_auth import csrf_from, login


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FASTLIMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FASTLIMS_DATABASE_URL", raising=False)
    return tmp_path


def test_the_cli_adds_lists_changes_disables_and_enables_benches(env: Path) -> None:
    runner = CliRunner()
    calendar = env / "calendar.yaml"
    calendar.write_text("timezone: Europe/Berlin\nclosed_dates: ['2026-12-24']\n")
    added = runner.invoke(
        main,
        ["benches", "add", "rig-1", "--kind", "physical", "--capability", "cell", "--capability", "module"]
        + ["--max-current", "100", "--max-voltage", "60", "--min-voltage", "2", "--channels", "8"]
        + ["--temperature-chamber", "--calendar", str(calendar)],
    )
    assert added.exit_code == 0, added.output
    assert "rig-1\tphysical\tactive\t100 A\t2..60 V\t8 ch\tchamber\tcell,module" in added.output
    virtual = runner.invoke(main, ["benches", "add", "veos-1", "--kind", "virtual"])
    assert virtual.exit_code == 0 and "any current\tany voltage" in virtual.output

    unrated = runner.invoke(main, ["benches", "add", "rig-2", "--kind", "physical"])
    assert unrated.exit_code == 1
    assert "a physical bench needs max_current_A and max_voltage_V (--max-current, --max-voltage)" in unrated.output
    inverted = runner.invoke(main, ["benches", "set", "rig-1", "--min-voltage", "70"])
    assert inverted.exit_code == 1 and "min_voltage_V 70 V must be below max_voltage_V 60 V" in inverted.output
    bad_calendar = env / "bad.json"
    bad_calendar.write_text('{"weekly_hours": []}')
    refused = runner.invoke(main, ["benches", "set", "rig-1", "--calendar", str(bad_calendar)])
    assert refused.exit_code == 1 and "7 weekdays" in refused.output
    assert runner.invoke(main, ["benches", "set", "rig-1"]).exit_code == 2  # nothing to change
    ghost = runner.invoke(main, ["benches", "disable", "ghost"])
    assert ghost.exit_code == 1 and "no bench 'ghost' (benches: rig-1, veos-1)" in ghost.output

    changed = runner.invoke(main, ["benches", "set", "rig-1", "--max-current", "20", "--no-temperature-chamber"])
    assert changed.exit_code == 0 and "20 A\t2..60 V\t8 ch\tno chamber" in changed.output
    assert runner.invoke(main, ["benches", "disable", "rig-1"]).exit_code == 0
    active = runner.invoke(main, ["benches", "list"]).output.splitlines()
    every = runner.invoke(main, ["benches", "list", "--all"]).output.splitlines()
    assert [line.split("\t")[0] for line in active] == ["veos-1"]
    assert [line.split("\t")[:3] for line in every] == [
        ["rig-1", "physical", "disabled"],
        ["veos-1", "virtual", "active"],
    ]
    assert runner.invoke(main, ["benches", "enable", "rig-1"]).exit_code == 0
    assert runner.invoke(main, ["benches", "list"]).output.splitlines()[0].startswith("rig-1\tphysical\tactive\t20 A")


def test_the_api_lets_a_lab_manager_manage_benches_and_everyone_read_them(
    client: TestClient, system: System, manager: Actor, requester: Actor
) -> None:
    body = {"name": "rig-9", "kind": "physical", "capabilities": ["pack"], "max_current_A": 400, "max_voltage_V": 450}
    assert client.post("/api/v1/benches", json=body, headers=requester.headers).status_code == 403
    created = client.post("/api/v1/benches", json=body, headers=manager.headers)
    assert created.status_code == 201, created.text
    assert created.json() | {"calendar": None} == {
        "name": "rig-9",
        "kind": "physical",
        "active": True,
        "capabilities": ["pack"],
        "calendar": None,
        "max_current_A": 400.0,
        "min_voltage_V": 0.0,
        "max_voltage_V": 450.0,
        "channels": 1,
        "temperature_chamber": False,
        "reported": None,  # it has not come online
    }
    missing = client.post("/api/v1/benches", json={"name": "rig-8", "kind": "physical"}, headers=manager.headers)
    assert missing.status_code == 422 and "needs max_current_A and max_voltage_V" in missing.text
    negative = client.post(
        "/api/v1/benches", json={**body, "name": "rig-7", "max_current_A": -1}, headers=manager.headers
    )
    assert negative.status_code == 422 and "max_current_A" in negative.text
    assert client.post("/api/v1/benches", json=body, headers=manager.headers).status_code == 422  # name in use

    patched = client.patch("/api/v1/benches/rig-9", json={"temperature_chamber": True}, headers=manager.headers)
    assert patched.status_code == 200 and patched.json()["temperature_chamber"] is True
    assert client.patch("/api/v1/benches/rig-9", json={"channels": 2}, headers=requester.headers).status_code == 403
    assert client.patch("/api/v1/benches/nope", json={"channels": 2}, headers=manager.headers).status_code == 404
    assert client.post("/api/v1/benches/rig-9/disable", headers=manager.headers).json()["active"] is False
    assert client.get("/api/v1/benches", headers=requester.headers).json() == []
    listed = client.get("/api/v1/benches?include_disabled=true", headers=requester.headers).json()
    assert [(b["name"], b["active"], b["temperature_chamber"]) for b in listed] == [("rig-9", False, True)]


def test_the_benches_page_shows_the_registry_and_lets_only_a_lab_manager_change_it(
    client: TestClient, system: System, manager: Actor, requester: Actor
) -> None:
    with system.database.transaction() as session:
        registry.add(session=session, name="rig-1", kind="physical", ratings=registry.Ratings(50.0, 0.0, 5.0))
    login(client, "rita")
    page = client.get("/benches")
    assert page.status_code == 200 and 'data-bench="rig-1"' in page.text
    assert 'data-testid="add-bench"' not in page.text and 'data-testid="save-rig-1"' not in page.text
    token = csrf_from(client, "/benches")
    refused = client.post("/benches", data={"csrf_token": token, "name": "rig-2", "kind": "virtual"})
    assert refused.status_code == 403
    client.post("/logout", data={"csrf_token": token})

    login(client, "mia")
    token = csrf_from(client, "/benches")
    form = {"csrf_token": token, "name": "rig-2", "kind": "physical", "capabilities": "cell module"}
    form |= {"max_current": "300", "min_voltage": "", "max_voltage": "oops", "channels": "4", "calendar": ""}
    wrong = client.post("/benches", data=form)
    assert wrong.status_code == 422 and "max voltage: &#39;oops&#39; is not a number" in wrong.text
    assert 'value="rig-2"' in wrong.text  # the form keeps what was typed
    added = client.post("/benches", data={**form, "max_voltage": "60", "temperature_chamber": "1"})
    assert added.status_code == 200 and 'data-bench="rig-2"' in added.text
    saved = client.post(
        "/benches/rig-1",
        data={"csrf_token": token, "capabilities": "cell", "max_current": "80", "min_voltage": "0", "max_voltage": "5"},
    )
    assert saved.status_code == 200
    disabled = client.post("/benches/rig-2/disable", data={"csrf_token": token})
    assert disabled.status_code == 200 and 'data-testid="enable-rig-2"' in disabled.text
    forged = client.post("/benches/rig-1/disable", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    with system.database.transaction() as session:
        rows = {r.name: r for r in registry.get_all(session=session, active_only=False)}
        assert (rows["rig-1"].max_current_A, rows["rig-1"].capabilities, rows["rig-1"].is_active) == (
            80.0,
            frozenset({"cell"}),
            True,
        )
        assert (rows["rig-2"].capabilities, rows["rig-2"].temperature_chamber, rows["rig-2"].is_active) == (
            frozenset({"cell", "module"}),
            True,
            False,
        )
    assert re.search(r'name="max_current" value="80.0"', client.get("/benches").text)


def test_what_a_physical_bench_last_reported_is_in_the_api_and_on_the_page(
    client: TestClient, system: System, manager: Actor, requester: Actor
) -> None:
    from fastlims.benches.gateway.models import BenchLiveState

    with system.database.transaction() as session:
        rig = registry.Ratings(max_current_A=50.0, max_voltage_V=5.0)
        registry.add(session=session, name="rig-5", kind="physical", ratings=rig)
        registry.add(session=session, name="rig-6", kind="physical", ratings=rig)
        session.add(
            BenchLiveState(bench="rig-5", state="running", run_id="abc.run-001", capabilities_json='{"channels": 1}')
        )
    listed = {b["name"]: b for b in client.get("/api/v1/benches", headers=requester.headers).json()}
    assert listed["rig-5"]["reported"]["state"] == "running" and listed["rig-5"]["reported"]["run_id"] == "abc.run-001"
    assert listed["rig-5"]["reported"]["capabilities"] == {"channels": 1}
    assert listed["rig-6"]["reported"] is None  # never online
    login(client, "rita")
    page = client.get("/benches").text
    assert 'data-testid="reported-rig-5"><span class="badge text-bg-primary">running</span>' in page
    assert "never online" in page


def test_an_emulated_bench_carries_its_time_scale(env: Path) -> None:
    """`--time-scale` is the emulator's --speed: shown in the list, kept in the registry, checked."""
    runner = CliRunner()
    rated = ["--kind", "physical", "--max-current", "50", "--max-voltage", "5"]
    added = runner.invoke(main, ["benches", "add", "emu-1", *rated, "--time-scale", "1000"])
    assert added.exit_code == 0, added.output
    assert added.output.rstrip().endswith("1000x real time")
    real = runner.invoke(main, ["benches", "add", "rig-1", *rated])
    assert real.exit_code == 0 and "real time" not in real.output  # a real bench: 1, not shown
    slow = runner.invoke(main, ["benches", "set", "emu-1", "--time-scale", "0.5"])
    assert slow.exit_code == 1 and "time_scale must be 1 (a real bench) to 1000" in slow.output
    changed = runner.invoke(main, ["benches", "set", "emu-1", "--time-scale", "100"])
    assert changed.exit_code == 0 and "100x real time" in changed.output

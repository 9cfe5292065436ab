"""Requests carry their procedure, on SQLite and PostgreSQL: chosen and checked at submit (422s
naming steps and lines), stored unresolved, sent to the Digital Twin resolved with the UUT's
ratings; a test name's default over the API; the procedure JSON Schema."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fastlims.bootstrap import System
from fastlims.catalog import service as catalog
from fastlims.catalog.models import UUT
from fastlims.messaging.models import OutboxMessage
from fastlims.procedures.defaults import default_procedure
from fastlims.procedures.model import Procedure, ResolvedProcedure, procedure_json_schema
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.resolve import resolve
from fastlims.requests import service
from fastlims.requests.models import TestRequest
from tests.catalog_helpers import Combination, applicable
from tests.conftest import Actor

# docs/mqtt.md's own example: the seed's Figure 2 variables with "Name": "current".
DOCS_EXAMPLE = {
    "test_procedures": [],
    "custom_profile": {
        "Name": "current",
        "type": "input",
        "unit": "mA",
        "values": [
            {"timestamp": 0, "value": "1.0"},
            {"timestamp": 1, "value": "2.0"},
            {"timestamp": 2, "value": "3.0"},
        ],
    },
    "FMU_signal_connections": [{"InSignalReference": "FMU_04/Port_C", "OutSignalReference": "FMU_03/Port_E"}],
}


def request_count(system: System) -> int:
    with system.database.transaction() as session:
        return session.scalar(select(func.count()).select_from(TestRequest)) or 0


def ratings(system: System, code: str) -> UutRatings:
    with system.database.transaction() as session:
        return UutRatings.from_mapping(catalog.uut_ratings(session=session, code=code))


def problems(response) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    return [(".".join(map(str, d["loc"][1:])), d["msg"]) for d in response.json()["detail"]]


def request_message(system: System, test_uuid: str) -> dict:
    with system.database.transaction() as session:
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.topic == f"requests/{test_uuid}"))
        assert row is not None
        return json.loads(row.payload)


def test_an_empty_test_procedures_runs_the_default_and_the_dt_gets_it_resolved(
    client: TestClient, system: System, requester: Actor
) -> None:
    combo = applicable(system)
    response = client.post("/api/v1/test-requests", json=combo.body(), headers=requester.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    uut = ratings(system, combo.uut)
    default = default_procedure(combo.test_name, uut, standard=combo.standard)
    assert body["procedure_source"] == "default" and body["procedure"] == default.to_json()
    with system.database.transaction() as session:
        stored = service.get(session=session, request_number=body["request_number"])
        assert service.procedure_of(stored) == default
        assert service.profile_points(stored) is None
    message = request_message(system, body["test_UUID"])
    (sent,) = message["variables"]["test_procedures"]
    assert ResolvedProcedure.model_validate(sent) == resolve(default, uut)
    assert sent["uut"] == combo.uut and sent["safety"]["max_voltage_V"] == pytest.approx(uut.max_voltage_V + 0.02)
    assert message["UUT_ratings"] == {
        "code": uut.code,
        "chemistry": uut.chemistry,
        "format": uut.format,
        "series_count": uut.series_count,
        "parallel_count": uut.parallel_count,
        "nominal_capacity_Ah": uut.nominal_capacity_Ah,
        "nominal_voltage_V": uut.nominal_voltage_V,
        "min_voltage_V": uut.min_voltage_V,
        "max_voltage_V": uut.max_voltage_V,
        "max_charge_current_A": uut.max_charge_current_A,
        "max_discharge_current_A": uut.max_discharge_current_A,
        "max_pulse_current_A": uut.max_pulse_current_A,
        "min_temperature_C": uut.min_temperature_C,
        "max_temperature_C": uut.max_temperature_C,
    }


def test_the_docs_current_profile_is_the_test_at_submit(client: TestClient, system: System, requester: Actor) -> None:
    combo = applicable(system)
    response = client.post("/api/v1/test-requests", json=combo.body(variables=DOCS_EXAMPLE), headers=requester.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["procedure_source"] == "profile"
    assert body["procedure"]["steps"] == [{"type": "profile", "quantity": "current", "source": "custom_profile"}]
    with system.database.transaction() as session:
        stored = service.get(session=session, request_number=body["request_number"])
        assert service.profile_points(stored) == [(0.0, 0.001), (1.0, 0.002), (2.0, 0.003)]  # mA -> A, charge > 0
    message = request_message(system, body["test_UUID"])
    (sent,) = message["variables"]["test_procedures"]
    assert sent["steps"][0]["points"] == [[0.0, 0.001], [1.0, 0.002], [2.0, 0.003]]
    # the seed's fields as they were: the profile as given, its values written as strings
    assert message["variables"]["custom_profile"]["values"][2] == {"timestamp": 2.0, "value": "3.0"}
    assert message["variables"]["FMU_signal_connections"] == DOCS_EXAMPLE["FMU_signal_connections"]


def test_a_text_procedure_is_stored_as_json_and_resolved_for_the_dt(
    client: TestClient, system: System, requester: Actor
) -> None:
    combo = applicable(system)
    lines = ["Set ambient to 25 degC and rest for 1 hour", "Charge at 0.5C until 4.2 V", "Hold at 4.2 V until C/20"]
    body = client.post(
        "/api/v1/test-requests", json=combo.body(variables={"test_procedures": lines}), headers=requester.headers
    ).json()
    assert body["procedure_source"] == "request"
    assert body["variables"]["test_procedures"] == lines  # the requester's own words are kept
    procedure = Procedure.model_validate(body["procedure"])
    assert [s.type for s in procedure.steps] == ["ambient", "cc", "cv"]
    sent = request_message(system, body["test_UUID"])["variables"]["test_procedures"][0]
    assert sent["steps"][1]["current_A"] == pytest.approx(0.5 * ratings(system, combo.uut).nominal_capacity_Ah)
    assert [s["text"] for s in sent["steps"]] == lines  # each resolved step keeps how it reads


def test_every_problem_of_a_procedure_is_a_422_naming_step_and_line_and_nothing_is_stored(
    client: TestClient, system: System, requester: Actor
) -> None:
    combo = applicable(system)
    uut = ratings(system, combo.uut)
    over = uut.max_discharge_current_A * 2
    lines = [
        "Charge at 0.5C until 4.2 V",
        f"Discharge at {over:g} A until 2.5 V",
        "Wiggle the cell",
        "Rest",
        "Repeat times:",
        "    Rest for 1 hour",
    ]
    response = client.post(
        "/api/v1/test-requests", json=combo.body(variables={"test_procedures": lines}), headers=requester.headers
    )
    found = problems(response)
    assert {field for field, _ in found} == {"variables.test_procedures"}
    messages = [message for _, message in found]
    assert messages[0].startswith("line 3 ('Wiggle the cell'): unknown step 'Wiggle'")
    assert messages[1].startswith("line 5 ('Repeat times:'): expected 'Repeat N times:'")
    assert messages[2] == (
        f"steps[1] (Discharge at {over:g} A until 2.5 V), line 2: discharge current {over:g} A is above the UUT's"
        f" MaxDischargeCurrentA {uut.max_discharge_current_A:g} A"
    )
    assert messages[3] == "steps[3] (Rest), line 4: this step could run forever: add a termination, e.g. 'for 1 hour'"
    assert len(messages) == 4
    assert request_count(system) == 0


@pytest.mark.parametrize(
    ("variables", "field", "fragment"),
    [
        (
            {"test_procedures": ["Hold at 9 V until C/20"]},
            "variables.test_procedures",
            "steps[0] (Hold at 9 V until C/20), line 1: hold voltage 9 V is outside the UUT's voltage limits",
        ),
        (
            {"test_procedures": [{"steps": [{"type": "cc", "direction": "charge", "c_rate": 0.5}]}]},
            "variables.test_procedures",
            "steps[0] (Charge at 0.5C): this step could run forever: add a termination, e.g. 'until 2.5 V'",
        ),
        (
            {"test_procedures": [{"signal": "Cell.V", "op": "<=", "value": 2.5}]},
            "variables.test_procedures",
            "is a stop condition ({signal, op, value}), which requests no longer take",
        ),
        (
            {"test_procedures": ["Rest for 1 hour"], **{"custom_profile": DOCS_EXAMPLE["custom_profile"]}},
            "variables.test_procedures",
            "custom_profile names the UUT's current but no step of the procedure follows it",
        ),
        (
            {"custom_profile": {**DOCS_EXAMPLE["custom_profile"], "unit": "V"}},  # type: ignore[dict-item]
            "variables.custom_profile.unit",
            "unit 'V' is not one the current role takes",
        ),
        (
            {"test_procedures": ["Charge at 0.5C until 4.2 V", "External crush for 10 minutes"]},
            "bench",
            "steps[1] (External crush for 10 minutes) needs a crush rig: a virtual bench cannot run it",
        ),
    ],
)
def test_a_procedure_that_cannot_run_is_refused_at_submit(
    client: TestClient, system: System, requester: Actor, variables: dict, field: str, fragment: str
) -> None:
    combo = applicable(system, bench="Virtual")
    response = client.post("/api/v1/test-requests", json=combo.body(variables=variables), headers=requester.headers)
    found = problems(response)
    assert any(name == field and fragment in message for name, message in found), found
    assert request_count(system) == 0


def _combination(system: System, test_code: str, bench: str) -> Combination:
    with system.database.transaction() as session:
        for uut in catalog.get_uuts(session=session):
            for use_case in catalog.get_use_cases(session=session):
                for standard in catalog.get_standards(session=session):
                    codes = {
                        t.code
                        for t in catalog.applicable_test_names(
                            session=session, uut=uut.code, use_case=use_case.name, standard=standard.code
                        )
                    }
                    if test_code in codes:
                        return Combination(uut.code, use_case.name, standard.code, test_code, bench)
    raise AssertionError(f"{test_code} applies nowhere")


def test_a_test_no_virtual_bench_can_perform_is_refused_saying_why(
    client: TestClient, system: System, requester: Actor
) -> None:
    combo = _combination(system, "UN383-T1", "Virtual")  # a "both" test whose default needs an altitude chamber
    found = problems(client.post("/api/v1/test-requests", json=combo.body(), headers=requester.headers))
    assert found == [
        (
            "bench",
            "test 'UN383-T1' on a Virtual bench: altitude needs an altitude (vacuum) chamber: a virtual bench cannot"
            " run it unless the Digital Twin's models cover it",
        )
    ]
    physical = client.post(
        "/api/v1/test-requests", json=_combination(system, "UN383-T1", "Physical").body(), headers=requester.headers
    )
    assert physical.status_code == 201, physical.text


def test_a_uut_without_ratings_is_a_422_naming_them(client: TestClient, system: System, requester: Actor) -> None:
    combo = applicable(system)
    with system.database.transaction() as session:
        uut = session.scalar(select(UUT).where(UUT.code == combo.uut))
        assert uut is not None
        uut.max_voltage_V = None
        uut.max_pulse_current_A = None
    found = problems(client.post("/api/v1/test-requests", json=combo.body(), headers=requester.headers))
    assert len(found) == 1 and found[0][0] == "uut"
    assert found[0][1].startswith(f"UUT {combo.uut!r} has no ratings for max_voltage_V, max_pulse_current_A:")
    assert request_count(system) == 0


# --------------------------------------------------------------------------- the API's defaults


def test_a_test_names_default_procedure_for_a_uut(client: TestClient, system: System, requester: Actor) -> None:
    response = client.get(
        "/api/v1/test-names/PERF-CAPACITY-RT/procedure", params={"uut": "Gen3b - Cell"}, headers=requester.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    uut = ratings(system, "Gen3b - Cell")
    default = default_procedure("PERF-CAPACITY-RT", uut)
    assert body["test_name"] == "PERF-CAPACITY-RT" and body["uut"] == "Gen3b - Cell"
    assert body["standard"] == "IEC62660"
    assert Procedure.model_validate(body["procedure"]) == default
    assert ResolvedProcedure.model_validate(body["resolved"]) == resolve(default, uut)
    assert body["text"].splitlines()[0] == "# name: Capacity and energy at room temperature (IEC62660, Gen3b - Cell)"
    assert body["bench_kinds"] == ["physical", "virtual"]
    assert body["expected_duration_s"] > 3600
    vibration = client.get(
        "/api/v1/test-names/MECH-VIBRATION/procedure", params={"uut": "Gen3b - Cell"}, headers=requester.headers
    ).json()
    assert vibration["bench_kinds"] == ["physical"]
    assert vibration["criterion"]["text"]  # quoted from the standard


@pytest.mark.parametrize(
    ("path", "params", "status", "fragment"),
    [
        ("NO-SUCH-TEST", {"uut": "Gen3b - Cell"}, 404, "test name 'NO-SUCH-TEST' is not in the catalog"),
        ("PERF-CAPACITY-RT", {"uut": "Gen9 - Cell"}, 404, "UUT 'Gen9 - Cell' is not in the catalog"),
        ("PERF-CAPACITY-RT", {"uut": "Gen3b - Cell", "standard": "ISO 9999"}, 404, "standard 'ISO 9999' is not"),
        (
            "PERF-CAPACITY-RT",
            {"uut": "Gen3b - Cell", "standard": "UL1642"},
            422,
            "PERF-CAPACITY-RT has no default procedure for standard 'UL1642'",
        ),
        ("PERF-CAPACITY-RT", {}, 422, "Field required"),
    ],
)
def test_a_default_that_cannot_be_given_says_why(
    client: TestClient, requester: Actor, path: str, params: dict, status: int, fragment: str
) -> None:
    response = client.get(f"/api/v1/test-names/{path}/procedure", params=params, headers=requester.headers)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    text = detail if isinstance(detail, str) else " ".join(d["msg"] for d in detail)
    assert fragment in text


def test_the_procedure_schema_is_public_and_both_routes_are_in_the_openapi_document(client: TestClient) -> None:
    schema = client.get("/api/schemas/procedure.json")
    assert schema.status_code == 200 and schema.json() == procedure_json_schema()
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/schemas/procedure.json" in paths
    operation = paths["/api/v1/test-names/{code}/procedure"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"code", "uut", "standard"}
    assert "422" in operation["responses"]


def test_the_asyncapi_document_shows_the_uut_ratings(client: TestClient) -> None:
    import yaml

    document = yaml.safe_load(client.get("/api/asyncapi.yaml").text)
    schemas = document["components"]["schemas"]
    request = schemas["RequestMessage"]
    assert "UUT_ratings" in request["properties"]
    assert "resolved" in request["description"] and "test_procedures" in request["description"]
    ratings_schema = json.dumps(document)
    assert "max_discharge_current_A" in ratings_schema and "nominal_capacity_Ah" in ratings_schema

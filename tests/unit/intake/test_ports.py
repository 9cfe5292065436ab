"""UUT port roles in inter_connection.json: real FMUs (the reference peer's and the tests' own C
models), each wrong declaration with its own reason naming the role and the port."""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastlims.intake.interface import FmuInterface, FmuVariable
from fastlims.intake.layout import fmus_named_in
from fastlims.intake.ports import (
    ROLES,
    check_uut_ports,
    current_sign,
    required_ports_problem,
    to_core_unit,
    uut_ports,
)
from fastlims.intake.schemas import interconnection_json_schema
from fastlims.intake.validation import check_fmu, validate_upload_set
from fastlims.peers.digital_twin import interconnection as reference_interconnection
from fastlims.peers.fmus import build_fmu as reference_fmu
from tests.unit.intake.fmu_factory import Model, Var, build_fmu, fmu_entries, zip_bytes

REFERENCE = reference_interconnection("battery_cell", "cycler")


@pytest.fixture(scope="module", params=["2.0", "3.0"])
def reference_set(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The reference Digital Twin's FMUs (units, a tunable parameter), FMI 2 and FMI 3."""
    out = tmp_path_factory.mktemp(f"reference-{request.param}")
    return {f"{m}.fmu": reference_fmu(m, request.param, out, name=m) for m in ("battery_cell", "cycler")}


def problems_of(files: dict[str, Path], document: dict[str, Any], tmp_path: Path) -> list[Any]:
    path = tmp_path / "inter_connection.json"
    path.write_text(json.dumps(document))
    return validate_upload_set({**files, "inter_connection.json": path})


def test_the_reference_peers_roles_pass(reference_set: dict[str, Path], tmp_path: Path) -> None:
    assert REFERENCE["UUT_ports"]["current"] == "cycler/current_setpoint"
    assert problems_of(reference_set, REFERENCE, tmp_path) == []
    assert uut_ports(REFERENCE) == REFERENCE["UUT_ports"]
    assert current_sign(REFERENCE) == "discharge_positive"
    assert required_ports_problem(REFERENCE) is None


def test_a_set_without_roles_is_still_accepted_and_says_what_a_procedure_needs(
    reference_set: dict[str, Path], tmp_path: Path
) -> None:
    old = {"FMU_signal_connections": REFERENCE["FMU_signal_connections"]}
    assert problems_of(reference_set, old, tmp_path) == []
    assert uut_ports(old) is None and current_sign(old) == "charge_positive"
    reason = required_ports_problem(old)
    assert reason is not None
    assert "declares no UUT_ports" in reason and "current, voltage" in reason and "docs/partners-upload.md" in reason
    only_voltage = {**old, "UUT_ports": {"voltage": "battery_cell/V"}}
    assert "has no UUT_ports role 'current'" in (required_ports_problem(only_voltage) or "")
    assert required_ports_problem(REFERENCE, ("current", "power")) is not None  # the reference has no power input


# (name, change to UUT_ports / the document, the problems' codes (the first one's message has the
# fragment and names the variable), fragment, variable)
PORT_FAULTS: list[tuple[str, dict[str, Any], str, str, str | None]] = [
    (
        "current on an output",
        {"UUT_ports": {"current": "cycler/current"}},
        "port-causality",
        "UUT_ports.current 'cycler/current' is an output variable; the current role needs an input",
        "cycler/current",
    ),
    (
        "current on a driven input",
        {"UUT_ports": {"current": "battery_cell/I"}},
        "port-driven",
        "UUT_ports.current 'battery_cell/I' is already driven by a connection",
        "battery_cell/I",
    ),
    (
        "temperature on a parameter",
        {"UUT_ports": {"temperature": "battery_cell/T_ambient_K", "ambient_temperature": None}},
        "port-causality",
        "UUT_ports.temperature 'battery_cell/T_ambient_K' is a tunable parameter variable; the temperature role"
        " needs an output",
        "battery_cell/T_ambient_K",
    ),
    (
        "ambient on a fixed parameter",
        {"UUT_ports": {"ambient_temperature": "battery_cell/T0_K"}},
        "port-causality",
        "is a fixed parameter variable; the ambient_temperature role needs an input or a tunable parameter",
        "battery_cell/T0_K",
    ),
    (
        "voltage in watts",
        {"UUT_ports": {"voltage": "battery_cell/P"}},
        "port-unit",
        "UUT_ports.voltage 'battery_cell/P' has unit 'W'; the voltage role accepts V, mV, kV or no unit",
        "battery_cell/P",
    ),
    (
        "soc in ampere-hours",
        {"UUT_ports": {"soc": "cycler/charge_Ah"}},
        "port-unit",
        "the soc role accepts 1, % or no unit",
        "cycler/charge_Ah",
    ),
    (
        "temperature in volts",
        {"UUT_ports": {"temperature": "battery_cell/OCV"}},
        "port-unit",
        "the temperature role accepts K, degC or no unit",
        "battery_cell/OCV",
    ),
    (
        "an unknown variable",
        {"UUT_ports": {"temperature": "battery_cell/T_surface"}},
        "unknown-variable",
        "UUT_ports.temperature 'battery_cell/T_surface': FMU 'battery_cell' has no variable 'T_surface'",
        "battery_cell/T_surface",
    ),
    (
        "an unknown FMU",
        {"UUT_ports": {"soc": "bms/SOC"}},
        "unknown-fmu",
        "UUT_ports.soc 'bms/SOC' names FMU 'bms', which is not in the upload set",
        "bms/SOC",
    ),
    (
        "an unknown role",
        {"UUT_ports": {"pressure": "battery_cell/V"}},
        "port-role",
        "UUT_ports.pressure: unknown role 'pressure'; the roles are current, voltage, temperature, soc, power,"
        " ambient_temperature",
        "battery_cell/V",
    ),
    (
        "voltage missing",
        {"UUT_ports": {"voltage": None}},
        "port-role",
        "UUT_ports has no 'voltage' role: current and voltage are required",
        None,
    ),
    (
        "not FMU/Port",
        {"UUT_ports": {"temperature": "battery_cell"}},
        "port-role",
        "UUT_ports.temperature: 'battery_cell' must look like 'FMU_name/Port'",
        None,
    ),
    (
        "one port, two roles",
        {"UUT_ports": {"soc": "battery_cell/V"}},
        "port-role port-unit",  # and V is not a unit of a state of charge
        "UUT_ports.soc 'battery_cell/V' is also the voltage port; each role needs its own port",
        "battery_cell/V",
    ),
    (
        "no current_sign",
        {"current_sign": None},
        "current-sign",
        "UUT_ports is declared but current_sign is missing",
        None,
    ),
    (
        "a wrong current_sign",
        {"current_sign": "positive"},
        "current-sign",
        "current_sign 'positive' must be one of charge_positive, discharge_positive",
        None,
    ),
    ("ports not an object", {"UUT_ports": ["battery_cell/V"]}, "port-role", "UUT_ports must be an object", None),
]


def _apply(change: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(REFERENCE)
    for key, value in change.items():
        if key == "UUT_ports" and isinstance(value, dict):
            document["UUT_ports"].update(value)
            document["UUT_ports"] = {k: v for k, v in document["UUT_ports"].items() if v is not None}
        elif value is None:
            document.pop(key)
        else:
            document[key] = value
    return document


@pytest.mark.parametrize(
    ("name", "change", "code", "fragment", "variable"), PORT_FAULTS, ids=[f[0] for f in PORT_FAULTS]
)
def test_each_wrong_role_gets_its_own_reason(
    reference_set: dict[str, Path],
    tmp_path: Path,
    name: str,
    change: dict[str, Any],
    code: str,
    fragment: str,
    variable: str | None,
) -> None:
    problems = problems_of(reference_set, _apply(change), tmp_path)
    assert sorted(p.code for p in problems) == code.split(), problems
    [mine] = [p for p in problems if p.code == code.split()[0]]
    assert fragment in mine.message, mine.message
    assert mine.file == "inter_connection.json" and mine.variable == variable


def test_every_problem_of_ports_and_connections_is_reported(reference_set: dict[str, Path], tmp_path: Path) -> None:
    document = {
        "FMU_signal_connections": [
            {"InSignalReference": "battery_cell/I", "OutSignalReference": "cycler/current"},
            {"InSignalReference": "battery_cell/nope", "OutSignalReference": "cycler/current"},
        ],
        "UUT_ports": {"current": "battery_cell/I", "temperature": "battery_cell/OCV", "humidity": "cycler/x"},
    }
    problems = problems_of(reference_set, document, tmp_path)
    assert sorted(p.code for p in problems) == [
        "current-sign",
        "port-driven",
        "port-role",
        "port-role",
        "port-unit",
        "unknown-variable",
    ], problems
    # A schema error in the connections does not hide the roles' problems (nor the reverse).
    document["FMU_signal_connections"] = [{"InSignalReference": "battery_cell/I"}]
    codes = sorted(p.code for p in problems_of(reference_set, document, tmp_path))
    assert codes == ["current-sign", "port-driven", "port-role", "port-role", "port-unit", "schema"], codes


# The tests' own C model with units and variabilities the reference FMUs do not use.
UNITS_CELL = Model(
    "units_cell",
    (
        Var("I_mA", "input", unit="mA"),
        Var("P_kW", "input", unit="kW"),
        Var("V_mV", "output", start=4200.0, unit="mV"),
        Var("T_C", "output", start=25.0, unit="degC"),
        Var("SOC_pct", "output", start=100.0, unit="%"),
        Var("T_amb", "parameter", start=25.0, unit="degC", variability="tunable"),
        Var("T_amb_in", "input", start=25.0),
        Var("steps", "output", "Integer"),
        Var("R_ohm", "output", unit="Ohm"),
    ),
    "SOC_pct = SOC_pct - I_mA * h / 36000.0; V_mV = 3000.0 + 12.0 * SOC_pct; T_C = T_amb; steps = steps + 1.0;",
)


@pytest.mark.parametrize("fmi_version", [2, 3])
def test_prefixed_units_percent_degc_and_a_tunable_parameter_are_accepted(fmi_version: int, tmp_path: Path) -> None:
    files = {"units_cell.fmu": build_fmu(UNITS_CELL, fmi_version, tmp_path)}
    roles = {
        "current": "units_cell/I_mA",
        "power": "units_cell/P_kW",
        "voltage": "units_cell/V_mV",
        "temperature": "units_cell/T_C",
        "soc": "units_cell/SOC_pct",
        "ambient_temperature": "units_cell/T_amb",
    }
    document = {"FMU_signal_connections": [], "UUT_ports": roles, "current_sign": "charge_positive"}
    assert problems_of(files, document, tmp_path) == []
    document["UUT_ports"] = {**roles, "ambient_temperature": "units_cell/T_amb_in"}  # an input without a unit
    assert problems_of(files, document, tmp_path) == []
    document["UUT_ports"] = {**roles, "voltage": "units_cell/steps", "soc": "units_cell/R_ohm"}
    problems = problems_of(files, document, tmp_path)
    assert sorted(p.code for p in problems) == ["port-type", "port-unit"], problems
    integer = "Integer" if fmi_version == 2 else "Int32"
    assert any(f"UUT_ports.voltage 'units_cell/steps' is an {integer} variable" in p.message for p in problems)
    assert any("UUT_ports.soc 'units_cell/R_ohm' has unit 'Ohm'" in p.message for p in problems)


@pytest.mark.parametrize("fmi_version", [2, 3])
def test_a_unit_from_the_declared_type_counts(fmi_version: int, tmp_path: Path) -> None:
    """A variable without its own unit takes its declared type's (FMI 2 SimpleType, FMI 3 Float64Type)."""
    model = Model("typed", (Var("I", "input"), Var("V", "output")), "V = 3.7 - 0.01 * I;")
    entries = fmu_entries(model, fmi_version, tmp_path / "work")
    description = entries["modelDescription.xml"].decode()
    if fmi_version == 2:
        types = (
            '<UnitDefinitions><Unit name="mA"><BaseUnit A="1" factor="0.001"/></Unit>'
            '<Unit name="Ohm"><BaseUnit kg="1" m="2" s="-3" A="-2"/></Unit></UnitDefinitions>'
            '<TypeDefinitions><SimpleType name="Current"><Real unit="mA"/></SimpleType>'
            '<SimpleType name="Resistance"><Real unit="Ohm"/></SimpleType></TypeDefinitions>'
        )
        description = description.replace("<DefaultExperiment", types + "<DefaultExperiment")
        description = description.replace(
            '<Real start="0.0"/></ScalarVariable>', '<Real declaredType="Current" start="0.0"/></ScalarVariable>', 1
        )
        head = 'name="V" valueReference="1" causality="output" variability="continuous" initial="exact"><Real'
        description = description.replace(head, head + ' declaredType="Resistance"')
    else:
        types = (
            '<UnitDefinitions><Unit name="mA"><BaseUnit A="1" factor="0.001"/></Unit>'
            '<Unit name="Ohm"><BaseUnit kg="1" m="2" s="-3" A="-2"/></Unit></UnitDefinitions>'
            '<TypeDefinitions><Float64Type name="Current" unit="mA"/><Float64Type name="Resistance" unit="Ohm"/>'
            "</TypeDefinitions>"
        )
        description = description.replace("<DefaultExperiment", types + "<DefaultExperiment")
        description = description.replace('<Float64 name="I"', '<Float64 declaredType="Current" name="I"')
        description = description.replace('<Float64 name="V"', '<Float64 declaredType="Resistance" name="V"')
    entries["modelDescription.xml"] = description.encode()
    path = tmp_path / "typed.fmu"
    path.write_bytes(zip_bytes(entries))
    problems, interface = check_fmu("typed.fmu", path)
    assert problems == [], problems
    assert interface is not None
    assert (interface.variables["I"].unit, interface.variables["V"].unit) == ("mA", "Ohm")
    document = {
        "FMU_signal_connections": [],
        "UUT_ports": {"current": "typed/I", "voltage": "typed/V"},
        "current_sign": "charge_positive",
    }
    problems = problems_of({"typed.fmu": path}, document, tmp_path)
    assert [(p.code, p.variable) for p in problems] == [("port-unit", "typed/V")], problems
    with zipfile.ZipFile(path) as archive:
        assert b"declaredType" in archive.read("modelDescription.xml")


def test_core_units() -> None:
    assert to_core_unit("current", "mA") == (1e-3, 0.0)
    assert to_core_unit("temperature", "K") == (1.0, -273.15)
    assert to_core_unit("ambient_temperature", "degC") == (1.0, 0.0)
    assert to_core_unit("soc", "%") == (0.01, 0.0)
    assert to_core_unit("power", "") == (1.0, 0.0)
    assert to_core_unit("voltage", "A") is None and to_core_unit("pressure", "Pa") is None


def test_the_schema_publishes_the_roles_with_descriptions() -> None:
    schema = interconnection_json_schema()
    assert schema["required"] == ["FMU_signal_connections"]  # the roles stay optional for old partners
    assert schema["dependentRequired"] == {"UUT_ports": ["current_sign"]}
    assert schema["properties"]["current_sign"]["anyOf"][0]["enum"] == ["charge_positive", "discharge_positive"]
    assert "Battery Data Format" in schema["properties"]["current_sign"]["description"]
    assert "UUT_ports" in schema["properties"] and schema["properties"]["UUT_ports"]["description"]
    ports = schema["$defs"]["UutPorts"]
    assert list(ports["properties"]) == list(ROLES)
    assert ports["required"] == ["current", "voltage"] and ports["additionalProperties"] is False
    for role, spec in ports["properties"].items():
        assert spec["description"] == ROLES[role].description
        assert spec["examples"], role


def test_the_set_waits_for_an_fmu_that_only_a_role_names() -> None:
    document = {
        "FMU_signal_connections": [{"InSignalReference": "cell/I", "OutSignalReference": "cycler/I"}],
        "UUT_ports": {"current": "cycler/I_set", "voltage": "cell/V", "temperature": "thermal/T"},
    }
    assert fmus_named_in(json.dumps(document).encode()) == {"cell", "cycler", "thermal"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ports=json_values, sign=json_values)
def test_any_json_in_the_roles_gives_problems_never_an_exception(ports: object, sign: object) -> None:
    fmus = {"cell": FmuInterface("2.0", "cell", {"V": FmuVariable("V", "output", "Real", "V")}), "broken": None}
    problems = check_uut_ports("inter_connection.json", {"UUT_ports": ports, "current_sign": sign}, fmus, set())
    assert problems, "a random declaration is never entirely valid"
    assert all(p.file == "inter_connection.json" and p.message for p in problems)


def test_the_docs_worked_example_is_the_reference_peers_document() -> None:
    docs = Path(__file__).parents[3] / "docs" / "partners-upload.md"
    section = docs.read_text().split("### UUT ports", 1)[1]
    example = section.split("```json", 1)[1].split("```", 1)[0]
    assert json.loads(example) == REFERENCE

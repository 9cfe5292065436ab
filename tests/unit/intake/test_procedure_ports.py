"""An upload set's port roles against what the request's procedure needs (pure)."""

from __future__ import annotations

from fastlims.intake.procedure_ports import PortNeeds, procedure_port_problems
from fastlims.peers.digital_twin import interconnection

NEEDS = PortNeeds(
    {"current": "drives", "voltage": "watches", "temperature": "steps[2] (Rest until 45 degC) ends on it"}
)


def test_a_set_mapping_every_role_fits() -> None:
    assert procedure_port_problems("inter_connection.json", interconnection(), NEEDS) == []


def test_a_set_without_roles_is_told_which_the_procedure_needs() -> None:
    (problem,) = procedure_port_problems("inter_connection.json", {"FMU_signal_connections": []}, NEEDS)
    assert problem.code == "port-role"
    assert problem.message.startswith(
        "declares no UUT_ports, and the request's procedure needs the roles current, voltage, temperature mapped to"
        ' FMU ports ("UUT_ports": {"current": "FMU_name/Port", "voltage": "FMU_name/Port", "temperature":'
        ' "FMU_name/Port"}, with "current_sign")'
    )


def test_each_missing_role_is_named_with_why() -> None:
    document = interconnection()
    del document["UUT_ports"]["temperature"]
    (problem,) = procedure_port_problems("inter_connection.json", document, NEEDS)
    assert str(problem) == (
        "inter_connection.json: UUT_ports has no 'temperature' role, and the request's procedure needs it: steps[2]"
        " (Rest until 45 degC) ends on it; map it to an FMU port (see docs/partners-upload.md, 'UUT ports', and"
        " docs/procedures.md)"
    )


def test_an_fmu_port_profile_on_a_role_port_is_refused_and_elsewhere_allowed() -> None:
    needs = PortNeeds(NEEDS.roles, fmu_profile="Cell/T")
    (problem,) = procedure_port_problems("inter_connection.json", interconnection(), needs)
    assert problem.code == "port-driven" and problem.variable == "Cell/T"
    assert "which is UUT_ports.temperature" in problem.message and "('Name': 'temperature')" in problem.message
    elsewhere = PortNeeds(NEEDS.roles, fmu_profile="Cycler/mode")
    assert procedure_port_problems("inter_connection.json", interconnection(), elsewhere) == []

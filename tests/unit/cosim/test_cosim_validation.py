"""A system or spec that cannot run is refused before any FMU is instantiated, with every problem
named; units convert against the FMU's declared unit."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastlims.benches.cosim import (
    CosimError,
    SimulationSpec,
    conversion,
    load_system,
    run,
    stop_conditions_from_procedures,
)

from .conftest import BuildFmu
from .cosim_testkit import cell_system, profile


def problems(excinfo: pytest.ExceptionInfo[CosimError]) -> str:
    return "\n".join(excinfo.value.problems)


def test_fmus_are_named_after_their_files_and_ordered_along_the_connections(build: BuildFmu) -> None:
    paths = [build("battery_cell", "3.0", "Cell"), build("cycler", "2.0", "Cycler")]
    with load_system(
        paths, {"FMU_signal_connections": [{"OutSignalReference": "Cycler/current", "InSignalReference": "Cell/I"}]}
    ) as system:
        assert list(system.fmus) == ["Cell", "Cycler"]
        assert system.order == ("Cycler", "Cell")  # the cell is driven by the cycler
        assert {n: f.fmi_version for n, f in system.fmus.items()} == {"Cell": "3.0", "Cycler": "2.0"}
        assert system.resolve("Cell.V") == system.resolve("Cell/V")
        assert system.default_step_size() == 1.0  # both declare DefaultExperiment stepSize="1"
        result = run(system, SimulationSpec(step_size=1.0, stop_time=10.0, parameters={"mode": 1, "current_A": 5.0}))
    assert result.status == "completed" and result.columns["Cell.I"][0] == 5.0  # FMI 2 drives FMI 3


def test_every_connection_problem_is_reported_at_once(build: BuildFmu) -> None:
    paths = [build("cycler", "2.0", "Cycler"), build("battery_cell", "2.0", "Cell")]
    connections = [
        {"OutSignalReference": "Cycler/current", "InSignalReference": "Cell/I"},
        {"OutSignalReference": "Cycler/charge_Ah", "InSignalReference": "Cell/I"},  # I driven twice
        {"OutSignalReference": "Cycle/current", "InSignalReference": "Cell/I"},  # unknown FMU
        {"OutSignalReference": "Cycler/curent", "InSignalReference": "Cell/I"},  # unknown variable
        {"OutSignalReference": "Cell/V", "InSignalReference": "Cycler/current"},  # output -> output
        {"OutSignalReference": "Cell/I", "InSignalReference": "Cycler/current_setpoint"},  # input as a source
        {"OutSignalReference": "Cycler/mode", "InSignalReference": "Cell/I"},  # a parameter
        {"OutSignalReference": "no-slash", "InSignalReference": "Cell/I"},  # not FMU/Port
    ]
    with pytest.raises(CosimError) as excinfo:
        load_system(paths, connections)
    text = problems(excinfo)
    assert len(excinfo.value.problems) == 7
    assert "connection 2 (Cycler/charge_Ah -> Cell/I): input Cell/I is already driven by Cycler/current" in text
    assert "no FMU named 'Cycle'; did you mean 'Cycler'?" in text
    assert "FMU 'Cycler' has no variable 'curent'; did you mean current" in text
    assert "InSignalReference Cycler/current is a output, it must be an input" in text
    assert "OutSignalReference Cell/I is a input, it must be an output" in text
    assert "OutSignalReference Cycler/mode is a parameter, it must be an output" in text
    assert "connection 8: OutSignalReference: Value error, 'no-slash' must look like 'FMU_name/Port'" in text


def test_broken_files_are_refused_with_the_reason(tmp_path: Path, build: BuildFmu) -> None:
    text_file = tmp_path / "Notes.fmu"
    text_file.write_text("not a zip")
    with pytest.raises(CosimError) as excinfo:
        load_system([text_file, tmp_path / "Missing.fmu", build("cycler", "2.0", "Cycler")])
    text = problems(excinfo)
    assert "FMU 'Notes'" in text and "not an FMU (an FMU is a ZIP archive)" in text
    assert "FMU 'Missing'" in text and "the file does not exist" in text


def test_spec_problems_are_reported_before_any_fmu_runs(build: BuildFmu) -> None:
    spec = SimulationSpec(
        step_size=1.0,
        stop_time=10.0,
        profiles=[profile("Cell/I", [(0, 1.0), (5, 1.0)])],  # already driven by the cycler
        parameters={"capacity_Ahh": 2.0, "Cell.V": 3.0, "Cycler.mode": 1.5},
        stop_conditions=[{"signal": "Cell.Volt", "op": "<=", "value": 2.5}],
        outputs=("Cell.SOC", "Nope.x"),
    )
    with cell_system(build, "2.0") as system, pytest.raises(CosimError) as excinfo:
        run(system, spec)
    text = problems(excinfo)
    assert "custom_profile 'Cell/I' drives Cell/I, which is already driven by Cycler/current" in text
    assert "parameter 'capacity_Ahh': no FMU declares it; did you mean capacity_Ah?" in text
    assert "parameter Cell.V: it has causality='output'" in text
    assert "parameter Cycler.mode is Enumeration: 1.5 is not a whole number" in text
    assert "stop condition signal 'Cell.Volt': FMU 'Cell' has no variable 'Volt'; its outputs: V, SOC, T" in text
    assert "output to record 'Nope.x' names no FMU" in text


def test_a_profile_must_name_an_input_and_a_convertible_unit(build: BuildFmu) -> None:
    with cell_system(build, "2.0") as system:
        cases = {
            "Speed": (
                "A",
                "custom_profile Name 'Speed' names no FMU input; name it 'FMU_name/Port', "
                "one of: Cycler/current_setpoint, Cell/I",
            ),
            "Cycler/current": ("A", "custom_profile Name Cycler/current is a output, not an input"),
            "Cycler/current_setpoint": ("V", "is given in 'V' (voltage) but the variable is declared in 'A' (current)"),
        }
        for name, (unit, message) in cases.items():
            with pytest.raises(CosimError) as excinfo:
                run(system, SimulationSpec(step_size=1.0, profiles=[profile(name, [(0, 1.0), (5, 1.0)], unit=unit)]))
            assert message in problems(excinfo), problems(excinfo)
        with pytest.raises(CosimError) as excinfo:
            run(
                system,
                SimulationSpec(
                    step_size=1.0, profiles=[profile("Cycler/current_setpoint", [(0, 1.0), (5, 1.0)], unit="furlongs")]
                ),
            )
        assert "unit 'furlongs' is unknown" in problems(excinfo)


def test_a_spec_needs_an_end_and_a_step_that_fits() -> None:
    with pytest.raises(ValueError, match="the run has no end"):
        SimulationSpec(step_size=1.0)
    with pytest.raises(ValueError, match="greater than 0"):
        SimulationSpec(step_size=0.0, stop_time=1.0)


def test_stop_conditions_are_the_dicts_among_the_test_procedures() -> None:
    conditions, notes = stop_conditions_from_procedures(
        ["Charge to 4.2 V", {"signal": "Cell.V", "op": "le", "value": "2.5"}, {"rest_s": 600}]
    )
    assert [str(c) for c in conditions] == ["Cell.V <= 2.5"]
    assert notes == ["test_procedures[2] is not a stop condition (no signal/op/value): skipped"]
    with pytest.raises(CosimError, match=r"test_procedures\[0\]: op"):
        stop_conditions_from_procedures([{"signal": "Cell.V", "op": "below", "value": 2.5}])


@pytest.mark.parametrize(
    ("given", "declared", "value", "expected"),
    [
        ("mA", "A", 1500.0, 1.5),
        ("A", "mA", 1.5, 1500.0),
        ("mV", "V", 3300.0, 3.3),
        ("kW", "W", 2.5, 2500.0),
        ("degC", "K", 25.0, 298.15),
        ("°C", "K", 0.0, 273.15),
        ("K", "degC", 273.15, 0.0),
        ("h", "s", 1.5, 5400.0),
        ("min", "s", 2.0, 120.0),
        ("%", "1", 80.0, 0.8),
        ("mAh", "Ah", 2500.0, 2.5),
        ("Ah", "As", 1.0, 3600.0),
        ("kWh", "J", 1.0, 3.6e6),
        ("mOhm", "Ohm", 15.0, 0.015),
        ("", "A", 2.0, 2.0),
    ],
)
def test_unit_conversions(given: str, declared: str, value: float, expected: float) -> None:
    assert conversion(given, declared)(value) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_the_model_description_units_come_first(build: BuildFmu) -> None:
    with cell_system(build, "2.0") as system:
        definitions = system.fmus["Cell"].unit_definitions
    # K declares the display unit degC with offset -273.15; Ah is 3600 A·s in its base units.
    assert conversion("degC", "K", unit_definitions=definitions)(25.0) == pytest.approx(298.15)
    with pytest.raises(CosimError, match="measure different quantities"):
        conversion("Ah", "A", unit_definitions=definitions)

"""Building the test FMUs: every model in both FMI versions, valid, cached, and described as declared."""

from __future__ import annotations

import math
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import fmpy
import pytest
from fmpy.validation import validate_fmu

from fastlims.peers.fmus import FMI_VERSIONS, FmuBuildError, available_models, build_fmu
from fastlims.peers.fmus import build as build_module

from .conftest import BuiltFmus
from .fmu_testkit import Cosim, FMICallException

# (name, causality, variability, unit, value reference) as the lab's code will rely on them.
BATTERY_CELL = [
    ("capacity_Ah", "parameter", "fixed", "Ah", 1),
    ("R0_ohm", "parameter", "fixed", "Ohm", 2),
    ("R1_ohm", "parameter", "fixed", "Ohm", 3),
    ("C1_F", "parameter", "fixed", "F", 4),
    ("R2_ohm", "parameter", "fixed", "Ohm", 5),
    ("C2_F", "parameter", "fixed", "F", 6),
    ("SOC0", "parameter", "fixed", "1", 7),
    ("T0_K", "parameter", "fixed", "K", 8),
    ("T_ambient_K", "parameter", "tunable", "K", 9),
    ("heat_capacity_J_per_K", "parameter", "fixed", "J/K", 10),
    ("thermal_resistance_K_per_W", "parameter", "fixed", "K/W", 11),
    ("internal_step_s", "parameter", "fixed", "s", 12),
    ("series_cells", "parameter", "fixed", "1", 13),
    ("cell_OCV_min_V", "parameter", "fixed", "V", 14),
    ("cell_OCV_max_V", "parameter", "fixed", "V", 15),
    ("I", "input", "continuous", "A", 20),
    ("V", "output", "continuous", "V", 30),
    ("SOC", "output", "continuous", "1", 31),
    ("T", "output", "continuous", "K", 32),
    ("OCV", "output", "continuous", "V", 33),
    ("P", "output", "continuous", "W", 34),
    ("heat_W", "output", "continuous", "W", 35),
]
CYCLER = [
    ("mode", "parameter", "fixed", None, 1),
    ("current_A", "parameter", "tunable", "A", 2),
    ("current_limit_A", "parameter", "fixed", "A", 3),
    ("current_setpoint", "input", "continuous", "A", 20),
    ("current", "output", "continuous", "A", 30),
    ("charge_Ah", "output", "continuous", "Ah", 31),
]
# The second cell model: other names, units, value references and sign (positive = charge), the
# ambient temperature an input.
LFP_CELL = [
    ("capacity_mAh", "parameter", "fixed", "mAh", 101),
    ("r_series_mOhm", "parameter", "fixed", "mOhm", 102),
    ("r_pol_mOhm", "parameter", "fixed", "mOhm", 103),
    ("tau_pol_s", "parameter", "fixed", "s", 104),
    ("soc_init_pct", "parameter", "fixed", "%", 105),
    ("t_cell_init_degC", "parameter", "fixed", "degC", 106),
    ("c_th_J_per_K", "parameter", "fixed", "J/K", 107),
    ("r_th_K_per_W", "parameter", "fixed", "K/W", 108),
    ("substep_ms", "parameter", "fixed", "ms", 109),
    ("i_mA", "input", "continuous", "mA", 201),
    ("t_amb_degC", "input", "continuous", "degC", 202),
    ("u_mV", "output", "continuous", "mV", 301),
    ("soc_pct", "output", "continuous", "%", 302),
    ("t_cell_degC", "output", "continuous", "degC", 303),
    ("ocv_mV", "output", "continuous", "mV", 304),
    ("heat_mW", "output", "continuous", "mW", 305),
]
DECLARED = {"battery_cell": BATTERY_CELL, "cycler": CYCLER, "lfp_cell": LFP_CELL}
BASES = sorted(DECLARED)


def test_available_models_are_each_model_and_its_fault_variants() -> None:
    assert available_models() == [
        "battery_cell", "battery_cell_crash", "battery_cell_error", "battery_cell_nan",
        "cycler", "cycler_crash", "cycler_error", "cycler_nan",
        "lfp_cell", "lfp_cell_crash", "lfp_cell_error", "lfp_cell_nan",
    ]  # fmt: skip


def test_every_model_builds_in_both_versions_and_fmpy_finds_no_problem(built_fmus: BuiltFmus) -> None:
    assert set(built_fmus) == {(m, v) for m in available_models() for v in FMI_VERSIONS}
    problems = {key: validate_fmu(str(path)) for key, path in built_fmus.items()}
    assert problems == {key: [] for key in built_fmus}


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
@pytest.mark.parametrize("model", available_models())
def test_archive_holds_the_description_and_a_binary_for_this_platform(
    fmu: Callable[[str, str], Path], model: str, fmi_version: str
) -> None:
    path = fmu(model, fmi_version)
    assert path.name == f"{model}_fmi{fmi_version[0]}.fmu"
    platform = fmpy.platform if fmi_version == "2.0" else fmpy.platform_tuple
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["binaries/" + platform + f"/{model}.so", "modelDescription.xml"]
    description = fmpy.read_model_description(str(path))
    assert description.fmiVersion == fmi_version
    assert description.modelName == model
    assert description.coSimulation.modelIdentifier == model
    assert description.modelExchange is None
    assert fmpy.platform in fmpy.supported_platforms(str(path))  # FMPy reports FMI 3 tuples by FMI 2 names


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
@pytest.mark.parametrize("model", BASES)
def test_variables_carry_the_declared_causality_variability_unit_and_reference(
    fmu: Callable[[str, str], Path], model: str, fmi_version: str
) -> None:
    description = fmpy.read_model_description(str(fmu(model, fmi_version)))
    variables = [v for v in description.modelVariables if v.causality != "independent"]
    actual = [(v.name, v.causality, v.variability, v.unit, v.valueReference) for v in variables]
    assert actual == DECLARED[model]
    if fmi_version == "3.0":
        (time_variable,) = [v for v in description.modelVariables if v.causality == "independent"]
        assert (time_variable.name, time_variable.valueReference, time_variable.unit) == ("time", 0, "s")
    units = {unit.name: unit for unit in description.unitDefinitions}
    assert {v.unit for v in variables if v.unit} <= set(units)
    for variable in variables:
        if variable.causality == "parameter" and variable.type == "Real":
            assert variable.start is not None and variable.min is not None and variable.max is not None, variable.name
        if variable.causality == "output":
            assert variable.initial == "calculated"
        assert variable.description, variable.name


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_temperatures_are_kelvin_with_a_celsius_display_unit(fmu: Callable[[str, str], Path], fmi_version: str) -> None:
    description = fmpy.read_model_description(str(fmu("battery_cell", fmi_version)))
    (kelvin,) = [unit for unit in description.unitDefinitions if unit.name == "K"]
    assert kelvin.baseUnit.K == 1
    (celsius,) = kelvin.displayUnits
    assert (celsius.name, celsius.factor, celsius.offset) == ("degC", 1.0, -273.15)
    temperatures = [v for v in description.modelVariables if v.unit == "K"]
    assert {v.name for v in temperatures} == {"T0_K", "T_ambient_K", "T"}
    assert all(v.displayUnit == "degC" for v in temperatures)


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_lfp_cell_units_are_declared_with_their_si_factor_and_offset(
    fmu: Callable[[str, str], Path], fmi_version: str
) -> None:
    """mA, mV, %, degC, ...: each unit's BaseUnit says how it maps to SI (value_SI = factor * value + offset)."""
    description = fmpy.read_model_description(str(fmu("lfp_cell", fmi_version)))
    exponents = ("kg", "m", "s", "A", "K", "mol", "cd", "rad")

    def base(name: str) -> tuple[dict[str, int], float, float]:
        (unit,) = [u for u in description.unitDefinitions if u.name == name]
        powers = {e: int(getattr(unit.baseUnit, e)) for e in exponents if getattr(unit.baseUnit, e)}
        return powers, float(unit.baseUnit.factor), float(unit.baseUnit.offset)

    assert base("mA") == ({"A": 1}, 0.001, 0.0)
    assert base("mV") == ({"kg": 1, "m": 2, "s": -3, "A": -1}, 0.001, 0.0)
    assert base("%") == ({}, 0.01, 0.0)
    assert base("degC") == ({"K": 1}, 1.0, 273.15)
    assert base("mAh") == ({"A": 1, "s": 1}, 3.6, 0.0)
    assert base("mOhm") == ({"kg": 1, "m": 2, "s": -3, "A": -2}, 0.001, 0.0)
    assert base("mW") == ({"kg": 1, "m": 2, "s": -3}, 0.001, 0.0)
    assert base("ms") == ({"s": 1}, 0.001, 0.0)
    ambient = next(v for v in description.modelVariables if v.name == "t_amb_degC")
    assert (ambient.causality, ambient.variability, float(ambient.start)) == ("input", "continuous", 25.0)


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_cycler_mode_is_an_enumeration_of_named_modes(fmu: Callable[[str, str], Path], fmi_version: str) -> None:
    description = fmpy.read_model_description(str(fmu("cycler", fmi_version)))
    mode = next(v for v in description.modelVariables if v.name == "mode")
    assert mode.type == "Enumeration"
    assert [(item.name, int(item.value)) for item in mode.declaredType.items] == [
        ("constant_current", 1),
        ("follow_setpoint", 2),
    ]
    assert int(mode.start) == 2


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
@pytest.mark.parametrize("model", BASES)
def test_direct_feedthrough_is_declared_only_where_an_output_reads_the_input(
    fmu: Callable[[str, str], Path], model: str, fmi_version: str
) -> None:
    description = fmpy.read_model_description(str(fmu(model, fmi_version)))
    feedthrough = {output.variable.name: sorted(d.name for d in output.dependencies) for output in description.outputs}
    expected = {
        "battery_cell": {"V": ["I"], "SOC": [], "T": [], "OCV": [], "P": ["I"], "heat_W": ["I"]},
        "cycler": {"current": ["current_setpoint"], "charge_Ah": []},
        "lfp_cell": {"u_mV": ["i_mA"], "soc_pct": [], "t_cell_degC": [], "ocv_mV": [], "heat_mW": ["i_mA"]},
    }[model]
    assert feedthrough == expected
    assert sorted(u.variable.name for u in description.initialUnknowns) == sorted(expected)


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
@pytest.mark.parametrize("model", BASES)
def test_the_binary_agrees_with_the_description_on_every_variable(
    fmu: Callable[[str, str], Path], model: str, fmi_version: str
) -> None:
    """Start values read back equal the XML starts; outputs refuse a set, fixed parameters refuse one
    after initialization, tunable parameters and inputs accept one: C table and XML match."""
    with Cosim(fmu(model, fmi_version)) as cosim:
        cosim.instantiate()
        variables = [v for v in cosim.description.modelVariables if v.causality != "independent"]
        for variable in variables:
            if variable.start is not None:
                assert cosim.value(variable.name) == pytest.approx(float(variable.start), rel=1e-15), variable.name
        cosim.enter_initialization()
        cosim.exit_initialization()
        for variable in variables:
            value = cosim.value(variable.name)
            assert math.isfinite(value), variable.name
            settable = variable.causality == "input" or variable.variability == "tunable"
            if settable:
                cosim.set(**{variable.name: value})
            else:
                with pytest.raises(FMICallException):
                    cosim.set(**{variable.name: value})
        kinds = {"output": "is an output", "parameter": "is a fixed parameter"}
        refused = [v for v in variables if not (v.causality == "input" or v.variability == "tunable")]
        assert len(cosim.errors()) == len(refused)
        for variable, message in zip(refused, cosim.errors(), strict=True):
            assert f"'{variable.name}' {kinds[variable.causality]}" in message


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_fault_variants_add_a_fault_time_parameter_and_say_they_are_faulty(
    fmu: Callable[[str, str], Path], fmi_version: str
) -> None:
    for fault in ("crash", "error", "nan"):
        description = fmpy.read_model_description(str(fmu(f"battery_cell_{fault}", fmi_version)))
        fault_time = next(v for v in description.modelVariables if v.name == "fault_time_s")
        assert (fault_time.valueReference, fault_time.causality, fault_time.unit, float(fault_time.start)) == (
            900, "parameter", "s", 10.0,
        )  # fmt: skip
        assert "DELIBERATELY FAULTY" in description.description
    plain = fmpy.read_model_description(str(fmu("battery_cell", fmi_version)))
    assert "fault_time_s" not in {v.name for v in plain.modelVariables}


def test_each_build_has_its_own_instantiation_token(built_fmus: BuiltFmus) -> None:
    tokens = [fmpy.read_model_description(str(path)).guid for path in built_fmus.values()]
    assert len(set(tokens)) == len(tokens)


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_a_binary_refuses_a_foreign_instantiation_token(fmu: Callable[[str, str], Path], fmi_version: str) -> None:
    with Cosim(fmu("cycler", fmi_version), guid="{00000000-0000-0000-0000-000000000000}") as cosim:
        with pytest.raises(Exception, match="(?i)failed to instantiate"):
            cosim.instantiate()
        assert "does not match the compiled" in cosim.errors()[0]


def test_a_cached_build_is_a_file_copy_and_needs_no_compiler(
    built_fmus: BuiltFmus, fmu_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("gcc ran although the build is cached")

    monkeypatch.setattr(build_module.subprocess, "run", no_compiling)
    started = time.perf_counter()
    path = build_fmu("battery_cell", "3.0", tmp_path, name="Cell", cache_dir=fmu_cache)
    elapsed = time.perf_counter() - started
    assert path == tmp_path / "Cell.fmu"
    assert path.read_bytes() == built_fmus[("battery_cell", "3.0")].read_bytes()
    assert elapsed < 0.5  # typically ~1 ms; generous for a loaded CI machine


def test_builds_are_reproducible_byte_for_byte(built_fmus: BuiltFmus, tmp_path: Path) -> None:
    rebuilt = build_fmu("cycler", "2.0", tmp_path / "out", cache_dir=tmp_path / "fresh-cache")
    assert rebuilt.read_bytes() == built_fmus[("cycler", "2.0")].read_bytes()
    assert len(list((tmp_path / "fresh-cache").glob("cycler-fmi2-*.fmu"))) == 1


def test_the_default_cache_is_taken_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTLIMS_FMU_CACHE", str(tmp_path / "env-cache"))
    build_fmu("cycler", "3.0", tmp_path / "out")
    assert len(list((tmp_path / "env-cache").glob("cycler-fmi3-*.fmu"))) == 1


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_start_values_go_into_the_description_and_the_binary_alike(
    built_fmus: BuiltFmus, fmu_cache: Path, tmp_path: Path, fmi_version: str
) -> None:
    """A Digital Twin's choice of parameters: the description's start attributes say it, the binary
    starts from it (before any set), FMPy finds the FMU valid, and the plain build is untouched."""
    chosen = {"capacity_Ah": 20.0, "R0_ohm": 0.045, "series_cells": 12.0, "SOC0": 0.5, "cell_OCV_max_V": 4.3}
    path = build_fmu("battery_cell", fmi_version, tmp_path, name="Module", cache_dir=fmu_cache, start_values=chosen)
    assert validate_fmu(str(path)) == []
    description = fmpy.read_model_description(str(path))
    starts = {v.name: float(v.start) for v in description.modelVariables if v.causality == "parameter"}
    assert {name: starts[name] for name in chosen} == chosen
    assert starts["R1_ohm"] == 0.010 and starts["cell_OCV_min_V"] == 2.5  # the others keep the template's
    with Cosim(path) as cosim:
        cosim.instantiate()
        assert cosim.get(*chosen) == list(chosen.values())
        cosim.enter_initialization()
        cosim.exit_initialization()
        # 12 cells at SOC 0.5 on the table stretched to 2.5..4.3 V: 12 x (2.5 + (3.72 - 2.5) x 1.8 / 1.7)
        assert cosim.value("OCV") == pytest.approx(12 * (2.5 + 1.22 * 1.8 / 1.7), abs=1e-12)
    assert description.guid != fmpy.read_model_description(str(built_fmus[("battery_cell", fmi_version)])).guid
    cycler = build_fmu("cycler", fmi_version, tmp_path, cache_dir=fmu_cache, start_values={"mode": 1, "current_A": 2.5})
    with Cosim(cycler).initialize() as cosim:
        assert cosim.get("mode", "current") == [1, 2.5]


def test_start_values_are_part_of_the_cache_key(fmu_cache: Path, tmp_path: Path) -> None:
    first = build_fmu("battery_cell", "3.0", tmp_path / "a", cache_dir=fmu_cache, start_values={"capacity_Ah": 10.0})
    again = build_fmu("battery_cell", "3.0", tmp_path / "b", cache_dir=fmu_cache, start_values={"capacity_Ah": 10.0})
    other = build_fmu("battery_cell", "3.0", tmp_path / "c", cache_dir=fmu_cache, start_values={"capacity_Ah": 20.0})
    assert first.read_bytes() == again.read_bytes()
    assert other.read_bytes() != first.read_bytes()
    assert fmpy.read_model_description(str(other)).guid != fmpy.read_model_description(str(first)).guid


@pytest.mark.parametrize(
    ("start_values", "message"),
    [
        ({"capacity": 1.0}, r"'capacity': battery_cell has no such variable; did you mean capacity_Ah\?"),
        ({"V": 3.0}, r"start value for 'V': only parameters take a start value at build time, it is 'output'"),
        ({"SOC0": 1.5}, r"start value for 'SOC0' is 1\.5, outside its declared range 0\.\.1"),
        ({"R0_ohm": float("nan")}, r"start value for 'R0_ohm' must be a finite number, got nan"),
        ({"T0_K": "300"}, r"start value for 'T0_K' must be a finite number, got '300'"),
        ({"series_cells": 0.0, "SOC0": -1.0}, r"'SOC0' is -1\.0, outside .*; start value for 'series_cells' is 0\.0"),
    ],
)
def test_bad_start_values_are_refused_naming_each(tmp_path: Path, start_values: dict[str, float], message: str) -> None:
    with pytest.raises(FmuBuildError, match=message):
        build_fmu("battery_cell", "2.0", tmp_path, cache_dir=tmp_path, start_values=start_values)
    assert not list(tmp_path.glob("*.fmu"))  # nothing half-written


def test_an_enumeration_start_value_must_be_whole(tmp_path: Path) -> None:
    with pytest.raises(FmuBuildError, match=r"start value for 'mode' must be a whole number \(an Enumeration\)"):
        build_fmu("cycler", "3.0", tmp_path, cache_dir=tmp_path, start_values={"mode": 1.5})


@pytest.mark.parametrize(
    ("model", "fmi_version", "name", "message"),
    [
        ("battery", "2.0", None, r"unknown FMU model 'battery'; available: battery_cell, battery_cell_crash"),
        ("cycler_explode", "2.0", None, r"unknown FMU model 'cycler_explode'"),
        ("cycler", "2", None, r"FMI version '2' is not supported; use one of 2\.0, 3\.0"),
        ("cycler", "1.0", None, r"FMI version '1\.0' is not supported"),
        ("cycler", "2.0", "../escape", r"must be a plain file name"),
    ],
)
def test_bad_requests_are_refused_with_what_to_do(
    tmp_path: Path, model: str, fmi_version: str, name: str | None, message: str
) -> None:
    with pytest.raises(FmuBuildError, match=message):
        build_fmu(model, fmi_version, tmp_path, name=name, cache_dir=tmp_path)


def test_a_missing_compiler_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_module.shutil, "which", lambda name: None)
    build_module._compiler.cache_clear()
    try:
        with pytest.raises(FmuBuildError, match="gcc is not on PATH"):
            build_fmu("cycler", "2.0", tmp_path, cache_dir=tmp_path)
    finally:
        build_module._compiler.cache_clear()


def test_a_compile_error_reports_the_compiler_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "src"
    broken.mkdir()
    for source in build_module.SOURCE_DIR.iterdir():
        (broken / source.name).write_bytes(source.read_bytes())
    (broken / "cycler.c").write_text("this is not C;\n")
    monkeypatch.setattr(build_module, "SOURCE_DIR", broken)
    with pytest.raises(FmuBuildError, match=r"(?s)gcc failed to compile cycler\.c, exit code 1:.*cycler\.c:1:"):
        build_fmu("cycler", "2.0", tmp_path / "out", cache_dir=tmp_path / "cache")

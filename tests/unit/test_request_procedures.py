"""The procedure a request runs, chosen and checked at submit (requests.procedures, pure)."""

from __future__ import annotations

from typing import Any

import pytest

from fastlims.messaging.variables import CustomProfile, Variables
from fastlims.procedures.defaults import default_procedure
from fastlims.procedures.model import AmbientStep, ProfileStep, RestStep
from fastlims.procedures.resolve import resolve
from fastlims.requests.procedures import (
    Chosen,
    choose,
    profile_procedure,
    required_roles,
    si_points,
)
from tests.unit.procedures.uuts import GEN3B_CELL

# The first applicable combination of the seed catalog: UN383-PRECYCLE under IEC62281.
TEST, STANDARD = "UN383-PRECYCLE", "IEC62281"


def pick(variables: dict[str, Any] | None, bench: str = "Virtual", test: str = TEST) -> tuple[Chosen | None, list]:
    parsed = Variables.model_validate(variables) if variables is not None else None
    return choose(parsed, GEN3B_CELL, test_code=test, standard=STANDARD, bench=bench)


def profile(name: str, unit: str, values: list[tuple[float, float]], **extra: Any) -> dict[str, Any]:
    return {"Name": name, "unit": unit, "values": [{"timestamp": t, "value": v} for t, v in values], **extra}


def messages(problems: list[tuple[str, str]], field: str = "variables.test_procedures") -> list[str]:
    return [message for name, message in problems if name == field]


def test_empty_test_procedures_run_the_test_names_default() -> None:
    for variables in (None, {}, {"test_procedures": []}):
        chosen, problems = pick(variables)
        assert problems == [] and chosen is not None
        assert chosen.source == "default"
        assert chosen.procedure == default_procedure(TEST, GEN3B_CELL, standard=STANDARD)


def test_text_lines_are_the_requesters_procedure_with_their_lines() -> None:
    lines = ["Charge at 0.5C until 4.2 V", "Hold at 4.2 V until C/20", "Rest for 1 hour", "Discharge at 1C until 2.5 V"]
    chosen, problems = pick({"test_procedures": lines})
    assert problems == [] and chosen is not None and chosen.source == "request"
    assert chosen.lines == {"steps[0]": 1, "steps[1]": 2, "steps[2]": 3, "steps[3]": 4}
    leaves = resolve(chosen.procedure, GEN3B_CELL).leaves()
    assert [leaf.type for leaf in leaves] == ["cc", "cv", "rest", "cc"]
    assert leaves[3].current_A == -50.0  # type: ignore[union-attr]  # 1C of 50 Ah, discharge negative


def test_one_json_object_is_the_requesters_procedure() -> None:
    document = {"format": "fastlims-procedure/1", "steps": [{"type": "rest", "until": [{"time_s": 60}]}]}
    chosen, problems = pick({"test_procedures": [document]})
    assert problems == [] and chosen is not None and chosen.source == "request"
    assert chosen.procedure.to_json() == document


def test_every_problem_of_a_text_procedure_is_named_with_its_step_and_line() -> None:
    lines = [
        "Charge at 0.5C until 4.2 V",
        "Discharge at 200 A until 2.5 V",  # above MaxDischargeCurrentA 150 A
        "Dance wildly",  # does not parse
        "Rest",  # no termination
        "Repeat times:",  # no count
        "    Rest for 1 hour",
        "Hold at 5 V until C/20",  # outside 2.5..4.2 V
    ]
    chosen, problems = pick({"test_procedures": lines})
    assert chosen is None
    found = messages(problems)
    assert found == [
        "line 3 ('Dance wildly'): unknown step 'Dance'; a step starts with one of: Rest for/until ...; Charge at ...;"
        " Discharge at ...; Hold at ...; Pulse charge/discharge at ... for ...; Set ambient to ...;"
        " Follow current/power/voltage profile ...; External <action> for ...; Repeat N times:",
        "line 5 ('Repeat times:'): expected 'Repeat N times:' (a whole count of at least 1, or {variable},"
        " then a colon)",
        "steps[1] (Discharge at 200 A until 2.5 V), line 2: discharge current 200 A is above the UUT's"
        " MaxDischargeCurrentA 150 A",
        "steps[3] (Rest), line 4: this step could run forever: add a termination, e.g. 'for 1 hour'",
        "steps[5] (Hold at 5 V until C/20), line 7: hold voltage 5 V is outside the UUT's voltage limits 2.5..4.2 V"
        " (MinVoltageV..MaxVoltageV)",
    ]
    assert len(problems) == len(found)


def test_every_problem_of_a_json_procedure_is_named_with_its_step() -> None:
    document = {
        "steps": [
            {"type": "jump"},
            {"type": "cc", "direction": "charge", "current_A": 80, "until": [{"voltage_above_V": 4.2}]},
            {"type": "repeat", "steps": [{"type": "rest", "until": [{"time_s": 1}]}]},
        ]
    }
    chosen, problems = pick({"test_procedures": [document]})
    assert chosen is None
    assert messages(problems) == [
        "steps[0]: unknown step type 'jump'; expected one of rest, cc, cv, cp, pulse, profile, ambient, external,"
        " repeat",
        "steps[2]: count is required",
        "steps[1] (Charge at 80 A until 4.2 V): charge current 80 A is above the UUT's MaxChargeCurrentA 50 A",
    ]


@pytest.mark.parametrize(
    ("test_procedures", "fragment"),
    [
        (
            [{"signal": "Cell.V", "op": "<=", "value": 2.5}],
            "test_procedures[0] is a stop condition ({signal, op, value}), which requests no longer take",
        ),
        (["Rest for 1 hour", {"steps": []}], "got 2 items (object, text)"),
        ([{"steps": []}, {"steps": []}], "got 2 items (object)"),
    ],
)
def test_what_test_procedures_no_longer_hold_is_a_clear_problem(test_procedures: list, fragment: str) -> None:
    chosen, problems = pick({"test_procedures": test_procedures})
    assert chosen is None
    (message,) = messages(problems)
    assert fragment in message and "fastlims-procedure/1" in message and "text lines" in message


@pytest.mark.parametrize(
    ("name", "unit", "values", "expected"),
    [
        ("current", "mA", [(0, 1500.0), (10, -2500.0)], [(0, 1.5), (10, -2.5)]),
        ("current", "", [(0, 2.0)], [(0, 2.0)]),
        ("power", "kW", [(0, 0.25)], [(0, 250.0)]),
        ("voltage", "mV", [(0, 3700.0)], [(0, 3.7)]),
        ("ambient_temperature", "K", [(0, 298.15), (60, 400.0)], [(0, 25.0), (60, 126.85)]),
        ("ambient_temperature", "degC", [(0, 25.0)], [(0, 25.0)]),
    ],
)
def test_role_profiles_convert_to_si_keeping_the_bdf_sign(
    name: str, unit: str, values: list[tuple[float, float]], expected: list[tuple[float, float]]
) -> None:
    assert si_points(CustomProfile.model_validate(profile(name, unit, values))) == expected


def test_a_unit_the_role_does_not_take_is_named() -> None:
    chosen, problems = pick({"custom_profile": profile("current", "mV", [(0, 1), (1, 2)])})
    assert chosen is None
    assert problems == [
        (
            "variables.custom_profile.unit",
            "unit 'mV' is not one the current role takes: 'A', 'mA', 'kA' (or none for SI)",
        )
    ]


def test_a_role_profile_without_test_procedures_is_the_test() -> None:
    chosen, problems = pick({"custom_profile": profile("current", "mA", [(0, 1000.0), (60, -3000.0), (120, 0.0)])})
    assert problems == [] and chosen is not None and chosen.source == "profile"
    (step,) = chosen.procedure.steps
    assert isinstance(step, ProfileStep) and step.quantity == "current" and step.source == "custom_profile"
    resolved = resolve(chosen.procedure, GEN3B_CELL, custom_profile=[(0, 1.0), (60, -3.0), (120, 0.0)])
    assert resolved.leaves()[0].points == ((0, 1.0), (60, -3.0), (120, 0.0))  # type: ignore[union-attr]
    assert resolved.safety.max_voltage_V == pytest.approx(4.22)  # the UUT's limits widened by 20 mV per cell


def test_an_ambient_profile_becomes_open_circuit_soaks() -> None:
    procedure = profile_procedure("ambient_temperature", [(30.0, 25.0), (630.0, 45.0), (1230.0, 0.0)])
    steps = procedure.steps
    assert isinstance(steps[0], RestStep) and steps[0].until[0].time_s == 30.0
    assert [(s.temperature_C, [t.time_s for t in s.until]) for s in steps[1:] if isinstance(s, AmbientStep)] == [
        (25.0, [600.0]),
        (45.0, [600.0]),
        (0.0, []),
    ]
    chosen, problems = pick({"custom_profile": profile("ambient_temperature", "degC", [(0, 25), (600, 80)])})
    assert chosen is None
    assert messages(problems, "variables.custom_profile") == [
        "steps[1] (Set ambient to 80 degC): ambient 80 degC is outside the UUT's rated range -20..55 degC"
        " (MinTemperatureC..MaxTemperatureC)"
    ]


def test_a_profile_test_needs_two_points() -> None:
    chosen, problems = pick({"custom_profile": profile("current", "A", [(0, 1.0)])})
    assert chosen is None and problems == [
        (
            "variables.custom_profile.values",
            "a current profile run as the test needs two points or more (it ends at the last)",
        )
    ]


def test_a_role_profile_the_procedure_does_not_follow_is_refused() -> None:
    chosen, problems = pick(
        {"test_procedures": ["Rest for 1 hour"], "custom_profile": profile("power", "W", [(0, 10.0), (5, 0.0)])}
    )
    assert chosen is None
    assert messages(problems) == [
        "custom_profile names the UUT's power but no step of the procedure follows it: add a step 'Follow power"
        " profile from custom_profile', or leave test_procedures empty to run the profile as the test"
    ]


def test_a_procedure_following_the_profile_resolves_it_in_si() -> None:
    variables = {
        "test_procedures": ["Set ambient to 25 degC", "Follow current profile from custom_profile", "Rest for 10 s"],
        "custom_profile": profile("current", "A", [(0, 200.0), (5, 0.0)]),
    }
    chosen, problems = pick(variables)
    assert problems == [] and chosen is not None and chosen.source == "request"  # 200 A: within the 250 A pulses
    variables["custom_profile"] = profile("current", "kA", [(0, 0.3), (5, 0.0)])
    chosen, problems = pick(variables)
    assert chosen is None
    assert messages(problems) == [
        "steps[1] (Follow current profile from custom_profile), line 2: profile peak current 300 A is above the UUT's"
        " MaxPulseCurrentA 250 A"
    ]


def test_a_step_follows_only_a_role_profile_of_its_quantity() -> None:
    step = "Follow voltage profile from custom_profile"
    chosen, problems = pick({"test_procedures": [step], "custom_profile": profile("current", "A", [(0, 1), (2, 0)])})
    assert chosen is None
    assert messages(problems) == [
        f"steps[0] ({step}) follows a voltage profile, but custom_profile.Name is 'current'",
    ]
    chosen, problems = pick({"test_procedures": [step], "custom_profile": profile("Cycler/I", "A", [(0, 1), (2, 0)])})
    assert chosen is None
    assert messages(problems) == [
        f"steps[0] ({step}) follows custom_profile, whose Name 'Cycler/I' is an FMU port: a procedure follows a"
        " profile named by its UUT role (current, power, voltage)"
    ]
    chosen, problems = pick({"test_procedures": [step]})
    assert chosen is None
    assert messages(problems) == [
        f"steps[0] ({step}), line 1: this profile takes the request's variables.custom_profile, and none was given"
    ]


def test_the_fmu_port_form_still_drives_an_fmu_input_beside_the_default() -> None:
    chosen, problems = pick({"custom_profile": profile("Cycler/current_setpoint", "A", [(0, 1.0)])})
    assert problems == [] and chosen is not None and chosen.source == "default"
    chosen, problems = pick({"custom_profile": profile("amps", "A", [(0, 1.0)])})
    assert chosen is None
    assert problems == [
        (
            "variables.custom_profile.Name",
            "'amps' names neither a UUT port role (current, power, voltage, ambient_temperature) nor an FMU input"
            " 'FMU_name/Port'",
        )
    ]


def test_a_virtual_bench_refuses_external_steps_naming_them() -> None:
    lines = ["Charge at 0.5C until 4.2 V", "External vibration for 3 hours"]
    chosen, problems = pick({"test_procedures": lines}, bench="Virtual")
    assert chosen is None
    assert problems == [
        (
            "bench",
            "steps[1] (External vibration for 3 hours) needs a vibration table: a virtual bench cannot run it unless"
            " the Digital Twin's models cover it; request a Physical bench",
        )
    ]
    chosen, problems = pick({"test_procedures": lines}, bench="Physical")
    assert problems == [] and chosen is not None


def test_a_default_no_virtual_bench_can_perform_is_refused_with_the_reason() -> None:
    chosen, problems = pick(None, bench="Virtual", test="UN383-T1")
    assert chosen is None
    assert problems == [
        (
            "bench",
            "test 'UN383-T1' on a Virtual bench: altitude needs an altitude (vacuum) chamber: a virtual bench cannot"
            " run it unless the Digital Twin's models cover it",
        )
    ]


def test_required_roles_follow_the_procedure() -> None:
    chosen, _ = pick({"test_procedures": ["Discharge at 1C until 2.5 V"]})
    assert chosen is not None and set(required_roles(chosen.procedure)) == {"current", "voltage"}
    chosen, _ = pick(
        {"test_procedures": ["Set ambient to 45 degC and rest for 1 hour", "Charge at 0.5C until 4.2 V or 50 degC"]}
    )
    assert chosen is not None
    roles = required_roles(chosen.procedure)
    assert set(roles) == {"current", "voltage", "temperature", "ambient_temperature"}
    assert roles["temperature"] == (
        "steps[1] (Charge at 0.5C until 4.2 V or until 50 degC) ends on the UUT's temperature"
    )
    assert (
        roles["ambient_temperature"]
        == "steps[0] (Set ambient to 45 degC and rest for 1 hour) sets the ambient temperature"
    )


def test_a_looser_safety_limit_does_not_hide_the_steps_problems() -> None:
    lines = ["# safety: max_voltage_V=4.5", "Charge at 80 A until 4.2 V", "Rest for 1 hour"]
    chosen, problems = pick({"test_procedures": lines})
    assert chosen is None
    assert messages(problems) == [
        "procedure: safety max_voltage_V 4.5 is looser than 4.22 (the UUT's MaxVoltageV 4.2 + 0.02 V); a procedure"
        " may only tighten the ratings (declare abuse: true for an abuse test)",
        "steps[0] (Charge at 80 A until 4.2 V), line 2: charge current 80 A is above the UUT's MaxChargeCurrentA 50 A",
    ]

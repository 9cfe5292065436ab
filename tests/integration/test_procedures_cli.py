"""``fastlims procedures show | check`` with the real command against a real database file (migrated
and seeded by the command itself, as on a fresh install)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fastlims.cli import main
from fastlims.procedures.defaults import default_procedure
from fastlims.procedures.model import Procedure, ResolvedProcedure
from fastlims.procedures.resolve import resolve
from fastlims.procedures.text import parse_text

CELL = "Gen3b - Cell"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FASTLIMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FASTLIMS_DATABASE_URL", raising=False)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["procedures", *args])
    return result.exit_code, result.output


def test_show_prints_the_default_in_text_and_json(env: Path) -> None:
    code, output = run("show", "PERF-CAPACITY-RT", "--uut", CELL)
    assert code == 0, output
    text, _, document = output.partition("\n\n{")
    first, *rest = text.splitlines()
    assert first.startswith("# PERF-CAPACITY-RT for Gen3b - Cell under IEC62660: physical, virtual benches; expected")
    shown = json.loads("{" + document)
    procedure = Procedure.model_validate(shown["procedure"])
    assert parse_text("\n".join(rest)).procedure == procedure  # the text is the same procedure
    assert shown["standard"] == "IEC62660" and shown["bench_kinds"] == ["physical", "virtual"]
    ratings = resolved_ratings(shown)
    assert procedure == default_procedure("PERF-CAPACITY-RT", ratings)  # the core's default for the catalog's ratings
    assert ResolvedProcedure.model_validate(shown["resolved"]) == resolve(procedure, ratings)
    assert procedure.name == "Capacity and energy at room temperature (IEC62660, Gen3b - Cell)"


def resolved_ratings(shown: dict):  # type: ignore[no-untyped-def]
    """The catalog's ratings of the UUT, as the JSON document's resolved safety limits came from them."""
    from fastlims.bootstrap import build_from_environment
    from fastlims.catalog import service
    from fastlims.procedures.ratings import UutRatings

    system = build_from_environment(role="cli")
    try:
        with system.database.transaction() as session:
            return UutRatings.from_mapping(service.uut_ratings(session=session, code=shown["uut"]))
    finally:
        system.close()


def test_show_text_is_a_file_check_accepts_and_json_alone_parses(env: Path) -> None:
    code, text = run("show", "UN383-T7", "--uut", "Gen3b - Module", "--format", "text")
    assert code == 0, text
    path = env / "t7.txt"
    path.write_text(text)
    code, output = run("check", str(path), "--uut", "Gen3b - Module")
    assert code == 0 and output.startswith(f"{path}: OK for Gen3b - Module"), output
    code, output = run("show", "UN383-T7", "--uut", "Gen3b - Module", "--format", "json")
    assert code == 0 and json.loads(output)["procedure"]["abuse"] is True


def test_show_names_what_is_wrong(env: Path) -> None:
    assert run("show", "NO-SUCH-TEST", "--uut", CELL) == (
        1,
        "Error: test name 'NO-SUCH-TEST' is not in the catalog (GET /api/v1/test-names lists them)\n",
    )
    code, output = run("show", "PERF-CAPACITY-RT", "--uut", CELL, "--standard", "UL1642")
    assert code == 1 and "PERF-CAPACITY-RT has no default procedure for standard 'UL1642'" in output
    code, output = run("show", "PERF-CAPACITY-RT", "--uut", "Gen9 - Cell")
    assert code == 1 and "UUT 'Gen9 - Cell' is not in the catalog" in output
    assert run("show", "PERF-CAPACITY-RT")[0] == 2  # --uut is required


def test_check_names_every_problem_of_a_text_file_with_its_line(env: Path) -> None:
    path = env / "mine.txt"
    path.write_text(
        "# my capacity test\n"
        "Charge at 0.5C until 4.2 V\n"
        "Discharge at 30 A until 2.5 V\n"
        "Dance\n"
        "Repeat 3 times:\n"
        "    Rest for 1 hour\n"
        "    Hold at 5 V until C/20\n"
    )
    code, output = run("check", str(path), "--uut", CELL)
    assert code == 1
    assert output.splitlines() == [
        f"{path}: line 4 ('Dance'): unknown step 'Dance'; a step starts with one of: Rest for/until ...; Charge at"
        " ...; Discharge at ...; Hold at ...; Pulse charge/discharge at ... for ...; Set ambient to ...; Follow"
        " current/power/voltage profile ...; External <action> for ...; Repeat N times:",
        f"{path}: steps[1] (Discharge at 30 A until 2.5 V), line 3: discharge current 30 A is above the UUT's"
        " MaxDischargeCurrentA 15 A",
        f"{path}: steps[3].steps[1] (Hold at 5 V until C/20), line 7: hold voltage 5 V is outside the UUT's voltage"
        " limits 2.5..4.2 V (MinVoltageV..MaxVoltageV)",
        f"Error: 3 problems in {path} for UUT 'Gen3b - Cell'",
    ]


def test_check_names_the_lines_of_a_json_file(env: Path) -> None:
    path = env / "mine.json"
    path.write_text(
        "{\n"
        '  "format": "fastlims-procedure/1",\n'
        '  "steps": [\n'
        '    {"type": "cc", "direction": "charge", "c_rate": 0.5, "until": [{"voltage_above_V": 4.2}]},\n'
        '    {"type": "repeat", "count": 2, "steps": [\n'
        '      {"type": "rest", "until": [{"time_s": 60}]},\n'
        '      {"type": "cc", "direction": "discharge", "current_A": 30,\n'
        '       "until": [{"voltage_below_V": 2.5}]}\n'
        "    ]},\n"
        '    {"type": "cv", "voltage_V": 4.2},\n'
        '    {"type": "spin"}\n'
        "  ]\n"
        "}\n"
    )
    code, output = run("check", str(path), "--uut", CELL)
    assert code == 1
    assert output.splitlines() == [
        f"{path}: steps[3], line 11: unknown step type 'spin'; expected one of rest, cc, cv, cp, pulse, profile,"
        " ambient, external, repeat",
        f"{path}: steps[1].steps[1] (Discharge at 30 A until 2.5 V), line 7: discharge current 30 A is above the"
        " UUT's MaxDischargeCurrentA 15 A",
        f"{path}: steps[2] (Hold at 4.2 V), line 10: this step could run forever: add a termination, e.g. 'until C/20'",
        f"Error: 3 problems in {path} for UUT 'Gen3b - Cell'",
    ]
    broken = env / "broken.json"
    broken.write_text('{"steps": [\n')
    code, output = run("check", str(broken), "--uut", CELL)
    assert code == 1 and f"{broken}: line 2: not valid JSON: Expecting value" in output


def test_check_accepts_a_good_file_and_notes_a_custom_profile_step(env: Path) -> None:
    path = env / "drive.txt"
    path.write_text("Set ambient to 25 degC\nFollow current profile from custom_profile\nRest for 10 minutes\n")
    code, output = run("check", str(path), "--uut", CELL)
    assert code == 0, output
    assert output.splitlines() == [
        f"{path}: note: steps[1] (Follow current profile from custom_profile), line 2: follows a request's"
        " custom_profile, whose values are checked at submit",
        f"{path}: OK for Gen3b - Cell (3 steps; the custom_profile values are checked at submit)",
    ]
    code, output = run("check", str(path), "--uut", "Gen9 - Cell")
    assert code == 1 and "UUT 'Gen9 - Cell' is not in the catalog" in output

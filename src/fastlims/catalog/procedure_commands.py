"""``fastlims procedures show | check``: a test name's default procedure, and a procedure file checked.

``show TEST_CODE --uut CODE [--standard CODE]`` prints the default procedure resolved for the
UUT: the text form (a file ``check`` reads and a request's ``test_procedures`` takes) and the
JSON document of ``GET /api/v1/test-names/{code}/procedure``. ``check FILE --uut CODE`` reads a
procedure file (the text form, or JSON in the ``fastlims-procedure/1`` form) and names every
problem against the UUT's ratings with its step and line; the exit code is 1 when there is one.

``fastlims.cli`` adds the group to the ``fastlims`` command and passes, as the click context's
object, how to build the system, and in ``ctx.meta[PREPARE]`` how to prepare its database (migrate,
load the seed catalog into an empty one); this module never imports the CLI or the composition root.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import click

from fastlims.catalog import procedures as catalog_procedures
from fastlims.catalog import service
from fastlims.catalog.procedure_sources import Reading, read_file, validate_all
from fastlims.db.engine import Database
from fastlims.procedures.model import Problem, ProfileStep
from fastlims.procedures.resolve import resolve
from fastlims.procedures.text import MAX_TEXT_BYTES

#: ``ctx.meta`` key of the callable that prepares the database of a built system.
PREPARE = "fastlims.prepare_database"


class CommandSystem(Protocol):
    """What these commands use of the system ``fastlims.cli`` builds (a ``bootstrap.System``)."""

    database: Database


def _system() -> CommandSystem:
    context = click.get_current_context()
    build: Callable[[], CommandSystem] | None = context.obj
    if build is None:
        raise click.UsageError("run the procedures commands through the fastlims command")
    system = build()
    prepare: Callable[[CommandSystem], object] | None = context.meta.get(PREPARE)
    if prepare is not None:
        prepare(system)
    return system


@click.group()
def procedures() -> None:
    """Test procedures: a test name's default for a UUT, and procedure files checked against a UUT."""


@procedures.command("show")
@click.argument("test_code")
@click.option("--uut", required=True, help="UUT code, e.g. 'Gen3b - Cell': the procedure is resolved for it.")
@click.option("--standard", default=None, help="Standard code; default: the one that fits the UUT.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["both", "text", "json"]),
    default="both",
    show_default=True,
    help="text: the text form (a file 'check' reads); json: the API's document; both: text, then JSON.",
)
def show(test_code: str, uut: str, standard: str | None, output: str) -> None:
    """Print TEST_CODE's default procedure resolved for the UUT, in the text form and as JSON."""
    system = _system()
    try:
        with system.database.transaction() as session:
            found = catalog_procedures.default_for(session=session, test_code=test_code, uut=uut, standard=standard)
    except (service.NotFound, catalog_procedures.ProcedureUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    document = found.as_json()
    if output in ("both", "text"):
        hours = found.expected_duration_s / 3600
        click.echo(
            f"# {test_code} for {uut} under {document['standard']}: {', '.join(found.bench_kinds)} benches;"
            f" expected {hours:.3g} h"
        )
        click.echo(document["text"], nl=False)
    if output == "both":
        click.echo()
    if output in ("both", "json"):
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@procedures.command("check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--uut", required=True, help="UUT code whose ratings the procedure must respect.")
def check(file: Path, uut: str) -> None:
    """Check the procedure in FILE (text form, or JSON) against the UUT's ratings; name every problem."""
    system = _system()
    try:
        with system.database.transaction() as session:
            ratings = catalog_procedures.ratings_of(session=session, code=uut)
    except (service.NotFound, catalog_procedures.ProcedureUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    reading = _read(file)
    procedure, lines = reading.to_check, reading.lines
    problems = [reading.describe(p) for p in reading.problems]
    notes: list[str] = []
    following: set[str] = set()
    if procedure is not None:
        following = {p for p, s in procedure.walk() if isinstance(s, ProfileStep) and s.source == "custom_profile"}
        for problem in validate_all(procedure, ratings, lines=lines):
            if reading.skip(problem):
                continue
            if problem.path in following and "custom_profile" in problem.message:
                notes.append(f"{problem.where}: follows a request's custom_profile, whose values are checked at submit")
            else:
                problems.append(reading.describe(problem))
    for note in notes:
        click.echo(f"{file}: note: {note}")
    if problems:
        for message in problems:
            click.echo(f"{file}: {message}")
        count = len(problems)
        raise click.ClickException(f"{count} problem{'s' if count != 1 else ''} in {file} for UUT {uut!r}")
    assert procedure is not None
    steps = sum(1 for _ in procedure.walk())
    if following:
        click.echo(f"{file}: OK for {uut} ({steps} steps; the custom_profile values are checked at submit)")
        return
    resolved = resolve(procedure, ratings, lines=lines)
    s = resolved.safety
    click.echo(
        f"{file}: OK for {uut} ({steps} steps; safety {s.min_voltage_V:g}..{s.max_voltage_V:g} V,"
        f" {s.max_charge_current_A:g} A charge, {s.max_discharge_current_A:g} A discharge,"
        f" {s.min_temperature_C:g}..{s.max_temperature_C:g} degC)"
    )


def _read(file: Path) -> Reading:
    """The procedure in ``file``: JSON when it is named ``.json`` or starts with ``{``, else text."""
    if file.stat().st_size > MAX_TEXT_BYTES:
        return Reading(None, problems=[Problem(message=f"the file is larger than {MAX_TEXT_BYTES} bytes")])
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return Reading(None, problems=[Problem(message=f"not UTF-8 text: {exc}")])
    return read_file(text, json_form=file.suffix.lower() == ".json" or text.lstrip().startswith("{"))

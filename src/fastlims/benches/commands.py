"""``fastlims benches add | list | set | disable | enable``: the bench registry without touching the
database.

A bench's ratings decide which runs the scheduler may book on it: its maximum current must cover
the largest current the run's procedure commands, its voltage range the run's safety window, and
a procedure that sets the ambient temperature needs ``--temperature-chamber``. ``--capability``
lists the UUT formats it takes (``cell``, ``module``, ``pack``; none listed: every format) and any
other capability a catalog test asks for. ``--calendar FILE`` is the working calendar (JSON or
YAML, see :mod:`fastlims.benches.registry`).

``fastlims.cli`` adds the group to the ``fastlims`` command and passes, as the click context's
object, how to build the system, and in ``ctx.meta`` how to prepare its database; this module
never imports the CLI or the composition root.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import click
import yaml

from fastlims.benches import registry
from fastlims.catalog.procedure_commands import PREPARE
from fastlims.config import Settings
from fastlims.db.engine import Database


class CommandSystem(Protocol):
    """What these commands use of the system ``fastlims.cli`` builds (a ``bootstrap.System``)."""

    database: Database
    settings: Settings


def _system() -> CommandSystem:
    context = click.get_current_context()
    build: Callable[[], CommandSystem] | None = context.obj
    if build is None:
        raise click.UsageError("run the benches commands through the fastlims command")
    system = build()
    prepare: Callable[[CommandSystem], object] | None = context.meta.get(PREPARE)
    if prepare is not None:
        prepare(system)
    return system


def _calendar(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path}: not a calendar file: {exc}") from None
    if document is not None and not isinstance(document, dict):
        raise click.ClickException(f"{path}: a calendar is a mapping (timezone, weekly_hours, ...)")
    return document or {}


def _run(action: Callable[[Any, CommandSystem], registry.BenchRecord]) -> registry.BenchRecord:
    system = _system()
    try:
        with system.database.transaction() as session:
            record = action(session, system)
            session.expunge(record)
            return record
    except registry.BenchError as exc:
        raise click.ClickException(str(exc)) from None


def describe(record: registry.BenchRecord) -> str:
    """One line a lab manager reads: name, kind, state, ratings, capabilities."""
    ratings = registry.ratings_of(record)
    current = f"{ratings.max_current_A:g} A" if ratings.max_current_A is not None else "any current"
    low = f"{ratings.min_voltage_V:g}" if ratings.min_voltage_V is not None else "-"
    high = f"{ratings.max_voltage_V:g}" if ratings.max_voltage_V is not None else "-"
    volts = f"{low}..{high} V" if (low, high) != ("-", "-") else "any voltage"
    chamber = "chamber" if ratings.temperature_chamber else "no chamber"
    capabilities = ",".join(sorted(record.capabilities)) or "-"
    state = "active" if record.is_active else "disabled"
    line = (
        f"{record.name}\t{record.kind}\t{state}\t{current}\t{volts}\t{ratings.channels} ch\t{chamber}\t{capabilities}"
    )
    scale = record.time_scale or 1.0
    return line + (f"\t{scale:g}x real time" if scale != 1.0 else "")


RATING_OPTIONS = (
    click.option("--max-current", "max_current", type=float, help="Largest current magnitude, A."),
    click.option("--max-voltage", "max_voltage", type=float, help="Highest voltage it drives and measures, V."),
    click.option("--min-voltage", "min_voltage", type=float, help="Lowest voltage it measures, V (physical: 0)."),
    click.option("--channels", type=click.IntRange(1, 1024), help="Channels (shown; a bench is booked whole)."),
    click.option("--calendar", "calendar_file", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
    click.option(
        "--time-scale",
        "time_scale",
        type=float,
        help="Test seconds per wall second: 1 for a real bench, an emulator's --speed (it is booked for that long).",
    ),
)


def _with_options(options: tuple[Callable[[Any], Any], ...]) -> Callable[[Any], Any]:
    def wrap(function: Any) -> Any:
        for option in reversed(options):
            function = option(function)
        return function

    return wrap


@click.group()
def benches() -> None:
    """Test benches: their kind, ratings, capabilities and calendar (what the scheduler books)."""


@benches.command("add")
@click.argument("name")
@click.option("--kind", type=click.Choice(["physical", "virtual"]), required=True)
@click.option("--capability", "capabilities", multiple=True, help="cell, module, pack or another capability; repeat.")
@_with_options(RATING_OPTIONS)
@click.option("--temperature-chamber", is_flag=True, help="It can set the ambient temperature.")
def add(
    name: str,
    kind: str,
    capabilities: tuple[str, ...],
    max_current: float | None,
    max_voltage: float | None,
    min_voltage: float | None,
    channels: int | None,
    calendar_file: Path | None,
    time_scale: float | None,
    temperature_chamber: bool,
) -> None:
    """Add bench NAME (its id in schedules and MQTT topics)."""
    ratings = registry.Ratings(max_current, min_voltage, max_voltage, channels or 1, temperature_chamber)
    record = _run(
        lambda session, system: registry.add(
            session=session,
            name=name,
            kind=kind,
            capabilities=capabilities,
            calendar=_calendar(calendar_file),
            zone=system.settings.timezone,
            ratings=ratings,
            time_scale=1.0 if time_scale is None else time_scale,
        )
    )
    click.echo(f"bench added: {describe(record)}")


@benches.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include disabled benches.")
def list_benches(show_all: bool) -> None:
    """The benches: name, kind, state, current, voltage range, channels, chamber, capabilities."""
    system = _system()
    with system.database.transaction() as session:
        for record in registry.get_all(session=session, active_only=not show_all):
            click.echo(describe(record))


@benches.command("set")
@click.argument("name")
@click.option("--capability", "capabilities", multiple=True, help="Replaces the capabilities; repeat.")
@_with_options(RATING_OPTIONS)
@click.option("--temperature-chamber/--no-temperature-chamber", default=None)
def set_bench(
    name: str,
    capabilities: tuple[str, ...],
    max_current: float | None,
    max_voltage: float | None,
    min_voltage: float | None,
    channels: int | None,
    calendar_file: Path | None,
    time_scale: float | None,
    temperature_chamber: bool | None,
) -> None:
    """Change bench NAME's ratings, capabilities or calendar (new schedules use them)."""
    given = {
        "max_current_A": max_current,
        "max_voltage_V": max_voltage,
        "min_voltage_V": min_voltage,
        "channels": channels,
        "temperature_chamber": temperature_chamber,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    if not changes and not capabilities and calendar_file is None and time_scale is None:
        raise click.UsageError("nothing to change: give a rating, --capability, --calendar or --time-scale")
    record = _run(
        lambda session, system: registry.update(
            session=session,
            name=name,
            changes=changes,
            capabilities=capabilities or None,
            calendar=_calendar(calendar_file),
            zone=system.settings.timezone,
            time_scale=time_scale,
        )
    )
    click.echo(f"bench updated: {describe(record)}")


@benches.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Take bench NAME out of scheduling (its booked runs stay booked)."""
    record = _run(lambda session, _system: registry.set_active(session=session, name=name, active=False))
    click.echo(f"bench disabled: {describe(record)}")


@benches.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Put bench NAME back into scheduling."""
    record = _run(lambda session, _system: registry.set_active(session=session, name=name, active=True))
    click.echo(f"bench enabled: {describe(record)}")
